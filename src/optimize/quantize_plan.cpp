// SPDX-License-Identifier: Apache-2.0
// Placement of static quantization: which nodes become integer kernels in ONNX Runtime,
// which tensors carry a Q->DQ pair and whose range sets each pair's parameters.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "cvdeploy/error.h"
#include "model/onnx_model.h"
#include "optimize/quantize.h"

namespace cvdeploy::optimize {
namespace {

// Opset where DequantizeLinear gained the axis attribute (per-channel weights).
constexpr int kPerAxisOpset = 13;

// Ops with a QDQ fusion into an integer kernel in ORT's CPU provider: Conv -> QLinearConv,
// Sigmoid -> QLinearSigmoid, Add/Mul -> QLinearAdd/QLinearMul, Concat -> QLinearConcat,
// MatMul -> QLinearMatMul.
const std::set<std::string> kComputeOps = {"Conv", "Sigmoid", "Add", "Mul", "Concat", "MatMul"};
// Ops that move or select values without arithmetic: ORT drops their Q/DQ pair and runs them
// on uint8 when input and output share scale and zero point.
const std::set<std::string> kMoveOps = {"MaxPool",   "Resize",  "Split",     "Slice",  "Reshape",
                                        "Transpose", "Squeeze", "Unsqueeze", "Flatten"};

bool IsMoveOp(const std::string& op) { return kMoveOps.count(op) > 0; }

// The fixed DFL projection: a Conv without bias whose single filter is arange(C).
bool IsDflConv(const onnx::NodeProto& node, const GraphIndex& index) {
  if (node.op_type() != "Conv" || node.input_size() < 2) return false;
  if (node.input_size() > 2 && !node.input(2).empty()) return false;
  const onnx::TensorProto* w = index.Constant(node.input(1));
  if (w == nullptr || w->dims_size() != 4 || w->dims(0) != 1 || w->dims(2) != 1 ||
      w->dims(3) != 1 || w->dims(1) < 2) {
    return false;
  }
  const std::vector<float> values = FloatData(*w);
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::fabs(values[i] - static_cast<float>(i)) > 1e-6f) return false;
  }
  return true;
}

bool IsActivation(const std::string& tensor, const GraphIndex& index) {
  return !tensor.empty() && index.Constant(tensor) == nullptr;
}

// Inputs of `node` that carry quantized activations when the node is quantized.
std::vector<std::string> ActivationInputs(const onnx::NodeProto& node) {
  if (node.op_type() == "Conv" || IsMoveOp(node.op_type())) return {node.input(0)};
  return {node.input().begin(), node.input().end()};
}

// Why a node of a quantizable op type cannot be quantized on its own terms ("" when it can).
std::string Ineligible(const onnx::NodeProto& node, const GraphIndex& index) {
  const std::string& op = node.op_type();
  if (node.input_size() == 0 || !IsActivation(node.input(0), index)) return "constant input";
  if (op == "Conv") {
    if (node.input_size() < 2) return "no weight";
    const onnx::TensorProto* w = index.Constant(node.input(1));
    if (w == nullptr || w->data_type() != onnx::TensorProto::FLOAT || w->dims_size() < 3) {
      return "weight is not a float constant";
    }
    if (node.input_size() > 2 && !node.input(2).empty()) {
      const onnx::TensorProto* b = index.Constant(node.input(2));
      if (b == nullptr || b->data_type() != onnx::TensorProto::FLOAT) {
        return "bias is not a float constant";
      }
    }
    return "";
  }
  if (op == "Add" || op == "Mul" || op == "MatMul" || op == "Concat") {
    for (const auto& in : node.input()) {
      if (!IsActivation(in, index)) return "constant operand";
    }
    return "";
  }
  if (op == "MaxPool" && node.output_size() > 1 && !node.output(1).empty()) {
    return "MaxPool with indices";
  }
  return "";
}

