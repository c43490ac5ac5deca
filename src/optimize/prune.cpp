// SPDX-License-Identifier: Apache-2.0
#include "optimize/prune.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "cvdeploy/error.h"
#include "model/flops.h"
#include "model/onnx_model.h"
#include "optimize/prune_graph.h"

namespace cvdeploy::optimize {
namespace {

using prune_graph::Atom;
using prune_graph::ChannelAtoms;
using prune_graph::ChannelGraph;
using prune_graph::ConvSite;
using prune_graph::UnionFind;

// Kept channel count of a group of `n` channels.
int KeptChannels(int n, double ratio, int multiple) {
  const double target = n * (1.0 - ratio);
  int keep;
  if (multiple > 1 && n >= multiple) {
    keep = static_cast<int>(std::lround(target / multiple)) * multiple;
    keep = std::clamp(keep, multiple, n);
  } else {
    keep = static_cast<int>(std::lround(target));
  }
  return std::clamp(keep, 1, n);
}

onnx::TensorProto* MutableInitializer(onnx::GraphProto& graph, const std::string& name) {
  for (auto& init : *graph.mutable_initializer()) {
    if (init.name() == name) return &init;
  }
  return nullptr;
}

// Keeps the entries of `dim` (0 or 1) of a tensor of shape `dims` where `keep` is true.
void SliceTensor(onnx::GraphProto& graph, const std::string& name, int dim,
                 const std::vector<bool>& keep) {
  onnx::TensorProto* t = MutableInitializer(graph, name);
  std::vector<int64_t> dims(t->dims().begin(), t->dims().end());
  const std::vector<float> values = FloatData(*t);
  const int64_t outer = dim == 0 ? 1 : dims[0];
  const int64_t inner = NumElements(*t) / (outer * dims[dim]);
  std::vector<float> out;
  out.reserve(values.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < dims[dim]; ++c) {
      if (!keep[static_cast<size_t>(c)]) continue;
      const auto begin = values.begin() + (o * dims[dim] + c) * inner;
      out.insert(out.end(), begin, begin + inner);
    }
  }
  dims[dim] = std::count(keep.begin(), keep.end(), true);
  const int32_t type = t->data_type();
  if (type != onnx::TensorProto::FLOAT) {
    throw BadInput("tensor '" + name + "' is not float32; pruning supports float32 weights only");
  }
  *t = FloatTensor(name, dims, out);
  for (auto& input : *graph.mutable_input()) {  // models that also list weights as inputs
    if (input.name() != name || !input.type().tensor_type().has_shape()) continue;
    auto* shape = input.mutable_type()->mutable_tensor_type()->mutable_shape();
    shape->mutable_dim(dim)->set_dim_value(dims[dim]);
  }
}

void SetSplitSizes(onnx::ModelProto& model, onnx::NodeProto& node, GraphIndex& index,
                   const std::vector<int64_t>& sizes) {
  if (DefaultOpset(model) < 13) {
    for (auto& a : *node.mutable_attribute()) {
      if (a.name() == "split") {
        a.clear_ints();
        for (int64_t s : sizes) a.add_ints(s);
        return;
      }
    }
    auto* a = node.add_attribute();
    a->set_name("split");
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t s : sizes) a->add_ints(s);
    return;
  }
  // Opset 13+: the sizes are an input; a fresh initializer, as the old one may be shared.
  const std::string name = index.UniqueName(node.name() + "_pruned_split");
  *model.mutable_graph()->add_initializer() =
      Int64Tensor(name, {static_cast<int64_t>(sizes.size())}, sizes);
  while (node.input_size() < 2) node.add_input("");
  node.set_input(1, name);
  auto* attrs = node.mutable_attribute();
  for (int k = attrs->size() - 1; k >= 0; --k) {
    if (attrs->Get(k).name() == "num_outputs") attrs->DeleteSubrange(k, 1);
  }
}

