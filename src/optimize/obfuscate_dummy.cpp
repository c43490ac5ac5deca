// SPDX-License-Identifier: Apache-2.0
// Dummy layers for obfuscation: small pieces of graph that compute the identity exactly in
// float32 (bit for bit, for every value). Why each is exact:
//   Mul(x, 1), Div(x, 1)  IEEE multiplication/division by 1 returns x (NaN stays NaN, -0 -0).
//   Sub(x, +0)            x - (+0) = x, and -0 - (+0) = -0 (x + 0 would turn -0 into +0).
//   Add(x, -0)            x + (-0) = x, and +0 + (-0) = +0, -0 + (-0) = -0.
//   Max(x, x), Min(x, x)  both operands are the same value.
//   Transpose(P), Transpose(P^-1) and Reshape([N, -1]), Reshape(original dims): data movement.
// ONNX Runtime's graph optimizer removes the arithmetic ones with a neutral constant and
// cancels the Transpose pairs at load time (docs/optimization.md "Obfuscation"); whatever it
// does, removing an exact identity cannot change a bit, and the caller verifies by running.
#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cvdeploy/error.h"
#include "model/onnx_model.h"
#include "optimize/obfuscate_graph.h"

namespace cvdeploy::optimize {
namespace {

enum class Kind { kMulOne, kDivOne, kSubZero, kAddNegZero, kMax, kMin, kTranspose, kReshape };

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kMulOne:
      return "Mul(x, 1)";
    case Kind::kDivOne:
      return "Div(x, 1)";
    case Kind::kSubZero:
      return "Sub(x, +0)";
    case Kind::kAddNegZero:
      return "Add(x, -0)";
    case Kind::kMax:
      return "Max(x, x)";
    case Kind::kMin:
      return "Min(x, x)";
    case Kind::kTranspose:
      return "Transpose + inverse Transpose";
    case Kind::kReshape:
      return "Reshape to [N, -1] and back";
  }
  return "?";
}

// What shape inference knows of a value.
struct ValueType {
  int32_t elem_type = 0;
  bool has_shape = false;
  std::vector<int64_t> dims;  // -1: unknown or symbolic
};

std::map<std::string, ValueType> InferTypes(const onnx::ModelProto& model) {
  onnx::ModelProto copy = model;
  InferShapes(copy);
  std::map<std::string, ValueType> types;
  auto add = [&](const onnx::ValueInfoProto& v) {
    if (!v.type().has_tensor_type()) return;
    const auto& t = v.type().tensor_type();
    ValueType& vt = types[v.name()];
    vt.elem_type = t.elem_type();
    vt.has_shape = t.has_shape();
    for (const auto& d : t.shape().dim()) vt.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
  };
  for (const auto& v : copy.graph().value_info()) add(v);
  for (const auto& v : copy.graph().input()) add(v);
  for (const auto& v : copy.graph().output()) add(v);
  return types;
}

// A value where a dummy layer may go: a float32 output of a node, read by other nodes, not a
// graph output (its name is API), and not on the quantized path (a dummy between a
// DequantizeLinear and its consumer would stop ONNX Runtime from fusing them into an integer
// kernel, which changes the arithmetic).
struct Site {
  std::string tensor;
  int producer = 0;
  ValueType type;
};

bool IsQdq(const std::string& op) { return op == "QuantizeLinear" || op == "DequantizeLinear"; }

std::vector<Site> FindSites(const onnx::ModelProto& model) {
  const onnx::GraphProto& graph = model.graph();
  const std::map<std::string, ValueType> types = InferTypes(model);
  std::set<std::string> outputs;
  for (const auto& o : graph.output()) outputs.insert(o.name());
  std::map<std::string, std::vector<const onnx::NodeProto*>> consumers;
  for (const auto& node : graph.node())
    for (const auto& in : node.input()) consumers[in].push_back(&node);
  std::vector<Site> sites;
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& node = graph.node(i);
    if (node.op_type() == "Constant" || IsQdq(node.op_type()) || !node.domain().empty()) continue;
    for (const auto& out : node.output()) {
      auto type = types.find(out);
      auto readers = consumers.find(out);
      if (out.empty() || outputs.count(out) || type == types.end() ||
          type->second.elem_type != onnx::TensorProto::FLOAT || readers == consumers.end()) {
        continue;
      }
      const auto& r = readers->second;
      if (std::any_of(r.begin(), r.end(), [](auto* n) { return IsQdq(n->op_type()); })) continue;
      sites.push_back({out, i, type->second});
    }
  }
  return sites;
}