// Gives every input of a quantized Concat the Concat's scale and zero point (the union of
// their ranges), transitively: ORT's QLinearConcat then copies bytes instead of requantizing
// each input through a lookup table.
void UnifyConcatParameters(const onnx::GraphProto& graph, const std::vector<bool>& quantized,
                           QuantPlan& plan) {
  std::map<std::string, std::string> parent;
  std::function<std::string(const std::string&)> find = [&](const std::string& x) {
    auto it = parent.find(x);
    if (it == parent.end() || it->second == x) return x;
    return it->second = find(it->second);
  };
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& node = graph.node(i);
    if (!quantized[i] || node.op_type() != "Concat") continue;
    const std::string out = find(plan.param_source.at(node.output(0)));
    for (const auto& in : node.input()) {
      const std::string r = find(plan.param_source.at(in));
      if (r != out) parent[r] = out;
    }
  }
  std::map<std::string, std::set<std::string>> members;
  for (auto& [tensor, source] : plan.param_source) {
    const std::string rep = find(source);
    members[rep].insert(source);
    source = rep;
  }
  for (auto& [rep, roots] : members) {
    if (roots.size() > 1) plan.range_group[rep] = {roots.begin(), roots.end()};
  }
}

}  // namespace

onnx::ModelProto PrepareForQuantization(const onnx::ModelProto& model, const std::string& name) {
  onnx::ModelProto prepared = model;
  bool has_conv = false;
  for (const auto& node : model.graph().node()) has_conv = has_conv || node.op_type() == "Conv";
  if (!has_conv) throw BadInput(name + ": no Conv node to quantize");
  if (DefaultOpset(prepared) < kPerAxisOpset) ConvertOpset(prepared, kPerAxisOpset, name);
  GraphIndex index(prepared.graph());
  for (auto& node : *prepared.mutable_graph()->mutable_node()) {
    if (node.name().empty()) node.set_name(index.UniqueName(node.op_type()));
  }
  InferShapes(prepared);  // static shapes for rewrites that need them (upsampling)
  return prepared;
}

std::vector<std::string> FindDecodeNodes(const onnx::GraphProto& graph) {
  const GraphIndex index(graph);
  std::vector<bool> decode(graph.node_size(), false);
  std::vector<std::string> stack;
  for (const auto& out : graph.output()) stack.push_back(out.name());
  // Walk back from the outputs through everything that is not a learned Conv: that is the
  // decode (it holds no learned weights except the fixed DFL projection).
  while (!stack.empty()) {
    const std::string tensor = stack.back();
    stack.pop_back();
    const int p = index.Producer(tensor);
    if (p < 0 || decode[p]) continue;
    const onnx::NodeProto& node = graph.node(p);
    if (node.op_type() == "Conv" && !IsDflConv(node, index)) continue;
    decode[p] = true;
    for (const auto& in : node.input()) {
      if (IsActivation(in, index)) stack.push_back(in);
    }
  }
  std::vector<std::string> names;
  for (int i = 0; i < graph.node_size(); ++i) {
    if (decode[i]) names.push_back(graph.node(i).name());
  }
  return names;
}

std::vector<std::string> UnknownNodes(const onnx::GraphProto& graph,
                                      const std::vector<std::string>& names) {
  std::unordered_set<std::string> known;
  for (const auto& node : graph.node()) known.insert(node.name());
  std::vector<std::string> unknown;
  for (const auto& n : names) {
    if (!known.count(n)) unknown.push_back(n);
  }
  return unknown;
}

