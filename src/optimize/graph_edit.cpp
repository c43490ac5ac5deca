// SPDX-License-Identifier: Apache-2.0
#include "optimize/graph_edit.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "cvdeploy/error.h"
#include "model/onnx_model.h"
#include "optimize/batch_verify.h"

namespace cvdeploy::optimize {
namespace {

constexpr const char* kBatchParam = "batch";
// Slice bounds at or beyond this mean "to the end/start of the axis" (exporters write
// INT64_MAX or INT32_MAX).
constexpr int64_t kSliceOpenEnd = std::numeric_limits<int32_t>::max();

Error Fail(const std::string& name, const std::string& reason) {
  return BadInput(name + ": cannot make the batch axis dynamic: " + reason);
}

std::string IntsText(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::optional<std::vector<int64_t>> IntsAttr(const onnx::NodeProto& node, const std::string& attr) {
  const auto* a = FindAttribute(node, attr);
  if (!a) return std::nullopt;
  return std::vector<int64_t>(a->ints().begin(), a->ints().end());
}

// Values of an int64/int32 tensor (raw or typed storage); nullopt for other types.
std::optional<std::vector<int64_t>> TensorInts(const onnx::TensorProto& t) {
  std::vector<int64_t> v;
  if (t.data_type() == onnx::TensorProto::INT64) {
    if (!t.raw_data().empty()) {
      v.resize(t.raw_data().size() / sizeof(int64_t));
      std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(int64_t));
    } else {
      v.assign(t.int64_data().begin(), t.int64_data().end());
    }
  } else if (t.data_type() == onnx::TensorProto::INT32) {
    if (!t.raw_data().empty()) {
      std::vector<int32_t> v32(t.raw_data().size() / sizeof(int32_t));
      std::memcpy(v32.data(), t.raw_data().data(), v32.size() * sizeof(int32_t));
      v.assign(v32.begin(), v32.end());
    } else {
      v.assign(t.int32_data().begin(), t.int32_data().end());
    }
  } else {
    return std::nullopt;
  }
  return v;
}

// A 1-D int64 tensor in typed storage (int64_data), as exporters write shape constants
// (onnx_model's Int64Tensor writes raw_data).
onnx::TensorProto TypedInt64Tensor(const std::string& name, const std::vector<int64_t>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  t.add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) t.add_int64_data(v);
  return t;
}

bool HasSubgraph(const onnx::NodeProto& node) {
  for (const auto& a : node.attribute()) {
    if (a.type() == onnx::AttributeProto::GRAPH || a.type() == onnx::AttributeProto::GRAPHS)
      return true;
  }
  return false;
}

// What the analysis knows about the graph's tensors, computed once in node order (ONNX
// requires nodes to be topologically sorted).
class GraphFacts {
 public:
  explicit GraphFacts(onnx::GraphProto& graph) {
    for (auto& init : *graph.mutable_initializer()) {
      initializers_[init.name()] = &init;
      constant_.insert(init.name());
      shapes_[init.name()] = {init.dims().begin(), init.dims().end()};
    }
    for (const auto& in : graph.input()) {
      if (!initializers_.count(in.name())) data_.insert(in.name());
      graph_io_.insert(in.name());
    }
    for (const auto& out : graph.output()) graph_io_.insert(out.name());
    auto add_shape = [&](const onnx::ValueInfoProto& v) {
      if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return;
      std::vector<int64_t> dims;
      for (const auto& d : v.type().tensor_type().shape().dim())
        dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
      shapes_.emplace(v.name(), std::move(dims));
    };
    for (const auto& v : graph.input()) add_shape(v);
    for (const auto& v : graph.output()) add_shape(v);
    for (const auto& v : graph.value_info()) add_shape(v);

    for (auto& node : *graph.mutable_node()) {
      for (const auto& in : node.input()) ++uses_[in];
      if (node.op_type() == "Constant" && node.output_size() == 1) {
        constant_nodes_[node.output(0)] = &node;
        constant_.insert(node.output(0));
        if (const auto* a = FindAttribute(node, "value"); a && a->has_t())
          shapes_[node.output(0)] = {a->t().dims().begin(), a->t().dims().end()};
        continue;
      }
      bool any_data = false, all_constant = node.input_size() > 0;
      for (const auto& in : node.input()) {
        if (in.empty()) continue;
        any_data = any_data || data_.count(in);
        all_constant = all_constant && constant_.count(in);
      }
      // Shape/Size read only the dims of their input: their values follow the batch at run
      // time, so ops computing on them (Gather, Concat, Reshape targets) need no rewrite.
      const bool shape_only = node.op_type() == "Shape" || node.op_type() == "Size";
      for (const auto& out : node.output()) {
        if (any_data && !shape_only) data_.insert(out);
        if (all_constant) constant_.insert(out);
      }
    }
    for (const auto& out : graph.output()) ++uses_[out.name()];
  }

