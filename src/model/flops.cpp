// SPDX-License-Identifier: Apache-2.0
#include "model/flops.h"

#include <set>

#include "model/onnx_model.h"

namespace cvdeploy::model {

namespace {

// Ops that only move or reinterpret data: no arithmetic to count.
const std::set<std::string>& DataMovementOps() {
  static const std::set<std::string> ops = {
      "Reshape",   "Transpose",       "Concat",   "Split",        "Slice",
      "Gather",    "Shape",           "Constant", "Identity",     "Squeeze",
      "Unsqueeze", "Flatten",         "Expand",   "Cast",         "Pad",
      "Tile",      "ConstantOfShape", "Range",    "DepthToSpace", "SpaceToDepth"};
  return ops;
}

// -1 when any dim is unknown (symbolic) or the shape itself is unknown.
int64_t KnownElements(const std::vector<int64_t>& shape) {
  if (shape.empty()) return -1;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    n *= d;
  }
  return n;
}

int64_t Product(const std::vector<int64_t>& dims, size_t from) {
  int64_t n = 1;
  for (size_t i = from; i < dims.size(); ++i) n *= dims[i];
  return n;
}

// The quantized forms count as their float op: ConvInteger (dynamic quantization, weight at
// input 1) and QLinearConv (weight at input 3) as Conv; MatMulInteger and QLinearMatMul as
// MatMul. The op name they are counted under (by_op) stays their own.
bool IsConvLike(const std::string& op) {
  return op == "Conv" || op == "ConvInteger" || op == "QLinearConv";
}
bool IsMatMulLike(const std::string& op) {
  return op == "MatMul" || op == "MatMulInteger" || op == "QLinearMatMul";
}
int WeightInput(const std::string& op) {
  return op == "QLinearConv" || op == "QLinearMatMul" ? 3 : 1;
}

// Constant inputs of `node` that hold learned parameters.
std::vector<int> ParameterInputs(const onnx::NodeProto& node) {
  const std::string& op = node.op_type();
  if (op == "Conv" || op == "ConvTranspose" || op == "Gemm") return {1, 2};
  if (op == "MatMul") return {0, 1};  // a constant operand is a weight matrix
  if (op == "BatchNormalization") return {1, 2};
  if (op == "ConvInteger" || op == "MatMulInteger") return {1};
  if (op == "QLinearConv") return {3, 8};  // weight, int32 bias
  if (op == "QLinearMatMul") return {3};
  return {};
}

// True when `tensor` is computed from a ConvInteger/MatMulInteger output through at most
// `hops` Cast/Mul steps (either operand of a Mul: the scale is itself a Mul of two scales): the
// dequantized result to which dynamic quantization adds the float bias.
bool FromIntegerOp(const std::string& tensor, const onnx::GraphProto& graph,
                   const GraphIndex& index, int hops = 3) {
  const int producer = index.Producer(tensor);
  if (producer < 0) return false;
  const onnx::NodeProto& node = graph.node(producer);
  if (node.op_type() == "ConvInteger" || node.op_type() == "MatMulInteger") return true;
  if (hops == 0 || (node.op_type() != "Cast" && node.op_type() != "Mul")) return false;
  for (const std::string& input : node.input()) {
    if (!index.Constant(input) && FromIntegerOp(input, graph, index, hops - 1)) return true;
  }
  return false;
}

// The constant behind `tensor`: the tensor itself, or the constant input of the
// DequantizeLinear (a QDQ model's integer weight) or, with `reshaped`, Reshape (dynamic
// quantization's reshaped bias) producing it; nullptr for none. `source` receives its name.
const onnx::TensorProto* ParameterConstant(const std::string& tensor, const onnx::GraphProto& graph,
                                           const GraphIndex& index, std::string* source,
                                           bool reshaped = false) {
  *source = tensor;
  if (const onnx::TensorProto* t = index.Constant(tensor)) return t;
  const int producer = index.Producer(tensor);
  if (producer < 0) return nullptr;
  const onnx::NodeProto& node = graph.node(producer);
  if ((node.op_type() != "DequantizeLinear" && !(reshaped && node.op_type() == "Reshape")) ||
      node.input_size() < 1) {
    return nullptr;
  }
  *source = node.input(0);
  return index.Constant(node.input(0));
}

// The float bias of a dynamically quantized Conv/MatMul: input `i` of an Add whose other input
// comes from the integer op (FromIntegerOp); -1 for any other node.
int IntegerOpBiasInput(const onnx::NodeProto& node, const onnx::GraphProto& graph,
                       const GraphIndex& index) {
  if (node.op_type() != "Add" || node.input_size() != 2) return -1;
  std::string source;
  for (int i = 0; i < 2; ++i) {
    if (ParameterConstant(node.input(i), graph, index, &source, true) &&
        FromIntegerOp(node.input(1 - i), graph, index)) {
      return i;
    }
  }
  return -1;
}

// MACs of one node, or -1 when a needed shape is unknown; 0 for ops without MACs.
int64_t NodeMacs(const onnx::NodeProto& node, const GraphIndex& index) {
  const std::string& op = node.op_type();
  if (!IsConvLike(op) && op != "ConvTranspose" && !IsMatMulLike(op) && op != "Gemm") return 0;
  if (node.input_size() <= WeightInput(op) || node.output_size() < 1) return -1;
  const int64_t out = KnownElements(index.Shape(node.output(0)));
  if (IsConvLike(op) || op == "ConvTranspose") {
    // Weight [Cout, Cin/group, k...] (Conv) or [Cin, Cout/group, k...] (ConvTranspose): each
    // output (input) element takes prod(dims[1:]) multiply-adds.
    const std::vector<int64_t> w = index.Shape(node.input(WeightInput(op)));
    if (w.size() < 3 || KnownElements(w) < 0) return -1;
    const int64_t per = Product(w, 1);
    const int64_t n = op != "ConvTranspose" ? out : KnownElements(index.Shape(node.input(0)));
    return n < 0 ? -1 : n * per;
  }
  const std::vector<int64_t> a = index.Shape(node.input(0));
  if (out < 0 || a.empty()) return -1;
  int64_t k = 0;
  if (IsMatMulLike(op)) {
    k = a.back();
  } else {  // Gemm: A is [M, K], or [K, M] with transA
    if (a.size() != 2) return -1;
    k = IntAttribute(node, "transA", 0) ? a[0] : a[1];
  }
  return k < 0 ? -1 : out * k;
}

// Ultralytics' "imgsz" metadata ("[640, 640]") as {h, w}; empty when absent or malformed.
std::vector<int64_t> MetadataImgsz(const onnx::ModelProto& model) {
  for (const auto& p : model.metadata_props()) {
    if (p.key() != "imgsz") continue;
    std::vector<int64_t> v;
    std::string digits;
    for (char c : p.value() + ",") {
      if (c >= '0' && c <= '9') {
        digits += c;
      } else if (!digits.empty()) {
        v.push_back(std::stoll(digits));
        digits.clear();
      }
    }
    if (v.size() == 1) v.push_back(v[0]);
    return v.size() == 2 && v[0] > 0 && v[1] > 0 ? v : std::vector<int64_t>{};
  }
  return {};
}

// Gives the first graph input of rank 4 concrete batch (1) and, from the metadata, height and
// width where they are symbolic; returns the resulting shape, or {} when nothing changed.
std::vector<int64_t> FixSymbolicInput(onnx::ModelProto& model) {
  onnx::GraphProto* graph = model.mutable_graph();
  if (graph->input_size() == 0) return {};
  auto* shape = graph->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
  if (shape->dim_size() != 4) return {};
  const std::vector<int64_t> imgsz = MetadataImgsz(model);
  bool changed = false;
  std::vector<int64_t> dims;
  for (int i = 0; i < 4; ++i) {
    auto* d = shape->mutable_dim(i);
    if (!d->has_dim_value()) {
      int64_t value = -1;
      if (i == 0) value = 1;
      if ((i == 2 || i == 3) && !imgsz.empty()) value = imgsz[i - 2];
      if (value > 0) {
        d->set_dim_value(value);  // replaces dim_param (a oneof)
        changed = true;
      }
    }
    dims.push_back(d->has_dim_value() ? d->dim_value() : -1);
  }
  return changed ? dims : std::vector<int64_t>{};
}

}  // namespace