QuantPlan PlanQuantization(const onnx::ModelProto& prepared, const QuantizeOptions& options) {
  const onnx::GraphProto& graph = prepared.graph();
  const GraphIndex index(graph);
  QuantPlan plan;
  for (const auto& n : FindDecodeNodes(graph)) plan.float_reason[n] = "decode";
  for (const auto& n : options.exclude) plan.float_reason[n] = "--exclude";
  for (const auto& n : options.keep_float) {
    if (!plan.float_reason.count(n)) plan.float_reason[n] = "accuracy gate";
  }

  std::vector<bool> quantized(graph.node_size(), false);
  auto produced_quantized = [&](const std::string& tensor) {
    const int p = index.Producer(tensor);
    return p >= 0 && quantized[p];
  };
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& node = graph.node(i);
    if (plan.float_reason.count(node.name())) continue;
    const std::string& op = node.op_type();
    if (op == "Constant") continue;  // data, not computation
    if (!kComputeOps.count(op) && !IsMoveOp(op)) {
      plan.float_reason[node.name()] = "no integer kernel";
      continue;
    }
    // The Conv on the image: with 3 input channels the integer kernel (im2col, K = 27) is
    // slower than ORT's float direct convolution, and quantizing it would need a Q pass
    // over the full-resolution input; its bright pixels (uint8 near 255) are also what
    // saturates full-range weights on CPUs without VNNI.
    if (op == "Conv" && !options.quantize_input_conv && index.IsGraphInput(node.input(0))) {
      plan.float_reason[node.name()] = "input Conv";
      continue;
    }
    const std::string why = Ineligible(node, index);
    if (!why.empty()) {
      plan.float_reason[node.name()] = why;
      continue;
    }
    // A data-movement node is worth running on uint8 only when its input already is.
    if (IsMoveOp(op) && !produced_quantized(node.input(0))) {
      plan.float_reason[node.name()] = "between float nodes";
      continue;
    }
    quantized[i] = true;
    plan.quantized.push_back(node.name());
  }

  // Q->DQ tensors and the source of their parameters, in graph order.
  std::set<std::string> seen;
  auto add_tensor = [&](const std::string& t, const std::string& source) {
    if (t.empty() || !seen.insert(t).second) return;
    plan.qdq_tensors.push_back(t);
    plan.param_source[t] = source;
  };
  for (int i = 0; i < graph.node_size(); ++i) {
    if (!quantized[i]) continue;
    const onnx::NodeProto& node = graph.node(i);
    for (const auto& in : ActivationInputs(node)) add_tensor(in, in);
    const bool move = IsMoveOp(node.op_type());
    const std::string& root = move ? plan.param_source.at(node.input(0)) : std::string();
    for (const auto& out : node.output()) add_tensor(out, move ? root : out);
  }

  if (options.unify_concat) UnifyConcatParameters(graph, quantized, plan);

  // Layers for the accuracy gate: each Conv with its SiLU, then every other quantized node.
  std::set<int> grouped;
  auto add_layer = [&](std::vector<int> members) {
    QuantLayer layer;
    std::set<std::string> inside;
    for (int m : members) {
      grouped.insert(m);
      layer.nodes.push_back(graph.node(m).name());
      for (const auto& o : graph.node(m).output()) inside.insert(o);
    }
    for (int m : members) {
      for (const auto& in : ActivationInputs(graph.node(m))) {
        if (!inside.count(in) &&
            std::find(layer.inputs.begin(), layer.inputs.end(), in) == layer.inputs.end()) {
          layer.inputs.push_back(in);
        }
      }
    }
    layer.name = graph.node(members.front()).name();
    layer.output = graph.node(members.back()).output(0);
    plan.layers.push_back(std::move(layer));
  };
  for (int i = 0; i < graph.node_size(); ++i) {
    if (!quantized[i] || grouped.count(i)) continue;
    const onnx::NodeProto& node = graph.node(i);
    std::vector<int> members = {i};
    if (node.op_type() == "Conv") {
      const std::string& y = node.output(0);
      const auto& consumers = index.Consumers(y);
      int sigmoid = -1, mul = -1;
      for (int c : consumers) {
        if (!quantized[c]) continue;
        if (graph.node(c).op_type() == "Sigmoid") sigmoid = c;
        if (graph.node(c).op_type() == "Mul") mul = c;
      }
      if (consumers.size() == 2 && sigmoid >= 0 && mul >= 0) {
        const auto& m = graph.node(mul);
        const std::string& s = graph.node(sigmoid).output(0);
        if ((m.input(0) == y && m.input(1) == s) || (m.input(0) == s && m.input(1) == y)) {
          members = {i, sigmoid, mul};
        }
      }
    }
    add_layer(members);
  }
  return plan;
}

std::vector<std::string> CalibrationTensors(const onnx::ModelProto& prepared) {
  QuantizeOptions widest;
  widest.quantize_input_conv = true;
  const QuantPlan plan = PlanQuantization(prepared, widest);
  const GraphIndex index(prepared.graph());
  std::vector<std::string> tensors;
  std::set<std::string> seen;
  for (const auto& node : prepared.graph().node()) {
    if (std::find(plan.quantized.begin(), plan.quantized.end(), node.name()) ==
        plan.quantized.end()) {
      continue;
    }
    std::vector<std::string> all = ActivationInputs(node);
    all.insert(all.end(), node.output().begin(), node.output().end());
    for (const auto& t : all) {
      if (!t.empty() && seen.insert(t).second) tensors.push_back(t);
    }
  }
  return tensors;
}

}  // namespace cvdeploy::optimize