// The kinds that fit a value of this shape.
std::vector<Kind> Kinds(const ValueType& type) {
  std::vector<Kind> kinds = {Kind::kMulOne,     Kind::kDivOne, Kind::kSubZero,
                             Kind::kAddNegZero, Kind::kMax,    Kind::kMin};
  const auto& d = type.dims;
  if (type.has_shape && d.size() >= 2) {
    kinds.push_back(Kind::kTranspose);
    if (std::all_of(d.begin() + 1, d.end(), [](int64_t v) { return v > 0; })) {
      kinds.push_back(Kind::kReshape);
    }
  }
  return kinds;
}

class PieceBuilder {
 public:
  PieceBuilder(std::mt19937_64& rng, int index)
      : rng_(rng), prefix_("__obf_dummy_" + std::to_string(index)) {}

  // Nodes computing `out` = identity(`in`); constants go to `inits`.
  std::vector<onnx::NodeProto> Build(Kind kind, const Site& site, const std::string& out,
                                     std::vector<onnx::TensorProto>& inits) {
    const std::string& in = site.tensor;
    switch (kind) {
      case Kind::kMulOne:
        return {Binary("Mul", in, Scalar(1.0f, inits), out)};
      case Kind::kDivOne:
        return {Binary("Div", in, Scalar(1.0f, inits), out)};
      case Kind::kSubZero:
        return {Binary("Sub", in, Scalar(0.0f, inits), out)};
      case Kind::kAddNegZero:
        return {Binary("Add", in, Scalar(-0.0f, inits), out)};
      case Kind::kMax:
        return {Binary("Max", in, in, out)};
      case Kind::kMin:
        return {Binary("Min", in, in, out)};
      case Kind::kTranspose:
        return Transposes(in, site.type.dims.size(), out);
      case Kind::kReshape:
        return Reshapes(in, site.type.dims, out, inits);
    }
    return {};
  }

 private:
  std::string Name(const std::string& what) { return prefix_ + "_" + what + std::to_string(n_++); }

  std::string Scalar(float value, std::vector<onnx::TensorProto>& inits) {
    inits.push_back(model::FloatTensor(Name("c"), {}, {value}));
    return inits.back().name();
  }

  onnx::NodeProto Node(const std::string& op, const std::vector<std::string>& inputs,
                       const std::string& out) {
    onnx::NodeProto node;
    node.set_op_type(op);
    node.set_name(Name("n"));
    for (const auto& in : inputs) node.add_input(in);
    node.add_output(out);
    return node;
  }

  onnx::NodeProto Binary(const std::string& op, const std::string& a, const std::string& b,
                         const std::string& out) {
    return Node(op, {a, b}, out);
  }

  std::vector<onnx::NodeProto> Transposes(const std::string& in, size_t rank,
                                          const std::string& out) {
    std::vector<int64_t> perm(rank);
    std::iota(perm.begin(), perm.end(), 0);
    const std::vector<int64_t> identity = perm;
    while (perm == identity) {  // Fisher-Yates on raw draws; rank >= 2, so it ends
      for (size_t i = rank - 1; i > 0; --i) std::swap(perm[i], perm[rng_() % (i + 1)]);
    }
    std::vector<int64_t> inverse(rank);
    for (size_t i = 0; i < rank; ++i) inverse[perm[i]] = static_cast<int64_t>(i);
    const std::string mid = Name("v");
    std::vector<onnx::NodeProto> nodes = {Node("Transpose", {in}, mid),
                                          Node("Transpose", {mid}, out)};
    for (int k = 0; k < 2; ++k) {
      auto* attr = nodes[k].add_attribute();
      attr->set_name("perm");
      attr->set_type(onnx::AttributeProto::INTS);
      for (int64_t p : k == 0 ? perm : inverse) attr->add_ints(p);
    }
    return nodes;
  }

