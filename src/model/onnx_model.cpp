// SPDX-License-Identifier: Apache-2.0
#include "model/onnx_model.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>
#include <onnx/version_converter/convert.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>

#include "core/file_util.h"
#include "core/json_limits.h"
#include "cvdeploy/build_info.h"
#include "cvdeploy/error.h"
#include "model/model_info.h"

namespace cvdeploy::model {
namespace {

std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

template <typename T>
std::vector<T> RawValues(const onnx::TensorProto& t) {
  std::vector<T> v(t.raw_data().size() / sizeof(T));
  std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(T));
  return v;
}

std::string UtcNow() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

onnx::ModelProto ParseModel(const std::vector<uint8_t>& bytes, const std::string& name) {
  onnx::ModelProto model;
  // Protobuf takes an int size: anything above INT32_MAX cannot be a model (and must not be
  // truncated into a smaller, negative or wrong size).
  if (bytes.empty() || bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) || !model.has_graph()) {
    const std::string foreign = ForeignModelMessage(name, bytes);
    throw BadInput(!foreign.empty()
                       ? foreign
                       : name +
                             ": not an ONNX model (the protobuf does not parse or has no graph)");
  }
  return model;
}

onnx::ModelProto LoadModel(const std::string& path) {
  return ParseModel(core::ReadModelBytes(path), path);
}

std::vector<uint8_t> SerializeModel(const onnx::ModelProto& model) {
  const size_t size = model.ByteSizeLong();
  if (size > static_cast<size_t>(INT32_MAX)) {
    throw RuntimeError("cannot serialize the ONNX model: " + std::to_string(size) +
                       " bytes, more than protobuf's 2 GB limit");
  }
  std::vector<uint8_t> bytes(size);
  if (!model.SerializeToArray(bytes.data(), static_cast<int>(bytes.size()))) {
    throw RuntimeError("cannot serialize the ONNX model (larger than 2 GB?)");
  }
  return bytes;
}

void CheckModel(const onnx::ModelProto& model, const std::string& name) {
  try {
    onnx::checker::check_model(model);
    onnx::ModelProto copy = model;
    onnx::ShapeInferenceOptions options(/*check_type=*/true, /*strict_mode=*/1);
    onnx::shape_inference::InferShapes(copy, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception& e) {
    throw RuntimeError(name +
                       ": the produced model fails the ONNX checker: " + FirstLine(e.what()));
  }
}

void InferShapes(onnx::ModelProto& model) {
  model.mutable_graph()->clear_value_info();
  onnx::ShapeInferenceOptions options(/*check_type=*/false, /*strict_mode=*/0);
  onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), options);
}

int DefaultOpset(const onnx::ModelProto& model) {
  for (const auto& op : model.opset_import()) {
    if (op.domain().empty() || op.domain() == "ai.onnx") return static_cast<int>(op.version());
  }
  return 0;
}

void ConvertOpset(onnx::ModelProto& model, int target, const std::string& name) {
  const int current = DefaultOpset(model);
  if (current >= target) return;
  // Adapters such as Softmax 12 -> 13 need the rank of their input: give the converter the
  // shapes inference derives (a model whose batch axis was made dynamic may carry none).
  onnx::ModelProto shaped = model;
  InferShapes(shaped);
  onnx::ModelProto converted;
  try {
    converted = onnx::version_conversion::ConvertVersion(shaped, target);
  } catch (const std::exception& e) {
    throw BadInput(name + ": cannot convert from opset " + std::to_string(current) + " to " +
                   std::to_string(target) + ": " + FirstLine(e.what()));
  }
  // The converter rebuilds the graph through ONNX's IR; keep the model-level fields it may
  // drop (metadata holds the Ultralytics keys the rest of cvdeploy reads).
  *converted.mutable_metadata_props() = model.metadata_props();
  converted.set_producer_name(model.producer_name());
  converted.set_producer_version(model.producer_version());
  converted.set_doc_string(model.doc_string());
  converted.set_model_version(model.model_version());
  if (converted.graph().name().empty()) converted.mutable_graph()->set_name(model.graph().name());
  model = std::move(converted);
}

