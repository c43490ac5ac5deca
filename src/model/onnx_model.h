// SPDX-License-Identifier: Apache-2.0
// Shared ground for the model tools (quantize, fp16, prune): parsing and writing ONNX
// models through the protobuf classes, the ONNX checker and shape inference, opset
// conversion, tensor data access, a producer/consumer index of a graph, and the record of
// what a tool did, kept in the model's metadata.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace cvdeploy::model {

// Parses serialized model bytes. Throws Error(kBadInput) "NAME: not an ONNX model" when the
// bytes do not parse or have no graph.
onnx::ModelProto ParseModel(const std::vector<uint8_t>& bytes, const std::string& name);
// Reads and parses a model file; errors name the path.
onnx::ModelProto LoadModel(const std::string& path);
std::vector<uint8_t> SerializeModel(const onnx::ModelProto& model);

// Runs the ONNX checker and strict shape inference on a copy of `model`. Throws
// Error(kRuntime) "NAME: the produced model fails the ONNX checker: REASON" (a produced model
// that does not check is a bug of the tool, not of the user's input).
void CheckModel(const onnx::ModelProto& model, const std::string& name);
// Replaces graph.value_info with what ONNX shape inference derives (stale entries from
// before an edit would contradict the new graph).
void InferShapes(onnx::ModelProto& model);

// Version of the default (ai.onnx) opset import.
int DefaultOpset(const onnx::ModelProto& model);
// Converts the model to opset `target` (>= current) with ONNX's version converter, which
// rewrites the operators whose signature changed (Split, Squeeze, Softmax, ...). Metadata
// and doc strings are kept. Throws Error(kBadInput) naming the model and the failing op.
void ConvertOpset(onnx::ModelProto& model, int target, const std::string& name);

// Element count of a tensor from its dims.
int64_t NumElements(const onnx::TensorProto& t);
// Values of a FLOAT, FLOAT16 or DOUBLE tensor as float (raw or typed storage). Throws
// Error(kBadInput) for other element types.
std::vector<float> FloatData(const onnx::TensorProto& t);
// Values of an INT64 or INT32 tensor. Throws Error(kBadInput) for other element types.
std::vector<int64_t> IntData(const onnx::TensorProto& t);
onnx::TensorProto FloatTensor(const std::string& name, const std::vector<int64_t>& dims,
                              const std::vector<float>& values);
onnx::TensorProto Int64Tensor(const std::string& name, const std::vector<int64_t>& dims,
                              const std::vector<int64_t>& values);
// Raw little-endian storage of element type `type` (INT8, UINT8, INT32, FLOAT16, ...).
onnx::TensorProto RawTensor(const std::string& name, int32_t type, const std::vector<int64_t>& dims,
                            const void* data, size_t bytes);
// IEEE half conversions (round to nearest even; overflow to infinity).
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);

const onnx::AttributeProto* FindAttribute(const onnx::NodeProto& node, const std::string& name);
int64_t IntAttribute(const onnx::NodeProto& node, const std::string& name, int64_t fallback);
// Display label of a node for messages: `Conv '/model.0/conv/Conv'`.
std::string NodeLabel(const onnx::NodeProto& node);

// Who produces and who consumes each tensor of a graph, and which tensors are constants
// (initializers or Constant nodes). Indices refer to graph.node(). Built once; rebuild it
// after editing the node list.
class GraphIndex {
 public:
  explicit GraphIndex(const onnx::GraphProto& graph);

  // Node index producing `tensor`, or -1 for graph inputs, initializers and unknown names.
  int Producer(const std::string& tensor) const;
  // Node indices reading `tensor` (in node order); empty when none.
  const std::vector<int>& Consumers(const std::string& tensor) const;
  // Value of a constant tensor (initializer or Constant node output), or nullptr.
  const onnx::TensorProto* Constant(const std::string& tensor) const;
  bool IsGraphInput(const std::string& tensor) const { return graph_inputs_.count(tensor) > 0; }
  bool IsGraphOutput(const std::string& tensor) const { return graph_outputs_.count(tensor) > 0; }
  // Static shape from graph inputs/outputs/value_info/initializers (-1 for symbolic dims);
  // empty when unknown.
  std::vector<int64_t> Shape(const std::string& tensor) const;
  // A tensor/node name not used anywhere in the graph, derived from `base`.
  std::string UniqueName(const std::string& base);

 private:
  std::unordered_map<std::string, int> producer_;
  std::unordered_map<std::string, std::vector<int>> consumers_;
  std::unordered_map<std::string, const onnx::TensorProto*> constants_;
  std::unordered_map<std::string, std::vector<int64_t>> shapes_;
  std::set<std::string> graph_inputs_, graph_outputs_, names_;
};

// Metadata key holding the list of tool steps applied to a model (a JSON array).
inline constexpr const char* kOptimizationKey = "cvdeploy_optimizations";
// Appends one step ({"tool": ..., parameters, results}) to the model's record, keeping every
// other metadata entry (the Ultralytics keys) untouched. Adds "cvdeploy_version" and "time".
void AddOptimizationRecord(onnx::ModelProto& model, nlohmann::ordered_json step);
// Reads the record back (empty array when absent or unparsable).
nlohmann::ordered_json OptimizationRecord(const onnx::ModelProto& model);
// The metadata_props as a map (for checks that the Ultralytics keys survived an edit).
std::map<std::string, std::string> Metadata(const onnx::ModelProto& model);

}  // namespace cvdeploy::model

// The model tools use these graph utilities unqualified.
namespace cvdeploy::optimize {
using model::AddOptimizationRecord;
using model::CheckModel;
using model::ConvertOpset;
using model::DefaultOpset;
using model::FindAttribute;
using model::FloatData;
using model::FloatTensor;
using model::FloatToHalf;
using model::GraphIndex;
using model::HalfToFloat;
using model::InferShapes;
using model::Int64Tensor;
using model::IntAttribute;
using model::IntData;
using model::kOptimizationKey;
using model::LoadModel;
using model::Metadata;
using model::NodeLabel;
using model::NumElements;
using model::OptimizationRecord;
using model::ParseModel;
using model::RawTensor;
using model::SerializeModel;
}  // namespace cvdeploy::optimize
