// SPDX-License-Identifier: Apache-2.0
#include "model/model_info.h"

#include <onnx/onnx_pb.h>

#include <cctype>
#include <filesystem>
#include <set>

#include "core/file_util.h"
#include "cvdeploy/error.h"
#include "model/metadata.h"

namespace cvdeploy::model {
namespace {

std::string ElementTypeName(int type) {
  switch (type) {
    case onnx::TensorProto::FLOAT:
      return "float32";
    case onnx::TensorProto::FLOAT16:
      return "float16";
    case onnx::TensorProto::BFLOAT16:
      return "bfloat16";
    case onnx::TensorProto::DOUBLE:
      return "float64";
    case onnx::TensorProto::UINT8:
      return "uint8";
    case onnx::TensorProto::INT8:
      return "int8";
    case onnx::TensorProto::INT32:
      return "int32";
    case onnx::TensorProto::INT64:
      return "int64";
    case onnx::TensorProto::BOOL:
      return "bool";
    default:
      return "type" + std::to_string(type);
  }
}

// The framework a model file belongs to, from its extension or its first bytes; "" for none.
std::string ForeignFormat(const std::string& path, const std::vector<uint8_t>& head) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".pt" || ext == ".pth") return "a PyTorch checkpoint";
  if (ext == ".torchscript") return "a TorchScript model";
  if (ext == ".engine" || ext == ".plan") return "a TensorRT engine";
  if (ext == ".tflite") return "a TensorFlow Lite model";
  if (ext == ".mlpackage" || ext == ".mlmodel") return "a Core ML model";
  if (ext == ".pb") return "a TensorFlow graph";
  if (head.size() >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) {
    return "a zip archive (PyTorch .pt files are zip archives)";
  }
  if (head.size() >= 8 && head[4] == 'T' && head[5] == 'F' && head[6] == 'L' && head[7] == '3') {
    return "a TensorFlow Lite model";
  }
  return "";
}

}  // namespace

std::string ForeignModelMessage(const std::string& path, const std::vector<uint8_t>& head) {
  const std::string format = ForeignFormat(path, head);
  if (format.empty()) return "";
  std::string message = path;
  message.append(": ").append(format).append(
      ", not an ONNX model: cvdeploy runs ONNX models; export it with `yolo export model=");
  message.append(path).append(" format=onnx` (add dynamic=True for rectangular inference)");
  return message;
}

TensorInfo ToTensorInfo(const onnx::ValueInfoProto& value) {
  TensorInfo info;
  info.name = value.name();
  if (value.type().has_tensor_type()) {
    const auto& tensor = value.type().tensor_type();
    info.type = ElementTypeName(tensor.elem_type());
    for (const auto& dim : tensor.shape().dim()) {
      const bool fixed = dim.has_dim_value() && dim.dim_value() > 0;
      info.shape.push_back(fixed ? dim.dim_value() : -1);
      info.dim_names.push_back(fixed ? "" : dim.dim_param());
    }
  } else {
    info.type = "non-tensor";
  }
  return info;
}

ModelInfo ParseModelInfo(const std::vector<uint8_t>& bytes, const std::string& name,
                         const ModelOptions& overrides) {
  if (bytes.empty()) throw BadInput(name + ": file is empty (0 bytes)");
  onnx::ModelProto proto;
  if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    const std::string foreign = ForeignModelMessage(name, bytes);
    throw BadInput(!foreign.empty() ? foreign
                                    : name + ": not a valid ONNX model (protobuf parse failed)");
  }
  if (!proto.has_graph() || proto.graph().node_size() == 0 || proto.ir_version() <= 0) {
    const std::string foreign = ForeignModelMessage(name, bytes);
    throw BadInput(!foreign.empty()
                       ? foreign
                       : name + ": not a valid ONNX model (no graph, nodes or IR version)");
  }
  ModelInfo info;
  info.path = name;
  info.file_size = bytes.size();
  info.sha256 = core::Sha256Hex(bytes.data(), bytes.size());
  info.producer_name = proto.producer_name();
  info.producer_version = proto.producer_version();
  info.graph_name = proto.graph().name();
  info.description = proto.doc_string();
  info.domain = proto.domain();
  info.ir_version = proto.ir_version();
  info.model_version = proto.model_version();
  for (const auto& opset : proto.opset_import()) info.opsets[opset.domain()] = opset.version();

  std::set<std::string> initializers;
  for (const auto& init : proto.graph().initializer()) initializers.insert(init.name());
  for (const auto& input : proto.graph().input()) {
    if (!initializers.count(input.name())) info.inputs.push_back(ToTensorInfo(input));
  }
  for (const auto& output : proto.graph().output()) info.outputs.push_back(ToTensorInfo(output));

  std::map<std::string, std::string> props;
  for (const auto& p : proto.metadata_props()) props[p.key()] = p.value();

  bool dynamic_quant = false, static_quant = false;
  for (const auto& node : proto.graph().node()) {
    const std::string& op = node.op_type();
    if (op == "DynamicQuantizeLinear" || op == "ConvInteger" || op == "MatMulInteger") {
      dynamic_quant = true;
    } else if (op == "QuantizeLinear" || op == "DequantizeLinear" || op.rfind("QLinear", 0) == 0) {
      static_quant = true;
    }
  }
  info.quantization = dynamic_quant ? "dynamic" : static_quant ? "static" : "";
  if (dynamic_quant) {
    info.warnings.push_back(
        "model uses dynamic quantization (DynamicQuantizeLinear/ConvInteger): activations are "
        "re-quantized at run time and ONNX Runtime's CPU ConvInteger kernels are slow, so this "
        "model typically runs slower than its float32 original; prefer static QDQ quantization");
  }
  info.meta = BuildMeta(name, props, info.inputs, info.outputs, overrides);
  return info;
}

}  // namespace cvdeploy::model