  // [N, -1] then [N, d1, ..., dn]; 0 copies the batch dim from the input (it may be dynamic).
  std::vector<onnx::NodeProto> Reshapes(const std::string& in, const std::vector<int64_t>& dims,
                                        const std::string& out,
                                        std::vector<onnx::TensorProto>& inits) {
    std::vector<int64_t> back = dims;
    back[0] = 0;
    inits.push_back(model::Int64Tensor(Name("c"), {2}, {0, -1}));
    const std::string flat_shape = inits.back().name();
    inits.push_back(model::Int64Tensor(Name("c"), {static_cast<int64_t>(back.size())}, back));
    const std::string back_shape = inits.back().name();
    const std::string mid = Name("v");
    return {Node("Reshape", {in, flat_shape}, mid), Node("Reshape", {mid, back_shape}, out)};
  }

  std::mt19937_64& rng_;
  std::string prefix_;
  int n_ = 0;
};

}  // namespace

void InsertDummyLayers(onnx::ModelProto& model, int count, uint64_t seed, const std::string& name,
                       ObfuscateReport& report) {
  if (count <= 0) return;
  const std::vector<Site> sites = FindSites(model);
  if (sites.empty()) {
    throw BadInput(name +
                   ": cannot obfuscate: no float32 intermediate value to put a dummy "
                   "layer on (use 0 dummy layers)");
  }
  std::mt19937_64 rng(seed ^ 0x64756d6d79ULL);  // "dummy": a stream of its own
  onnx::GraphProto& graph = *model.mutable_graph();
  // Pieces go right after the node producing their site; a later piece on the same value
  // goes first (the earlier piece now reads its output).
  std::map<int, std::vector<onnx::NodeProto>> after;
  std::vector<onnx::TensorProto> inits;
  for (int i = 0; i < count; ++i) {
    const Site& site = sites[rng() % sites.size()];
    const std::vector<Kind> kinds = Kinds(site.type);
    const Kind kind = kinds[rng() % kinds.size()];
    PieceBuilder builder(rng, i);
    const std::string out = "__obf_dummy_" + std::to_string(i) + "_out";
    // Every reader of the site reads the piece's output instead (earlier pieces included).
    for (auto& node : *graph.mutable_node())
      for (auto& in : *node.mutable_input())
        if (in == site.tensor) in = out;
    for (auto& [producer, nodes] : after)
      for (auto& node : nodes)
        for (auto& in : *node.mutable_input())
          if (in == site.tensor) in = out;
    std::vector<onnx::NodeProto> piece = builder.Build(kind, site, out, inits);
    auto& list = after[site.producer];
    list.insert(list.begin(), piece.begin(), piece.end());
    report.dummy_nodes_added += static_cast<int>(piece.size());
    ++report.dummy_kinds[KindName(kind)];
    report.dummy_sites.push_back(std::string(KindName(kind)) + " after '" + site.tensor + "'");
  }
  report.dummy_layers = count;

  google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
  for (int i = 0; i < graph.node_size(); ++i) {
    *nodes.Add() = graph.node(i);
    auto it = after.find(i);
    if (it == after.end()) continue;
    for (auto& node : it->second) *nodes.Add() = std::move(node);
  }
  graph.mutable_node()->Swap(&nodes);
  // Constants at seeded places among the others, not appended where they would stand out.
  for (auto& init : inits) {
    const int pos = static_cast<int>(rng() % static_cast<uint64_t>(graph.initializer_size() + 1));
    *graph.add_initializer() = std::move(init);
    for (int k = graph.initializer_size() - 1; k > pos; --k) {
      graph.mutable_initializer()->SwapElements(k, k - 1);
    }
  }
}

}  // namespace cvdeploy::optimize