  // Values depend on the graph inputs' values (and so carry the batch axis, if any).
  bool IsData(const std::string& t) const { return data_.count(t) > 0; }
  // Computed from initializers and Constant nodes only.
  bool IsConstant(const std::string& t) const { return constant_.count(t) > 0; }
  bool IsGraphIo(const std::string& t) const { return graph_io_.count(t) > 0; }
  int Uses(const std::string& t) const {
    auto it = uses_.find(t);
    return it == uses_.end() ? 0 : it->second;
  }
  // Static shape from the original graph (value_info, I/O, initializer dims); -1 = unknown.
  const std::vector<int64_t>* Shape(const std::string& t) const {
    auto it = shapes_.find(t);
    return it == shapes_.end() ? nullptr : &it->second;
  }
  int Rank(const std::string& t) const {
    const auto* s = Shape(t);
    return s ? static_cast<int>(s->size()) : -1;
  }
  // Integer values of a direct initializer or Constant node output.
  std::optional<std::vector<int64_t>> Ints(const std::string& t) const {
    if (auto it = initializers_.find(t); it != initializers_.end()) return TensorInts(*it->second);
    if (auto it = constant_nodes_.find(t); it != constant_nodes_.end()) {
      const onnx::NodeProto& node = *it->second;
      if (const auto* a = FindAttribute(node, "value"); a && a->has_t()) return TensorInts(a->t());
      if (const auto* a = FindAttribute(node, "value_ints"))
        return std::vector<int64_t>(a->ints().begin(), a->ints().end());
      if (const auto* a = FindAttribute(node, "value_int")) return std::vector<int64_t>{a->i()};
    }
    return std::nullopt;
  }
  onnx::TensorProto* Initializer(const std::string& t) const {
    auto it = initializers_.find(t);
    return it == initializers_.end() ? nullptr : it->second;
  }
  onnx::NodeProto* ConstantNode(const std::string& t) const {
    auto it = constant_nodes_.find(t);
    return it == constant_nodes_.end() ? nullptr : it->second;
  }

