// SPDX-License-Identifier: Apache-2.0
#include "optimize/prune_graph.h"

#include <cmath>

#include "model/onnx_model.h"

namespace cvdeploy::optimize::prune_graph {
namespace {

// Ops that keep every channel where it is (input 0 -> output 0); the extent check in
// PassThrough() catches the rare attribute that changes the channel count.
const std::set<std::string>& PassThroughOps() {
  static const std::set<std::string> ops = {
      "Sigmoid",       "Relu",         "LeakyRelu", "Tanh",
      "HardSigmoid",   "HardSwish",    "Elu",       "Selu",
      "Softplus",      "Softsign",     "Identity",  "Neg",
      "Abs",           "Clip",         "Dropout",   "Erf",
      "Exp",           "Log",          "Sqrt",      "Reciprocal",
      "Floor",         "Ceil",         "Round",     "Sin",
      "Cos",           "Mish",         "Gelu",      "Celu",
      "MaxPool",       "AveragePool",  "LpPool",    "GlobalAveragePool",
      "GlobalMaxPool", "GlobalLpPool", "Resize",    "Upsample",
      "Cast"};
  return ops;
}

// Element-wise ops over several (broadcast) inputs: channels at the same position are tied.
const std::set<std::string>& ElementwiseOps() {
  static const std::set<std::string> ops = {"Add", "Sub", "Mul",  "Div", "Max",
                                            "Min", "Sum", "Mean", "Pow"};
  return ops;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

int64_t NormalizeAxis(int64_t axis, size_t rank) {
  return axis < 0 ? axis + static_cast<int64_t>(rank) : axis;
}

}  // namespace

ChannelGraph::ChannelGraph(const onnx::ModelProto& model, const PruneOptions& options)
    : graph_(model.graph()), index_(graph_), options_(options) {
  for (const auto& init : graph_.initializer()) initializers_.insert(init.name());
  for (const auto& v : graph_.value_info()) AddShape(v);
  for (const auto& v : graph_.input()) AddShape(v);
  for (const auto& v : graph_.output()) AddShape(v);
  for (const auto& init : graph_.initializer())
    shapes_[init.name()] = {init.dims().begin(), init.dims().end()};
  for (const auto& node : graph_.node()) {
    if (node.op_type() == "Constant" && node.output_size() == 1) {
      if (const onnx::TensorProto* t = index_.Constant(node.output(0)))
        shapes_[node.output(0)] = {t->dims().begin(), t->dims().end()};
    }
  }
  excluded_.insert(options.exclude.begin(), options.exclude.end());
}

void ChannelGraph::Run() {
  for (int i = 0; i < graph_.node_size(); ++i) {
    const onnx::NodeProto& node = graph_.node(i);
    const std::string& op = node.op_type();
    if (op == "Conv") {
      Conv(i);
    } else if (PassThroughOps().count(op)) {
      PassThrough(node);
    } else if (ElementwiseOps().count(op)) {
      Elementwise(node);
    } else if (op == "Concat") {
      Concat(node);
    } else if (op == "Split") {
      Split(i);
    } else if (op == "Slice") {
      Slice(node);
    } else {
      LockInputs(node, 0, "reaches " + NodeLabel(node));
    }
    if (excluded_.count(node.name())) {
      const std::string reason = "touches " + NodeLabel(node) + ", excluded by --exclude";
      LockInputs(node, 0, reason);
      for (const auto& out : node.output()) Lock(out, reason);
    }
  }
  for (const auto& out : graph_.output()) {
    Lock(out.name(), "reaches the graph output " + Quote(out.name()));
  }
}

void ChannelGraph::AddShape(const onnx::ValueInfoProto& v) {
  if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return;
  std::vector<int64_t> dims;
  for (const auto& d : v.type().tensor_type().shape().dim())
    dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
  shapes_[v.name()] = std::move(dims);
}

const std::vector<int64_t>* ChannelGraph::ShapeOf(const std::string& tensor) const {
  auto it = shapes_.find(tensor);
  return it == shapes_.end() ? nullptr : &it->second;
}

// Channel extent (axis 1) of `tensor`, or -1 when unknown.
int64_t ChannelGraph::Channels(const std::string& tensor) const {
  const auto* s = ShapeOf(tensor);
  return s && s->size() >= 2 ? (*s)[1] : -1;
}

const ChannelAtoms* ChannelGraph::AtomsOf(const std::string& tensor) const {
  auto it = tensors_.find(tensor);
  return it == tensors_.end() ? nullptr : &it->second;
}

void ChannelGraph::SetAtoms(const std::string& tensor, ChannelAtoms atoms) {
  if (std::any_of(atoms.begin(), atoms.end(), [](int a) { return a >= 0; }))
    tensors_[tensor] = std::move(atoms);
}

void ChannelGraph::Lock(const std::string& tensor, const std::string& reason) {
  if (const ChannelAtoms* atoms = AtomsOf(tensor)) {
    for (int a : *atoms) {
      if (a >= 0) locks_.emplace_back(a, reason);
    }
  }
}

void ChannelGraph::LockInputs(const onnx::NodeProto& node, int from, const std::string& reason) {
  for (int i = from; i < node.input_size(); ++i) Lock(node.input(i), reason);
}

bool ChannelGraph::PlainInitializer(const std::string& tensor) const {
  return initializers_.count(tensor) && index_.Consumers(tensor).size() == 1;
}

double ChannelGraph::FilterNorm(const std::vector<float>& w, int64_t begin, int64_t count) const {
  double sum = 0;
  for (int64_t i = begin; i < begin + count; ++i) {
    const double v = w[static_cast<size_t>(i)];
    sum += options_.method == PruneMethod::kL1 ? std::fabs(v) : v * v;
  }
  return options_.method == PruneMethod::kL1 ? sum : std::sqrt(sum);
}

void ChannelGraph::Conv(int i) {
  const onnx::NodeProto& node = graph_.node(i);
  LockInputs(node, 1, "is used as a Conv weight by " + NodeLabel(node));
  const ChannelAtoms* in = AtomsOf(node.input(0));
  const auto* w_shape = node.input_size() > 1 ? ShapeOf(node.input(1)) : nullptr;
  const bool has_bias = node.input_size() > 2 && !node.input(2).empty();
  if (!w_shape || w_shape->size() < 3 || !PlainInitializer(node.input(1)) ||
      (has_bias && !PlainInitializer(node.input(2)))) {
    if (in)
      Lock(node.input(0), "feeds " + NodeLabel(node) + ", whose weights are shared or computed");
    return;
  }
  const int64_t group = IntAttribute(node, "group", 1);
  const int64_t cout = (*w_shape)[0];
  if (group == 1) {
    convs_.push_back({i, false});
    const std::vector<float> w = FloatData(*index_.Constant(node.input(1)));
    const int64_t per = static_cast<int64_t>(w.size()) / cout;
    ChannelAtoms out(static_cast<size_t>(cout));
    const int piece = pieces_++;
    for (int64_t c = 0; c < cout; ++c) {
      out[c] = static_cast<int>(atoms_.size());
      atoms_.push_back({i, static_cast<int>(c), FilterNorm(w, c * per, per), piece});
      tied_.Add();
    }
    tensors_[node.output(0)] = std::move(out);
  } else if (in && (*w_shape)[1] == 1 && group == cout &&
             static_cast<int64_t>(in->size()) == cout) {
    // Depthwise: output channel c reads input channel c only, so the channel passes
    // through; its filter and bias follow whatever is kept.
    convs_.push_back({i, true});
    SetAtoms(node.output(0), *in);
  } else if (in) {
    Lock(node.input(0), "feeds the grouped " + NodeLabel(node));
  }
}

void ChannelGraph::PassThrough(const onnx::NodeProto& node) {
  LockInputs(node, 1, "is a parameter of " + NodeLabel(node));
  const ChannelAtoms* in = AtomsOf(node.input(0));
  if (!in) return;
  const std::string& op = node.op_type();
  if (op == "Resize" && node.input_size() > 3 && !node.input(3).empty()) {
    Lock(node.input(0), "reaches " + NodeLabel(node) + ", whose output sizes are fixed");
    return;
  }
  const bool extra_output = node.output_size() > 1 && !node.output(1).empty() && op != "Dropout";
  if (Channels(node.output(0)) != static_cast<int64_t>(in->size()) || extra_output) {
    Lock(node.input(0), "reaches " + NodeLabel(node) + ", which changes the channels");
    return;
  }
  SetAtoms(node.output(0), *in);
}

void ChannelGraph::Elementwise(const onnx::NodeProto& node) {
  const auto* out_shape = ShapeOf(node.output(0));
  const size_t rank = out_shape ? out_shape->size() : 0;
  if (rank < 2 || (*out_shape)[1] < 0) {
    LockInputs(node, 0, "reaches " + NodeLabel(node) + " with an unknown output shape");
    return;
  }
  const int64_t channels = (*out_shape)[1];
  std::vector<const ChannelAtoms*> tied;
  bool per_channel_other = false;
  for (const auto& input : node.input()) {
    const ChannelAtoms* atoms = AtomsOf(input);
    const auto* shape = ShapeOf(input);
    int64_t extent = -1;  // channel extent after right-aligned broadcasting
    if (shape) {
      const int64_t axis = 1 - static_cast<int64_t>(rank - shape->size());
      extent = axis < 0 ? 1 : (*shape)[axis];
    }
    if (atoms) {
      if (static_cast<int64_t>(atoms->size()) == channels && extent == channels) {
        tied.push_back(atoms);
      } else {
        Lock(input, "is broadcast across channels by " + NodeLabel(node));
      }
    } else if (extent != 1) {
      per_channel_other = true;  // unknown, or a tensor that has its own channels
    }
  }
  if (tied.empty()) return;
  if (per_channel_other) {
    LockInputs(node, 0, "meets channels that cannot be pruned at " + NodeLabel(node));
  }
  ChannelAtoms out = *tied[0];
  for (size_t k = 1; k < tied.size(); ++k) {
    for (size_t c = 0; c < out.size(); ++c) {
      const int a = (*tied[k])[c];
      if (out[c] >= 0 && a >= 0) {
        tied_.Union(out[c], a);
      } else if (out[c] >= 0 || a >= 0) {
        // A prunable channel added to one that must stay: the sum must stay too.
        locks_.emplace_back(std::max(out[c], a),
                            "meets channels that cannot be pruned at " + NodeLabel(node));
        out[c] = std::max(out[c], a);
      }
    }
  }
  SetAtoms(node.output(0), std::move(out));
}

void ChannelGraph::Concat(const onnx::NodeProto& node) {
  const auto* out_shape = ShapeOf(node.output(0));
  const int64_t axis =
      out_shape ? NormalizeAxis(IntAttribute(node, "axis", 0), out_shape->size()) : -1;
  if (axis != 1) {
    LockInputs(node, 0, "reaches " + NodeLabel(node) + " (not on the channel axis)");
    return;
  }
  ChannelAtoms out;
  for (const auto& input : node.input()) {
    if (const ChannelAtoms* atoms = AtomsOf(input)) {
      out.insert(out.end(), atoms->begin(), atoms->end());
      continue;
    }
    const int64_t extent = Channels(input);
    if (extent < 0) {
      LockInputs(node, 0, "reaches " + NodeLabel(node) + " with an input of unknown shape");
      return;
    }
    out.insert(out.end(), static_cast<size_t>(extent), -1);
  }
  SetAtoms(node.output(0), std::move(out));
}

// A Split piece is ranked on its own: the pieces of one Conv output usually go to
// different places (C2f: one to the Concat, one through the Bottlenecks).
int ChannelGraph::RefinePiece(int piece, int split, int output) {
  auto [it, inserted] = refined_.try_emplace({piece, split, output}, pieces_);
  if (inserted) ++pieces_;
  return it->second;
}

void ChannelGraph::Split(int i) {
  const onnx::NodeProto& node = graph_.node(i);
  LockInputs(node, 1, "is a parameter of " + NodeLabel(node));
  const ChannelAtoms* in = AtomsOf(node.input(0));
  if (!in) return;
  const auto* shape = ShapeOf(node.input(0));
  const int64_t axis = shape ? NormalizeAxis(IntAttribute(node, "axis", 0), shape->size()) : -1;
  if (axis != 1) {
    Lock(node.input(0), "reaches " + NodeLabel(node) + " (not on the channel axis)");
    return;
  }
  std::vector<int64_t> sizes;
  int64_t total = 0;
  bool known = true;
  for (const auto& out : node.output()) {
    sizes.push_back(Channels(out));
    known &= sizes.back() >= 0;
    total += sizes.back();
  }
  if (!known || total != static_cast<int64_t>(in->size())) {
    Lock(node.input(0), "reaches " + NodeLabel(node) + " with output shapes not known");
    return;
  }
  splits_.emplace_back(i, sizes);
  const ChannelAtoms atoms = *in;  // tensors_ may rehash below
  size_t offset = 0;
  for (int k = 0; k < node.output_size(); ++k) {
    ChannelAtoms piece(atoms.begin() + static_cast<std::ptrdiff_t>(offset),
                       atoms.begin() + static_cast<std::ptrdiff_t>(offset + sizes[k]));
    for (int a : piece) {
      if (a >= 0) atoms_[a].piece = RefinePiece(atoms_[a].piece, i, k);
    }
    offset += static_cast<size_t>(sizes[k]);
    SetAtoms(node.output(k), std::move(piece));
  }
}

void ChannelGraph::Slice(const onnx::NodeProto& node) {
  LockInputs(node, 1, "is a parameter of " + NodeLabel(node));
  const ChannelAtoms* in = AtomsOf(node.input(0));
  if (!in) return;
  // Only a Slice that leaves the channel axis alone keeps the channels where they are.
  bool channel_axis_untouched = false;
  const auto* shape = ShapeOf(node.input(0));
  if (shape && node.input_size() > 3 && !node.input(3).empty()) {
    if (const onnx::TensorProto* axes = index_.Constant(node.input(3))) {
      channel_axis_untouched = true;
      for (int64_t a : IntData(*axes)) {
        if (NormalizeAxis(a, shape->size()) == 1) channel_axis_untouched = false;
      }
    }
  }
  if (!channel_axis_untouched || Channels(node.output(0)) != static_cast<int64_t>(in->size())) {
    Lock(node.input(0), "reaches " + NodeLabel(node) + ", which may cut channels");
    return;
  }
  SetAtoms(node.output(0), *in);
}

}  // namespace cvdeploy::optimize::prune_graph