GraphCost CountCost(const onnx::ModelProto& model) {
  onnx::ModelProto copy = model;
  GraphCost cost;
  cost.assumed_input = FixSymbolicInput(copy);
  InferShapes(copy);
  const onnx::GraphProto& graph = copy.graph();
  const GraphIndex index(graph);

  std::set<std::string> counted_params;
  for (const auto& node : graph.node()) {
    NodeCost nc;
    nc.name = node.name().empty() && node.output_size() ? node.output(0) : node.name();
    nc.op_type = node.op_type();
    std::vector<int> parameter_inputs = ParameterInputs(node);
    const int bias = IntegerOpBiasInput(node, graph, index);
    if (bias >= 0) parameter_inputs.push_back(bias);
    for (int i : parameter_inputs) {
      if (i >= node.input_size() || node.input(i).empty()) continue;
      // A quantized (QDQ) model stores the weight as an integer constant read through a
      // DequantizeLinear: count that constant.
      std::string name;
      const onnx::TensorProto* t = ParameterConstant(node.input(i), graph, index, &name, i == bias);
      if (!t || !counted_params.insert(name).second) continue;
      nc.params += NumElements(*t);
    }
    if (node.output_size() > 0) nc.output_shape = index.Shape(node.output(0));
    const int64_t macs = NodeMacs(node, index);
    if (macs < 0) {
      cost.uncounted.push_back(NodeLabel(node));
    } else {
      nc.flops = 2.0 * static_cast<double>(macs);
    }
    if (macs == 0 && !DataMovementOps().count(node.op_type())) {
      for (const auto& output : node.output()) {
        const int64_t n = KnownElements(index.Shape(output));
        if (n > 0) cost.elementwise_ops += static_cast<double>(n);
      }
    }
    OpCost& op = cost.by_op[node.op_type()];
    ++op.nodes;
    op.params += nc.params;
    op.flops += nc.flops;
    cost.params += nc.params;
    cost.flops += nc.flops;
    if (nc.params > 0 || nc.flops > 0) cost.nodes.push_back(std::move(nc));
  }
  return cost;
}

ModelCost ToModelCost(const GraphCost& cost) {
  ModelCost c;
  c.params = cost.params;
  c.flops = cost.flops;
  c.complete = cost.uncounted.empty();
  c.assumed_input = cost.assumed_input;
  return c;
}

}  // namespace cvdeploy::model

namespace cvdeploy {

std::optional<ModelCost> ComputeCost(const Model& model) {
  try {
    return model::ToModelCost(
        model::CountCost(optimize::ParseModel(model.bytes(), model.info().path)));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

nlohmann::ordered_json ModelCostToJson(const ModelCost& cost) {
  nlohmann::ordered_json j = {{"params", cost.params},
                              {"flops", cost.flops},
                              {"gflops", cost.gflops()},
                              {"complete", cost.complete}};
  if (!cost.assumed_input.empty()) j["assumed_input"] = cost.assumed_input;
  return j;
}

}  // namespace cvdeploy