 private:
  std::map<std::string, onnx::TensorProto*> initializers_;
  std::map<std::string, onnx::NodeProto*> constant_nodes_;
  std::set<std::string> data_, constant_, graph_io_;
  std::map<std::string, int> uses_;
  std::map<std::string, std::vector<int64_t>> shapes_;
};

// Normalizes a possibly negative axis; nullopt when it is negative and the rank is unknown.
std::optional<int64_t> NormalizeAxis(int64_t axis, int rank) {
  if (axis >= 0) return axis;
  if (rank < 0) return std::nullopt;
  return axis + rank;
}

// Checks one node whose first input is batch data. Returns true when it is a Reshape whose
// target must be rewritten [1, ...] -> [0, ...]; throws when the node hard-codes the batch
// in a way that cannot be rewritten.
bool CheckNode(const onnx::NodeProto& node, const GraphFacts& g, int64_t opset,
               const std::string& name) {
  const std::string& op = node.op_type();
  const std::string& x = node.input(0);
  const int rank = g.Rank(x);
  auto input = [&](int i) -> std::string { return node.input_size() > i ? node.input(i) : ""; };
  auto fail = [&](const std::string& why) { return Fail(name, NodeLabel(node) + " " + why); };

  if (op == "Reshape") {
    const std::string& target = input(1);
    if (g.IsData(target) || !g.IsConstant(target)) return false;  // computed from Shape at run time
    const auto values = g.Ints(target);
    if (!values) {
      throw fail(
          "takes its target shape from a constant expression, not a plain constant "
          "(fold constants first)");
    }
    if (values->empty()) throw fail("reshapes batch data to a scalar");
    const int64_t first = values->front();
    if (first == 0 || first == -1) return false;  // already copies/infers the first axis
    if (first != 1) {
      throw fail("has the constant target shape " + IntsText(*values) + " whose first axis " +
                 std::to_string(first) + " is not the batch");
    }
    if (IntAttribute(node, "allowzero", 0) != 0) {
      throw fail("targets " + IntsText(*values) +
                 " with allowzero=1, where 0 means an empty axis, so its batch cannot be copied "
                 "from the input");
    }
    if (const auto* s = g.Shape(x); s && !s->empty() && s->front() > 1) {
      throw fail("targets " + IntsText(*values) + " but its input's first axis is " +
                 std::to_string(s->front()) + ", not the batch");
    }
    return true;
  }
  if (op == "Slice") {
    std::vector<int64_t> starts, ends, axes, steps;
    if (opset < 10) {
      starts = IntsAttr(node, "starts").value_or(std::vector<int64_t>{});
      ends = IntsAttr(node, "ends").value_or(std::vector<int64_t>{});
      axes = IntsAttr(node, "axes").value_or(std::vector<int64_t>{});
    } else {
      const auto s = g.Ints(input(1)), e = g.Ints(input(2));
      const auto a = input(3).empty() ? std::optional<std::vector<int64_t>>(std::vector<int64_t>{})
                                      : g.Ints(input(3));
      const auto st = input(4).empty() ? std::optional<std::vector<int64_t>>(std::vector<int64_t>{})
                                       : g.Ints(input(4));
      if (!a) throw fail("takes its axes at run time, so it may slice the batch axis");
      if (!s || !e || !st) {
        if (std::find(a->begin(), a->end(), 0) == a->end() && !a->empty()) return false;
        throw fail("slices the batch axis with bounds computed at run time");
      }
      starts = *s, ends = *e, axes = *a, steps = *st;
    }
    for (size_t i = 0; i < starts.size(); ++i) {
      const auto axis = NormalizeAxis(axes.empty() ? static_cast<int64_t>(i) : axes[i], rank);
      if (axis != 0) continue;
      const int64_t step = steps.empty() ? 1 : steps[i];
      const bool whole = step == 1 && (starts[i] == 0 || starts[i] <= -kSliceOpenEnd) &&
                         i < ends.size() && ends[i] >= kSliceOpenEnd;
      if (!whole) {
        throw fail("slices the batch axis (axis 0) with constant bounds [" +
                   std::to_string(starts[i]) + ":" +
                   (i < ends.size() ? std::to_string(ends[i]) : "?") + ":" + std::to_string(step) +
                   "]");
      }
    }
    return false;
  }
  if (op == "Split" || op == "Gather") {
    if (NormalizeAxis(IntAttribute(node, "axis", 0), rank) == 0) {
      throw fail(op == "Split" ? "splits the batch axis (axis 0)"
                               : "indexes the batch axis (axis 0)");
    }
    return false;
  }
  if (op == "Squeeze") {
    std::optional<std::vector<int64_t>> axes;
    if (opset < 13) {
      axes = IntsAttr(node, "axes");
    } else if (!input(1).empty()) {
      axes = g.Ints(input(1));
      if (!axes) throw fail("takes its axes at run time, so it may drop the batch axis");
    }
    if (!axes) throw fail("has no axes, so it drops every axis of size 1, the batch included");
    for (int64_t a : *axes) {
      if (NormalizeAxis(a, rank) == 0) throw fail("drops the batch axis (axis 0)");
    }
    return false;
  }
  if (op == "Flatten") {
    const auto axis = NormalizeAxis(IntAttribute(node, "axis", 1), rank);
    if (axis != 1) {
      throw fail("with axis " + std::to_string(IntAttribute(node, "axis", 1)) +
                 " folds the batch axis into another axis");
    }
    return false;
  }
  if (op == "Expand") {
    const auto shape = g.Ints(input(1));
    if (shape && static_cast<int>(shape->size()) == rank && !shape->empty() && shape->front() > 1) {
      throw fail("broadcasts the batch axis to the constant " + std::to_string(shape->front()));
    }
    return false;
  }
  if (op == "Resize" && !input(3).empty()) {
    const auto sizes = g.Ints(input(3));
    if (sizes && !sizes->empty() && sizes->front() == 1) {
      throw fail("has the constant output sizes " + IntsText(*sizes) +
                 ", which fix the batch at 1 (only scales follow the batch)");
    }
    return false;
  }
  return false;
}

// A Concat joining batch data with a constant whose first axis is 1 breaks at batch > 1.
void CheckConcat(const onnx::NodeProto& node, const GraphFacts& g, const std::string& name) {
  int rank = -1;
  for (const auto& in : node.input()) rank = std::max(rank, g.Rank(in));
  if (NormalizeAxis(IntAttribute(node, "axis", 0), rank) == 0) return;
  for (const auto& in : node.input()) {
    const auto* s = g.Shape(in);
    if (g.IsConstant(in) && s && s->size() >= 2 && s->front() == 1) {
      throw Fail(name, NodeLabel(node) + " joins batch data with the constant '" + in +
                           "' whose first axis is 1");
    }
  }
}

// Sets dim 0 of a graph input to the symbolic "batch"; throws unless it is a fixed 1.
void MakeInputDynamic(onnx::ValueInfoProto& v, const std::string& name) {
  const std::string what = "input '" + v.name() + "'";
  if (!v.type().has_tensor_type()) throw Fail(name, what + " is not a tensor");
  if (!v.type().tensor_type().has_shape()) throw Fail(name, what + " has no shape");
  auto* shape = v.mutable_type()->mutable_tensor_type()->mutable_shape();
  if (shape->dim_size() == 0) throw Fail(name, what + " is a scalar: it has no batch axis");
  auto* dim = shape->mutable_dim(0);
  if (!dim->has_dim_value()) {
    throw Fail(name, what + " already has a dynamic batch axis" +
                         (dim->dim_param().empty() ? "" : " ('" + dim->dim_param() + "')"));
  }
  if (dim->dim_value() != 1) {
    throw Fail(name, what + " has a fixed batch of " + std::to_string(dim->dim_value()) +
                         "; only batch-1 graphs can be converted");
  }
  dim->set_dim_param(kBatchParam);  // the oneof replaces dim_value
}

// Outputs follow: a declared first axis must be 1 (or already symbolic). An output without
// a declared shape is left alone; verification checks that it follows the batch.
void MakeOutputDynamic(onnx::ValueInfoProto& v, const std::string& name) {
  if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return;
  auto* shape = v.mutable_type()->mutable_tensor_type()->mutable_shape();
  if (shape->dim_size() == 0) {
    throw Fail(name, "output '" + v.name() + "' is a scalar: it has no batch axis");
  }
  auto* dim = shape->mutable_dim(0);
  if (dim->has_dim_value() && dim->dim_value() != 1) {
    throw Fail(name, "output '" + v.name() + "' has the first axis " +
                         std::to_string(dim->dim_value()) + ", not a batch of 1");
  }
  dim->set_dim_param(kBatchParam);
}

std::string ShapeText(const onnx::ValueInfoProto& v) {
  std::string s = v.name() + " [";
  const auto& dims = v.type().tensor_type().shape().dim();
  for (int i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += dims[i].has_dim_value() ? std::to_string(dims[i].dim_value())
                                 : (dims[i].dim_param().empty() ? "?" : dims[i].dim_param());
  }
  return s + "]";
}

// Points every planned Reshape at a target whose first element is 0. The constant is edited
// in place when only those Reshapes read it, else cloned under a fresh name.
int RewriteReshapeTargets(onnx::ModelProto& model, const GraphFacts& g,
                          const std::map<std::string, std::vector<onnx::NodeProto*>>& plans) {
  onnx::GraphProto& graph = *model.mutable_graph();
  std::set<std::string> names;
  for (const auto& n : graph.node())
    for (const auto& o : n.output()) names.insert(o);
  for (const auto& t : graph.initializer()) names.insert(t.name());
  for (const auto& t : graph.input()) names.insert(t.name());
  int rewritten = 0;
  for (const auto& [target, nodes] : plans) {
    std::vector<int64_t> values = *g.Ints(target);
    values[0] = 0;
    rewritten += static_cast<int>(nodes.size());
    const bool exclusive = g.Uses(target) == static_cast<int>(nodes.size()) && !g.IsGraphIo(target);
    onnx::TensorProto* init = g.Initializer(target);
    if (exclusive && init && init->data_type() == onnx::TensorProto::INT64) {
      *init = TypedInt64Tensor(target, values);
      continue;
    }
    if (onnx::NodeProto* c = g.ConstantNode(target); exclusive && c) {
      c->clear_attribute();
      auto* a = c->add_attribute();
      a->set_name("value");
      a->set_type(onnx::AttributeProto::TENSOR);
      *a->mutable_t() = TypedInt64Tensor("", values);
      continue;
    }
    std::string fresh = target + "_dynamic_batch";
    for (int i = 2; names.count(fresh); ++i) fresh = target + "_dynamic_batch" + std::to_string(i);
    names.insert(fresh);
    *graph.add_initializer() = TypedInt64Tensor(fresh, values);
    if (model.ir_version() < 4) {  // IR 3 requires every initializer to be a graph input
      auto* in = graph.add_input();
      in->set_name(fresh);
      in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::INT64);
      in->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(
          static_cast<int64_t>(values.size()));
    }
    for (onnx::NodeProto* node : nodes) node->set_input(1, fresh);
  }
  return rewritten;
}

}  // namespace