// Adds to the bias of `node` (created when absent) what its removed input channels
// contributed on average: bias[o] += sum over removed c of mean[c] * sum(W[o, c, ...]).
// Returns false when there was nothing to add.
bool CompensateRemovedInputs(onnx::GraphProto& graph, onnx::NodeProto& node,
                             const std::vector<bool>& in_keep, const std::vector<double>& mean,
                             GraphIndex& names) {
  const onnx::TensorProto& w = *MutableInitializer(graph, node.input(1));
  const int64_t cout = w.dims(0), cin = w.dims(1);
  if (static_cast<int64_t>(mean.size()) != cin || static_cast<int64_t>(in_keep.size()) != cin)
    return false;
  const int64_t per = NumElements(w) / (cout * cin);
  const std::vector<float> values = FloatData(w);
  std::vector<double> add(static_cast<size_t>(cout), 0.0);
  bool any = false;
  for (int64_t c = 0; c < cin; ++c) {
    if (in_keep[static_cast<size_t>(c)]) continue;
    any = true;
    for (int64_t o = 0; o < cout; ++o) {
      double sum = 0;
      for (int64_t k = 0; k < per; ++k) sum += values[static_cast<size_t>((o * cin + c) * per + k)];
      add[static_cast<size_t>(o)] += mean[static_cast<size_t>(c)] * sum;
    }
  }
  if (!any) return false;
  if (node.input_size() < 3 || node.input(2).empty()) {
    const std::string bias = names.UniqueName(node.name() + "_pruned_bias");
    *graph.add_initializer() =
        FloatTensor(bias, {cout}, std::vector<float>(static_cast<size_t>(cout), 0.f));
    while (node.input_size() < 3) node.add_input("");
    node.set_input(2, bias);
  }
  onnx::TensorProto& b = *MutableInitializer(graph, node.input(2));
  std::vector<float> bias = FloatData(b);
  for (int64_t o = 0; o < cout; ++o)
    bias[static_cast<size_t>(o)] += static_cast<float>(add[static_cast<size_t>(o)]);
  b = FloatTensor(b.name(), {cout}, bias);
  return true;
}

std::vector<bool> KeepMask(const ChannelAtoms& atoms, UnionFind& tied,
                           const std::vector<bool>& removed) {
  std::vector<bool> keep(atoms.size(), true);
  for (size_t c = 0; c < atoms.size(); ++c) {
    if (atoms[c] >= 0 && removed[static_cast<size_t>(tied.Find(atoms[c]))]) keep[c] = false;
  }
  return keep;
}

std::string Describe(const std::vector<std::pair<int, int>>& ranges) {
  std::string s;
  for (const auto& [lo, hi] : ranges) {
    if (!s.empty()) s += ",";
    s += std::to_string(lo);
    if (hi > lo) s.append("-").append(std::to_string(hi));
  }
  return s;
}

// Error that removing a channel (replaced by its mean) adds to the Convs reading it, to first
// order: std of the channel there times the L2 norm of the weights that read it.
void ActivationImportance(ChannelGraph& an, const ActivationStats& stats,
                          std::vector<double>& importance) {
  for (const ConvSite& site : an.convs_) {
    if (site.depthwise) continue;  // passes the channel on; its readers are counted
    const onnx::NodeProto& node = an.graph_.node(site.node);
    const auto atoms = an.tensors_.find(node.input(0));
    const auto st = stats.find(node.input(0));
    if (atoms == an.tensors_.end() || st == stats.end()) continue;
    const onnx::TensorProto& w = *an.index_.Constant(node.input(1));
    const int64_t cout = w.dims(0), cin = w.dims(1);
    if (static_cast<int64_t>(atoms->second.size()) != cin ||
        static_cast<int64_t>(st->second.std.size()) != cin) {
      continue;
    }
    const int64_t per = NumElements(w) / (cout * cin);
    const std::vector<float> values = FloatData(w);
    for (int64_t c = 0; c < cin; ++c) {
      const int atom = atoms->second[static_cast<size_t>(c)];
      if (atom < 0) continue;
      double sq = 0;
      for (int64_t o = 0; o < cout; ++o) {
        for (int64_t k = 0; k < per; ++k) {
          const double v = values[static_cast<size_t>((o * cin + c) * per + k)];
          sq += v * v;
        }
      }
      importance[static_cast<size_t>(an.tied_.Find(atom))] +=
          st->second.std[static_cast<size_t>(c)] * std::sqrt(sq);
    }
  }
}