int64_t NumElements(const onnx::TensorProto& t) {
  int64_t n = 1;
  for (int64_t d : t.dims()) n *= d;
  return n;
}

std::vector<float> FloatData(const onnx::TensorProto& t) {
  const bool raw = !t.raw_data().empty();
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      return raw ? RawValues<float>(t)
                 : std::vector<float>(t.float_data().begin(), t.float_data().end());
    case onnx::TensorProto::DOUBLE: {
      std::vector<double> d =
          raw ? RawValues<double>(t)
              : std::vector<double>(t.double_data().begin(), t.double_data().end());
      return {d.begin(), d.end()};
    }
    case onnx::TensorProto::FLOAT16: {
      std::vector<float> out;
      if (raw) {
        for (uint16_t h : RawValues<uint16_t>(t)) out.push_back(HalfToFloat(h));
      } else {
        for (int32_t h : t.int32_data()) out.push_back(HalfToFloat(static_cast<uint16_t>(h)));
      }
      return out;
    }
    default:
      throw BadInput("tensor '" + t.name() + "' has element type " + std::to_string(t.data_type()) +
                     ", not a floating-point type");
  }
}

std::vector<int64_t> IntData(const onnx::TensorProto& t) {
  const bool raw = !t.raw_data().empty();
  if (t.data_type() == onnx::TensorProto::INT64) {
    return raw ? RawValues<int64_t>(t)
               : std::vector<int64_t>(t.int64_data().begin(), t.int64_data().end());
  }
  if (t.data_type() == onnx::TensorProto::INT32) {
    std::vector<int32_t> v =
        raw ? RawValues<int32_t>(t)
            : std::vector<int32_t>(t.int32_data().begin(), t.int32_data().end());
    return {v.begin(), v.end()};
  }
  throw BadInput("tensor '" + t.name() + "' has element type " + std::to_string(t.data_type()) +
                 ", not an integer type");
}

onnx::TensorProto RawTensor(const std::string& name, int32_t type, const std::vector<int64_t>& dims,
                            const void* data, size_t bytes) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(type);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(data, bytes);
  return t;
}

onnx::TensorProto FloatTensor(const std::string& name, const std::vector<int64_t>& dims,
                              const std::vector<float>& values) {
  return RawTensor(name, onnx::TensorProto::FLOAT, dims, values.data(),
                   values.size() * sizeof(float));
}

onnx::TensorProto Int64Tensor(const std::string& name, const std::vector<int64_t>& dims,
                              const std::vector<int64_t>& values) {
  return RawTensor(name, onnx::TensorProto::INT64, dims, values.data(),
                   values.size() * sizeof(int64_t));
}

uint16_t FloatToHalf(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or NaN (keep NaN quiet)
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (abs < 0x38800000u) {  // half subnormal or zero: scale into the subnormal grid
    const float scaled = std::bit_cast<float>(abs) * 16777216.0f;  // * 2^24
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(scaled)));
  }
  const uint32_t mantissa_odd = (abs >> 13) & 1u;
  const uint32_t rounded = abs + 0xfffu + mantissa_odd;  // round to nearest even
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    const float v = static_cast<float>(mantissa) / 16777216.0f;  // * 2^-24
    return sign ? -v : v;
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

