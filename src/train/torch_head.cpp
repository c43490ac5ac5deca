// SPDX-License-Identifier: Apache-2.0
// The detection head of a TorchGraph (torch_graph.h): where its raw class and box logits are,
// their canonical layout, the anchors and the export's decode.
#include <torch/torch.h>

#include <cmath>

#include "cvdeploy/error.h"
#include "model/onnx_model.h"
#include "train/torch_graph.h"
#include "train/torch_graph_impl.h"

namespace cvdeploy::train {
namespace {

Error NoHead(const std::string& name, const std::string& why) {
  return Error(ErrorCode::kBadInput, name + ": no YOLO detection head found: " + why);
}

// The Concat with a Sigmoid among its inputs that makes a graph output (through Identity,
// and through an outer Concat as in pose exports): {output name, Sigmoid input}.
std::string SigmoidInput(const onnx::GraphProto& graph, const model::GraphIndex& index,
                         const std::string& tensor, int depth) {
  int c = index.Producer(tensor);
  while (c >= 0 && graph.node(c).op_type() == "Identity")
    c = index.Producer(graph.node(c).input(0));
  if (c < 0 || graph.node(c).op_type() != "Concat" || depth > 2) return "";
  for (const auto& in : graph.node(c).input()) {
    const int s = index.Producer(in);
    if (s >= 0 && graph.node(s).op_type() == "Sigmoid") return graph.node(s).input(0);
  }
  for (const auto& in : graph.node(c).input()) {
    std::string found = SigmoidInput(graph, index, in, depth + 1);
    if (!found.empty()) return found;
  }
  return "";
}

std::pair<std::string, std::string> FindClassLogits(const onnx::GraphProto& graph,
                                                    const model::GraphIndex& index) {
  for (const auto& out : graph.output()) {
    std::string logits = SigmoidInput(graph, index, out.name(), 0);
    if (!logits.empty()) return {out.name(), logits};
  }
  return {};
}

// The DFL Softmax (its output reaches a Conv through Transposes only): its input, and the
// permutation from the canonical [B, 4, reg_max, A] tensor (the Reshape before the
// Transposes) to that input.
std::pair<std::string, std::vector<int64_t>> FindBoxLogits(const onnx::GraphProto& graph,
                                                           const model::GraphIndex& index) {
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& sm = graph.node(i);
    if (sm.op_type() != "Softmax") continue;
    std::string t = sm.output(0);
    bool reaches_conv = false;
    for (int hops = 0; hops < 4 && !reaches_conv; ++hops) {
      const auto& readers = index.Consumers(t);
      if (readers.size() != 1) break;
      const onnx::NodeProto& r = graph.node(readers[0]);
      reaches_conv = r.op_type() == "Conv";
      if (r.op_type() != "Transpose") break;
      t = r.output(0);
    }
    if (!reaches_conv) continue;
    std::vector<int64_t> perm{0, 1, 2, 3};
    std::string v = sm.input(0);
    for (int p = index.Producer(v); p >= 0 && graph.node(p).op_type() == "Transpose";
         p = index.Producer(v)) {
      const onnx::AttributeProto* a = model::FindAttribute(graph.node(p), "perm");
      if (a == nullptr || a->ints_size() != 4) break;
      std::vector<int64_t> next(4);
      for (size_t k = 0; k < 4; ++k) next[k] = a->ints(static_cast<int>(perm[k]));
      perm = next;
      v = graph.node(p).input(0);
    }
    return {sm.input(0), perm};
  }
  return {};
}

int64_t AnchorCount(int64_t h, int64_t w, const std::vector<int64_t>& strides) {
  int64_t n = 0;
  for (int64_t s : strides) n += ((h + s - 1) / s) * ((w + s - 1) / s);
  return n;
}

}  // namespace