// Slices the weights and biases of every Conv and resizes the channel Splits of `model` as
// `removed` (per atom of `an`) says; records the Conv changes in `report`.
void RewriteGraph(onnx::ModelProto& model, ChannelGraph& an, const std::vector<bool>& removed,
                  const ActivationStats* stats, PruneReport& report) {
  // Rewrite: slice weights and biases, resize Splits. Masks come from the analysis, which
  // refers to the graph as it was; nothing below adds or reorders nodes.
  onnx::GraphProto& graph = *model.mutable_graph();
  GraphIndex names(graph);
  for (const ConvSite& site : an.convs_) {
    onnx::NodeProto& node = *graph.mutable_node(site.node);
    ConvChange change;
    change.name = node.name();
    const auto w_dims = an.index_.Shape(node.input(1));
    change.out_before = w_dims[0];
    change.in_before = w_dims[1] * IntAttribute(node, "group", 1);
    std::vector<bool> out_keep(static_cast<size_t>(w_dims[0]), true);
    if (const auto it = an.tensors_.find(node.output(0)); it != an.tensors_.end())
      out_keep = KeepMask(it->second, an.tied_, removed);
    const int64_t out_kept = std::count(out_keep.begin(), out_keep.end(), true);
    change.out_after = out_kept;
    for (size_t c = 0; c < out_keep.size(); ++c) {
      if (!out_keep[c]) change.removed.push_back(static_cast<int64_t>(c));
    }
    change.in_after = change.in_before;
    const auto has_bias = [&node] { return node.input_size() > 2 && !node.input(2).empty(); };
    if (site.depthwise) {
      SliceTensor(graph, node.input(1), 0, out_keep);
      if (has_bias()) SliceTensor(graph, node.input(2), 0, out_keep);
      for (auto& a : *node.mutable_attribute()) {
        if (a.name() == "group") a.set_i(out_kept);
      }
      change.in_after = out_kept;
    } else {
      if (const auto it = an.tensors_.find(node.input(0)); it != an.tensors_.end()) {
        const std::vector<bool> in_keep = KeepMask(it->second, an.tied_, removed);
        if (stats) {
          if (const auto m = stats->find(node.input(0));
              m != stats->end() &&
              CompensateRemovedInputs(graph, node, in_keep, m->second.mean, names)) {
            ++report.convs_compensated;
          }
        }
        SliceTensor(graph, node.input(1), 1, in_keep);
        change.in_after = std::count(in_keep.begin(), in_keep.end(), true);
      }
      if (out_kept != change.out_before) {
        SliceTensor(graph, node.input(1), 0, out_keep);
        if (has_bias()) SliceTensor(graph, node.input(2), 0, out_keep);
      }
    }
    if (change.in_after != change.in_before || change.out_after != change.out_before)
      report.convs.push_back(change);
  }
  for (const auto& [i, before] : an.splits_) {
    onnx::NodeProto& node = *graph.mutable_node(i);
    std::vector<int64_t> sizes = before;
    for (int k = 0; k < node.output_size(); ++k) {
      if (const auto it = an.tensors_.find(node.output(k)); it != an.tensors_.end()) {
        const std::vector<bool> keep = KeepMask(it->second, an.tied_, removed);
        sizes[static_cast<size_t>(k)] = std::count(keep.begin(), keep.end(), true);
      }
    }
    if (sizes != before) SetSplitSizes(model, node, names, sizes);
  }
}

}  // namespace