const onnx::AttributeProto* FindAttribute(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& a : node.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

int64_t IntAttribute(const onnx::NodeProto& node, const std::string& name, int64_t fallback) {
  const auto* a = FindAttribute(node, name);
  return a ? a->i() : fallback;
}

std::string NodeLabel(const onnx::NodeProto& node) {
  const std::string& id = node.name().empty() && node.output_size() ? node.output(0) : node.name();
  return node.op_type() + " '" + id + "'";
}

GraphIndex::GraphIndex(const onnx::GraphProto& graph) {
  auto add_shape = [&](const onnx::ValueInfoProto& v) {
    names_.insert(v.name());
    if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return;
    std::vector<int64_t> dims;
    for (const auto& d : v.type().tensor_type().shape().dim())
      dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    shapes_.emplace(v.name(), std::move(dims));
  };
  for (const auto& init : graph.initializer()) {
    constants_[init.name()] = &init;
    shapes_[init.name()] = {init.dims().begin(), init.dims().end()};
    names_.insert(init.name());
  }
  for (const auto& v : graph.input()) {
    if (!constants_.count(v.name())) graph_inputs_.insert(v.name());
    add_shape(v);
  }
  for (const auto& v : graph.output()) {
    graph_outputs_.insert(v.name());
    add_shape(v);
  }
  for (const auto& v : graph.value_info()) add_shape(v);
  for (int i = 0; i < graph.node_size(); ++i) {
    const auto& node = graph.node(i);
    names_.insert(node.name());
    for (const auto& in : node.input()) {
      if (!in.empty()) consumers_[in].push_back(i);
    }
    for (const auto& out : node.output()) {
      producer_[out] = i;
      names_.insert(out);
    }
    if (node.op_type() == "Constant" && node.output_size() == 1) {
      if (const auto* a = FindAttribute(node, "value"); a && a->has_t()) {
        constants_[node.output(0)] = &a->t();
        shapes_[node.output(0)] = {a->t().dims().begin(), a->t().dims().end()};
      }
    }
  }
}

int GraphIndex::Producer(const std::string& tensor) const {
  auto it = producer_.find(tensor);
  return it == producer_.end() ? -1 : it->second;
}

const std::vector<int>& GraphIndex::Consumers(const std::string& tensor) const {
  static const std::vector<int> kNone;
  auto it = consumers_.find(tensor);
  return it == consumers_.end() ? kNone : it->second;
}

const onnx::TensorProto* GraphIndex::Constant(const std::string& tensor) const {
  auto it = constants_.find(tensor);
  return it == constants_.end() ? nullptr : it->second;
}

std::vector<int64_t> GraphIndex::Shape(const std::string& tensor) const {
  auto it = shapes_.find(tensor);
  return it == shapes_.end() ? std::vector<int64_t>{} : it->second;
}

std::string GraphIndex::UniqueName(const std::string& base) {
  std::string name = base;
  for (int i = 1; names_.count(name); ++i) name = base + "_" + std::to_string(i);
  names_.insert(name);
  return name;
}

void AddOptimizationRecord(onnx::ModelProto& model, nlohmann::ordered_json step) {
  nlohmann::ordered_json record = OptimizationRecord(model);
  step["cvdeploy_version"] = CVDEPLOY_VERSION;
  step["time"] = UtcNow();
  record.push_back(std::move(step));
  for (auto& prop : *model.mutable_metadata_props()) {
    if (prop.key() == kOptimizationKey) {
      prop.set_value(record.dump());
      return;
    }
  }
  auto* prop = model.add_metadata_props();
  prop->set_key(kOptimizationKey);
  prop->set_value(record.dump());
}

nlohmann::ordered_json OptimizationRecord(const onnx::ModelProto& model) {
  for (const auto& prop : model.metadata_props()) {
    if (prop.key() != kOptimizationKey) continue;
    // Model metadata is input like any other: a record nested deeper than JSON's limit is
    // ignored like an unparsable one, before any tree is built.
    if (core::JsonNestingDepth(prop.value()) > core::kMaxJsonDepth) continue;
    auto parsed = nlohmann::ordered_json::parse(prop.value(), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_array()) return parsed;
  }
  return nlohmann::ordered_json::array();
}

std::map<std::string, std::string> Metadata(const onnx::ModelProto& model) {
  std::map<std::string, std::string> out;
  for (const auto& prop : model.metadata_props()) out[prop.key()] = prop.value();
  return out;
}

}  // namespace cvdeploy::model
