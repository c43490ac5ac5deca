// SPDX-License-Identifier: Apache-2.0
// Internal to the prune tool: which channels of a graph are tied together and which cannot be
// pruned (see prune.h for the model). Not part of any public interface.
#pragma once

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/onnx_model.h"
#include "optimize/prune.h"

namespace cvdeploy::optimize::prune_graph {

// Disjoint sets over dense integer ids.
class UnionFind {
 public:
  int Add() {
    parent_.push_back(static_cast<int>(parent_.size()));
    return parent_.back();
  }
  int Find(int x) {
    while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
    return x;
  }
  void Union(int a, int b) {
    a = Find(a), b = Find(b);
    if (a != b) parent_[std::max(a, b)] = std::min(a, b);  // the older id stays the root
  }
  size_t size() const { return parent_.size(); }

 private:
  std::vector<int> parent_;
};

// One output channel of a prunable Conv.
struct Atom {
  int conv = 0;     // node index
  int channel = 0;  // output channel of that Conv
  double norm = 0;  // L1 or L2 norm of its filter
  int piece = 0;    // which Split pieces it went through (see ChannelGraph::RefinePiece)
};

// Per tensor: the atom at each channel position, -1 for a channel that is not prunable
// (comes from a graph input, a non-prunable producer, ...).
using ChannelAtoms = std::vector<int>;

struct ConvSite {
  int node = 0;
  bool depthwise = false;  // channel-preserving: slice dim 0 of its weight and its group
};

// Walks the graph once (it is topologically sorted, as ONNX requires) and records which
// channels are tied together, which cannot be pruned and why. Reads `model` and `options`,
// which must outlive it; changes neither.
class ChannelGraph {
 public:
  ChannelGraph(const onnx::ModelProto& model, const PruneOptions& options);
  void Run();

  // What Run() found, read by PruneChannels (prune.cpp).
  const onnx::GraphProto& graph_;
  GraphIndex index_;
  const PruneOptions& options_;
  std::set<std::string> initializers_, excluded_;
  std::unordered_map<std::string, std::vector<int64_t>> shapes_;  // known shapes only
  std::vector<Atom> atoms_;
  UnionFind tied_;  // over atoms: channels that must be kept or removed together
  std::unordered_map<std::string, ChannelAtoms> tensors_;
  std::vector<std::pair<int, std::string>> locks_;  // (atom, reason), first reason wins
  std::vector<ConvSite> convs_;                     // Convs whose weights will be sliced
  // Channel-axis Splits to resize: node index and the channel count of each output.
  std::vector<std::pair<int, std::vector<int64_t>>> splits_;
  int pieces_ = 0;
  std::map<std::tuple<int, int, int>, int> refined_;  // (piece, split node, output) -> piece

 private:
  void AddShape(const onnx::ValueInfoProto& v);
  const std::vector<int64_t>* ShapeOf(const std::string& tensor) const;
  // Channel extent (axis 1) of `tensor`, or -1 when unknown.
  int64_t Channels(const std::string& tensor) const;
  const ChannelAtoms* AtomsOf(const std::string& tensor) const;
  void SetAtoms(const std::string& tensor, ChannelAtoms atoms);
  void Lock(const std::string& tensor, const std::string& reason);
  void LockInputs(const onnx::NodeProto& node, int from, const std::string& reason);
  bool PlainInitializer(const std::string& tensor) const;
  double FilterNorm(const std::vector<float>& w, int64_t begin, int64_t count) const;
  void Conv(int i);
  void PassThrough(const onnx::NodeProto& node);
  void Elementwise(const onnx::NodeProto& node);
  void Concat(const onnx::NodeProto& node);
  // A Split piece is ranked on its own: the pieces of one Conv output usually go to
  // different places (C2f: one to the Concat, one through the Bottlenecks).
  int RefinePiece(int piece, int split, int output);
  void Split(int i);
  void Slice(const onnx::NodeProto& node);
};

}  // namespace cvdeploy::optimize::prune_graph