std::vector<uint8_t> MakeBatchDynamic(const std::vector<uint8_t>& model_bytes,
                                      const std::string& name, DynamicBatchReport* report) {
  DynamicBatchReport local;
  DynamicBatchReport& r = report ? *report : local;
  r = DynamicBatchReport{};
  onnx::ModelProto model;
  if (model_bytes.empty()) throw BadInput(name + ": file is empty (0 bytes)");
  if (model_bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !model.ParseFromArray(model_bytes.data(), static_cast<int>(model_bytes.size()))) {
    throw BadInput(name + ": not a valid ONNX model (protobuf parse failed)");
  }
  if (!model.has_graph() || model.graph().node_size() == 0 || model.ir_version() <= 0) {
    throw BadInput(name + ": not a valid ONNX model (no graph, nodes or IR version)");
  }
  int64_t opset = 0;
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  }
  onnx::GraphProto& graph = *model.mutable_graph();

  // 1. The batch axis of the graph's inputs and outputs: a fixed 1 becomes "batch".
  std::set<std::string> initializers;
  for (const auto& t : graph.initializer()) initializers.insert(t.name());
  for (auto& in : *graph.mutable_input()) {
    if (!initializers.count(in.name())) MakeInputDynamic(in, name);
  }
  for (auto& out : *graph.mutable_output()) MakeOutputDynamic(out, name);

  // 2. Analyse the nodes (value_info still describes the batch-1 shapes) and plan rewrites.
  std::map<std::string, std::vector<onnx::NodeProto*>> plans;  // Reshape target -> readers
  int dynamic_quant_nodes = 0;
  {
    GraphFacts facts(graph);
    for (auto& node : *graph.mutable_node()) {
      if (HasSubgraph(node)) {
        throw Fail(name,
                   NodeLabel(node) + " has a subgraph, which this conversion does not analyse");
      }
      const bool standard = node.domain().empty() || node.domain() == "ai.onnx";
      if (!standard || node.input_size() == 0) continue;
      if (node.op_type() == "Concat") {
        const auto& ins = node.input();
        if (std::any_of(ins.begin(), ins.end(), [&](const auto& in) { return facts.IsData(in); }))
          CheckConcat(node, facts, name);
        continue;
      }
      if (!facts.IsData(node.input(0))) continue;
      if (node.op_type() == "DynamicQuantizeLinear") ++dynamic_quant_nodes;
      if (CheckNode(node, facts, opset, name)) plans[node.input(1)].push_back(&node);
    }

    // 3. Rewrite the Reshape targets that hard-code the batch.
    r.reshapes_rewritten = RewriteReshapeTargets(model, facts, plans);
  }
  r.value_infos_cleared = graph.value_info_size();
  graph.clear_value_info();  // batch-1 intermediate shapes would contradict batch > 1

  for (const auto& in : graph.input()) {
    if (!initializers.count(in.name())) r.inputs.push_back(ShapeText(in));
  }
  if (r.reshapes_rewritten) {
    r.notes.push_back(std::to_string(r.reshapes_rewritten) +
                      " Reshape node(s) targeting [1, ...] (" + std::to_string(plans.size()) +
                      " shape constant(s)) now copy the batch from their input ([0, ...])");
  }
  r.notes.push_back("dropped " + std::to_string(r.value_infos_cleared) +
                    " intermediate shape annotation(s) (value_info) recorded at batch 1");
  if (dynamic_quant_nodes) {
    r.notes.push_back(std::to_string(dynamic_quant_nodes) +
                      " DynamicQuantizeLinear node(s) compute one scale over the whole batch: "
                      "an image's outputs depend on the other images of its batch");
  }
  for (const auto& p : model.metadata_props()) {
    if (p.key() == "batch") {
      r.notes.push_back("metadata 'batch' kept at '" + p.value() +
                        "' (the export batch; the input shape now says dynamic)");
    }
  }

  std::vector<uint8_t> bytes(model.ByteSizeLong());
  if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !model.SerializeToArray(bytes.data(), static_cast<int>(bytes.size()))) {
    throw RuntimeError(name + ": cannot serialize the converted model");
  }
  // 4. Verify by running it.
  VerifyDynamicBatch(model_bytes, bytes, dynamic_quant_nodes > 0, name, r);
  return bytes;
}

}  // namespace cvdeploy::optimize