PruneReport PruneChannels(onnx::ModelProto& model, const PruneOptions& options,
                          const std::string& name, const ActivationStats* stats) {
  if (!(options.ratio > 0 && options.ratio < 1)) {
    throw InvalidArgument("prune: --ratio " + std::to_string(options.ratio) +
                          " is outside (0, 1): it is the fraction of channels to remove");
  }
  if (options.channel_multiple < 1) {
    throw InvalidArgument("prune: --channel-multiple must be at least 1");
  }
  if (options.method == PruneMethod::kActivation && !stats) {
    throw InvalidArgument("prune: --method activation needs calibration images (--calib DIR)");
  }
  {
    std::set<std::string> nodes;
    for (const auto& node : model.graph().node()) nodes.insert(node.name());
    for (const auto& ex : options.exclude) {
      if (!nodes.count(ex)) {
        throw InvalidArgument("prune: --exclude '" + ex + "' is no node of " + name);
      }
    }
  }
  PruneReport report;
  report.before = model::ToModelCost(model::CountCost(model));
  // The analysis needs every tensor's shape; the shapes are dropped again at the end when the
  // model came without them, so the output differs from the input only where it was pruned.
  const bool had_value_info = model.graph().value_info_size() > 0;
  InferShapes(model);

  ChannelGraph an(model, options);
  an.Run();
  if (an.atoms_.empty()) {
    throw BadInput(name + ": nothing to prune: the graph has no Conv with float weights");
  }

  // Channels (classes of tied atoms) and their importance.
  const size_t n_atoms = an.atoms_.size();
  std::vector<double> importance(n_atoms, 0);
  if (options.method == PruneMethod::kActivation) {
    ActivationImportance(an, *stats, importance);
  } else {
    for (size_t a = 0; a < n_atoms; ++a)
      importance[static_cast<size_t>(an.tied_.Find(static_cast<int>(a)))] += an.atoms_[a].norm;
  }
  std::vector<std::string> lock_reason(n_atoms);
  for (const auto& [atom, reason] : an.locks_) {
    std::string& r = lock_reason[static_cast<size_t>(an.tied_.Find(atom))];
    if (r.empty()) r = reason;
  }

  // Groups: union of the pieces that tied channels belong to.
  UnionFind pieces;
  for (int p = 0; p < an.pieces_; ++p) pieces.Add();
  for (size_t a = 0; a < n_atoms; ++a) {
    const Atom& root = an.atoms_[static_cast<size_t>(an.tied_.Find(static_cast<int>(a)))];
    pieces.Union(root.piece, an.atoms_[a].piece);
  }
  std::map<int, std::vector<int>> group_channels;  // piece root -> channel roots
  std::map<int, std::vector<int>> group_atoms;     // piece root -> atoms
  for (size_t a = 0; a < n_atoms; ++a) {
    const int g = pieces.Find(an.atoms_[a].piece);
    group_atoms[g].push_back(static_cast<int>(a));
    if (an.tied_.Find(static_cast<int>(a)) == static_cast<int>(a))
      group_channels[g].push_back(static_cast<int>(a));
  }

  std::vector<bool> removed(n_atoms, false);
  std::vector<int> conv_atoms(static_cast<size_t>(model.graph().node_size()), 0);
  for (const Atom& atom : an.atoms_) ++conv_atoms[static_cast<size_t>(atom.conv)];
  for (auto& [g, channels] : group_channels) {
    PruneGroup group;
    group.channels = static_cast<int>(channels.size());
    for (int c : channels) {
      if (!lock_reason[static_cast<size_t>(c)].empty()) {
        group.skip_reason = lock_reason[static_cast<size_t>(c)];
        break;
      }
    }
    group.kept = group.channels;
    if (group.skip_reason.empty()) {
      group.kept = KeptChannels(group.channels, options.ratio, options.channel_multiple);
      std::vector<int> order = channels;
      std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
        return importance[static_cast<size_t>(x)] < importance[static_cast<size_t>(y)];
      });
      for (int k = 0; k < group.channels - group.kept; ++k)
        removed[static_cast<size_t>(order[static_cast<size_t>(k)])] = true;
      report.channels_removed += group.channels - group.kept;
    }
    // Describe by Conv: the whole output, or the channel ranges of a Split piece.
    std::map<int, std::vector<int>> by_conv;
    for (int a : group_atoms[g]) {
      by_conv[an.atoms_[static_cast<size_t>(a)].conv].push_back(
          an.atoms_[static_cast<size_t>(a)].channel);
    }
    for (auto& [conv, chans] : by_conv) {
      group.convs.push_back(model.graph().node(conv).name());
      if (static_cast<int>(chans.size()) == conv_atoms[static_cast<size_t>(conv)]) continue;
      std::sort(chans.begin(), chans.end());
      std::vector<std::pair<int, int>> ranges;
      for (int c : chans) {
        if (!ranges.empty() && ranges.back().second + 1 == c) {
          ranges.back().second = c;
        } else {
          ranges.emplace_back(c, c);
        }
      }
      if (!group.piece.empty()) group.piece += "; ";
      group.piece += "channels " + Describe(ranges) + " of " + "'" + group.convs.back() + "'";
    }
    report.groups.push_back(std::move(group));
  }
  if (report.channels_removed == 0) {
    const bool all_skipped =
        std::all_of(report.groups.begin(), report.groups.end(),
                    [](const PruneGroup& g) { return !g.skip_reason.empty(); });
    if (all_skipped) {
      throw BadInput(name + ": nothing to prune: every channel group is locked (first: " +
                     report.groups.front().skip_reason + ")");
    }
    throw InvalidArgument("prune: --ratio " + std::to_string(options.ratio) +
                          " removes no channel of " + name +
                          " (every group rounds back to its size; lower --channel-multiple)");
  }

  RewriteGraph(model, an, removed, stats, report);
  InferShapes(model);
  if (!had_value_info) model.mutable_graph()->clear_value_info();
  report.after = model::ToModelCost(model::CountCost(model));
  return report;
}

}  // namespace cvdeploy::optimize

namespace cvdeploy {

PruneMethod ParsePruneMethod(const std::string& text) {
  if (text == "l1") return PruneMethod::kL1;
  if (text == "l2") return PruneMethod::kL2;
  if (text == "activation") return PruneMethod::kActivation;
  throw InvalidArgument("prune: --method '" + text + "' is not one of: l1, l2, activation");
}

const char* ToString(PruneMethod method) {
  switch (method) {
    case PruneMethod::kL1:
      return "l1";
    case PruneMethod::kL2:
      return "l2";
    case PruneMethod::kActivation:
      return "activation";
  }
  return "?";
}

}  // namespace cvdeploy
