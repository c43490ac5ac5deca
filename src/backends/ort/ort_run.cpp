// SPDX-License-Identifier: Apache-2.0
#include "backends/ort/ort_run.h"

#include <algorithm>

#include "backends/ort/ort_env.h"
#include "cvdeploy/tensor.h"

namespace cvdeploy::backends::ort {
namespace {

TensorInfo ToTensorInfo(std::string name, const Ort::TypeInfo& type) {
  TensorInfo t;
  t.name = std::move(name);
  if (type.GetONNXType() != ONNX_TYPE_TENSOR) {
    t.type = "non-tensor";
    return t;
  }
  const auto info = type.GetTensorTypeAndShapeInfo();  // reads `type`, which outlives it
  t.type = ElementTypeName(info.GetElementType());
  t.shape = info.GetShape();
  std::vector<const char*> symbols(t.shape.size(), nullptr);
  info.GetSymbolicDimensions(symbols.data(), symbols.size());
  for (size_t d = 0; d < t.shape.size(); ++d) {
    t.dim_names.push_back(t.shape[d] < 0 && symbols[d] ? symbols[d] : "");
  }
  return t;
}

template <class T>
const float* Widen(const Ort::Value& value, size_t count, std::vector<float>& out) {
  const T* p = value.GetTensorData<T>();
  out.resize(count);
  for (size_t k = 0; k < count; ++k) out[k] = static_cast<float>(p[k]);
  return out.data();
}

// Fills `view` from `value`; `converted` holds the float32 copy where the type needs one.
void ViewOf(const Ort::Value& value, OutputView& view, std::vector<float>& converted) {
  if (!value.IsTensor()) {
    view.engine_type = "non-tensor";
    return;
  }
  const auto info = value.GetTensorTypeAndShapeInfo();
  const ONNXTensorElementDataType type = info.GetElementType();
  view.engine_type = ElementTypeName(type);
  const size_t count = info.GetElementCount();
  const float* data = nullptr;
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
      data = value.GetTensorData<float>();
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16:
      converted.resize(count);
      ToFloat(value.GetTensorData<Ort::Float16_t>(), count, converted.data());
      data = converted.data();
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
      data = Widen<double>(value, count, converted);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
      data = Widen<int64_t>(value, count, converted);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
      data = Widen<int32_t>(value, count, converted);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16:
      data = Widen<int16_t>(value, count, converted);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
      data = Widen<int8_t>(value, count, converted);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64:
      data = Widen<uint64_t>(value, count, converted);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32:
      data = Widen<uint32_t>(value, count, converted);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16:
      data = Widen<uint16_t>(value, count, converted);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
      data = Widen<uint8_t>(value, count, converted);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL:
      data = Widen<bool>(value, count, converted);
      break;
    default:
      break;  // no float32 value (string, bfloat16, float8, ...): the shape without data
  }
  view.tensor = TensorView(DataType::kFloat32, info.GetShape(), data);
}

bool DeclaredHalf(const std::vector<TensorInfo>& graph_inputs, const std::string& name) {
  return std::any_of(graph_inputs.begin(), graph_inputs.end(),
                     [&](const TensorInfo& t) { return t.name == name && t.type == "float16"; });
}

std::vector<TensorInfo> ReadIo(const Ort::Session& session, bool inputs) {
  Ort::AllocatorWithDefaultOptions allocator;
  std::vector<TensorInfo> io;
  const size_t n = inputs ? session.GetInputCount() : session.GetOutputCount();
  for (size_t i = 0; i < n; ++i) {
    if (inputs) {
      io.push_back(ToTensorInfo(session.GetInputNameAllocated(i, allocator).get(),
                                session.GetInputTypeInfo(i)));
    } else {
      io.push_back(ToTensorInfo(session.GetOutputNameAllocated(i, allocator).get(),
                                session.GetOutputTypeInfo(i)));
    }
  }
  return io;
}

}  // namespace

std::vector<TensorInfo> SessionInputs(const Ort::Session& session) { return ReadIo(session, true); }
std::vector<TensorInfo> SessionOutputs(const Ort::Session& session) {
  return ReadIo(session, false);
}

void RunNamed(Ort::Session& session, const std::vector<TensorInfo>& graph_inputs,
              const std::vector<TensorInfo>& graph_outputs, const std::string& context,
              const std::vector<NamedTensorView>& inputs,
              const std::vector<std::string>& output_names, const OutputsVisitor& visit) {
  for (const NamedTensorView& in : inputs) {
    if (in.tensor.dtype() != DataType::kFloat32) {
      throw InvalidArgument(context + ": input '" + in.name + "' is " +
                            std::string(DataTypeName(in.tensor.dtype())) + ", not float32");
    }
  }
  std::vector<std::string> names = output_names;
  if (names.empty()) {
    for (const TensorInfo& t : graph_outputs) names.push_back(t.name);
  }
  std::vector<OutputView> views(names.size());
  std::vector<std::vector<float>> converted(names.size());
  // Kept alive until `visit` returns: float32 views point into the engine's own buffers.
  std::vector<Ort::Value> values;
  try {
    std::vector<Ort::Value> feeds;
    std::vector<std::vector<Ort::Float16_t>> halves(inputs.size());
    std::vector<const char*> in_names, out_names;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const NamedTensorView& in = inputs[i];
      const std::vector<int64_t>& shape = in.tensor.shape();
      const size_t count = in.tensor.elements();
      in_names.push_back(in.name.c_str());
      if (DeclaredHalf(graph_inputs, in.name)) {
        halves[i].resize(count);
        ToHalf(in.tensor.Data<float>(), count, halves[i].data());
        feeds.push_back(Ort::Value::CreateTensor<Ort::Float16_t>(
            CpuMemory(), halves[i].data(), count, shape.data(), shape.size()));
      } else {
        feeds.push_back(Ort::Value::CreateTensor<float>(CpuMemory(),
                                                        const_cast<float*>(in.tensor.Data<float>()),
                                                        count, shape.data(), shape.size()));
      }
    }
    for (const std::string& n : names) out_names.push_back(n.c_str());
    values = session.Run(Ort::RunOptions{nullptr}, in_names.data(), feeds.data(), feeds.size(),
                         out_names.data(), out_names.size());
    for (size_t i = 0; i < values.size(); ++i) {
      views[i].name = names[i];
      ViewOf(values[i], views[i], converted[i]);
    }
  } catch (const Ort::Exception& e) {
    throw FromOrt(ErrorCode::kRuntime, context + ": inference failed", e);
  }
  visit(views);
}

}  // namespace cvdeploy::backends::ort