HeadTaps TorchGraph::Head() const {
  const Impl& g = *impl_;
  const onnx::GraphProto& graph = g.model.graph();
  model::GraphIndex index(graph);
  HeadTaps taps;
  std::tie(taps.output, taps.class_logits) = FindClassLogits(graph, index);
  if (taps.class_logits.empty()) throw NoHead(g.name, "no output Concat reads a Sigmoid");
  std::tie(taps.box_logits, taps.box_perm) = FindBoxLogits(graph, index);
  if (taps.box_logits.empty()) throw NoHead(g.name, "no DFL Softmax feeding a Conv");
  if (g.inputs.size() != 1) throw NoHead(g.name, "the graph has more than one input");
  // One probe run on a blank image gives the sizes (nc, reg_max, anchors).
  std::vector<int64_t> shape = g.input_shapes.at(g.inputs[0]);
  if (shape.size() != 4) throw NoHead(g.name, "the input is not [B, 3, H, W]");
  for (int64_t& d : shape) d = d > 0 ? d : (&d == &shape[0] ? 1 : 640);
  torch::NoGradGuard no_grad;
  auto values = Forward({{g.inputs[0], torch::zeros(shape)}}, {taps.class_logits, taps.box_logits});
  RawHead head = CanonicalHead(taps, values);
  if (head.cls.dim() != 3 || head.box.dim() != 4 || head.box.size(1) != 4 ||
      head.box.size(3) != head.cls.size(2))
    throw NoHead(g.name, "the class and box logits do not have the YOLO layout");
  taps.nc = static_cast<int>(head.cls.size(1));
  taps.reg_max = static_cast<int>(head.box.size(2));
  for (std::vector<int64_t> strides :
       {std::vector<int64_t>{8, 16, 32}, std::vector<int64_t>{8, 16, 32, 64},
        std::vector<int64_t>{16, 32, 64}}) {
    if (AnchorCount(shape[2], shape[3], strides) == head.cls.size(2)) {
      taps.strides = strides;
      return taps;
    }
  }
  throw NoHead(g.name, "the anchor count matches no stride set");
}

RawHead CanonicalHead(const HeadTaps& taps, const std::map<std::string, torch::Tensor>& values) {
  auto get = [&](const std::string& t) {
    auto it = values.find(t);
    if (it == values.end())
      throw Error(ErrorCode::kBadInput, "CanonicalHead: '" + t + "' was not computed (extra)");
    return it->second;
  };
  std::vector<int64_t> inverse(taps.box_perm.size());
  for (size_t i = 0; i < taps.box_perm.size(); ++i)
    inverse[static_cast<size_t>(taps.box_perm[i])] = static_cast<int64_t>(i);
  return {get(taps.class_logits), get(taps.box_logits).permute(inverse)};
}

std::pair<torch::Tensor, torch::Tensor> MakeAnchors(int64_t h, int64_t w,
                                                    const std::vector<int64_t>& strides) {
  std::vector<torch::Tensor> points, stride_of;
  for (int64_t s : strides) {
    const int64_t gh = (h + s - 1) / s, gw = (w + s - 1) / s;
    torch::Tensor sy = torch::arange(gh, torch::kFloat) + 0.5;
    torch::Tensor sx = torch::arange(gw, torch::kFloat) + 0.5;
    auto grid = torch::meshgrid({sy, sx}, "ij");
    points.push_back(torch::stack({grid[1], grid[0]}, -1).reshape({-1, 2}));
    stride_of.push_back(torch::full({gh * gw}, static_cast<float>(s)));
  }
  return {torch::cat(points), torch::cat(stride_of)};
}

std::pair<torch::Tensor, torch::Tensor> DecodeHead(const RawHead& head,
                                                   const torch::Tensor& anchors,
                                                   const torch::Tensor& strides) {
  const int64_t reg_max = head.box.size(2);
  torch::Tensor bins = torch::arange(reg_max, head.box.options()).view({1, 1, reg_max, 1});
  torch::Tensor dist = (torch::softmax(head.box, 2) * bins).sum(2);  // [B, 4, A]
  torch::Tensor anc = anchors.t().unsqueeze(0).to(dist.dtype());     // [1, 2, A]
  torch::Tensor lt = dist.narrow(1, 0, 2), rb = dist.narrow(1, 2, 2);
  torch::Tensor x1y1 = anc - lt, x2y2 = anc + rb;
  torch::Tensor box = torch::cat({(x1y1 + x2y2) / 2, x2y2 - x1y1}, 1);
  return {box * strides.view({1, 1, -1}).to(dist.dtype()), torch::sigmoid(head.cls)};
}

}  // namespace cvdeploy::train
