// SPDX-License-Identifier: Apache-2.0
// Distillation and detection losses on the raw YOLO head (see losses.h).
#include "train/losses.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "cvdeploy/error.h"

namespace cvdeploy::train {
namespace {

namespace F = torch::nn::functional;

void Require(bool ok, const std::string& message) {
  if (!ok) throw Error(ErrorCode::kInvalidArgument, message);
}

std::string ShapeText(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(t.size(i));
  }
  s += "]";
  return s;
}

// 3 for 3.0, 2.5 for 2.5: target values in messages.
std::string NumberText(float v) {
  if (std::abs(v) < 1e15f && v == std::trunc(v)) return std::to_string(static_cast<int64_t>(v));
  std::ostringstream out;
  out << v;
  return out.str();
}

// cls [B, nc, A] and box [B, 4, reg_max, A] with matching B and A.
void CheckHead(const HeadOut& head, const char* what) {
  std::string name(what);
  Require(head.cls.defined() && head.cls.dim() == 3,
          name + ": class logits must be [B, nc, A], got " + ShapeText(head.cls));
  Require(head.box.defined() && head.box.dim() == 4 && head.box.size(1) == 4,
          name + ": box logits must be [B, 4, reg_max, A], got " + ShapeText(head.box));
  Require(head.cls.size(0) == head.box.size(0) && head.cls.size(2) == head.box.size(3),
          name + ": class " + ShapeText(head.cls) + " and box " + ShapeText(head.box) +
              " logits disagree on batch or anchors");
}

torch::Tensor ElementwiseBce(const torch::Tensor& logits, const torch::Tensor& targets) {
  return F::binary_cross_entropy_with_logits(
      logits, targets, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
}

// Ultralytics' DFL: cross-entropy towards the two bins around each target distance, weighted by
// the distance to each. pred [P * 4, reg_max], target [P, 4] -> [P, 1].
torch::Tensor DflLoss(const torch::Tensor& pred, const torch::Tensor& target, int64_t reg_max) {
  torch::Tensor t = target.clamp(0, static_cast<double>(reg_max - 1) - 0.01);
  torch::Tensor tl = t.to(torch::kLong);
  torch::Tensor tr = tl + 1;
  torch::Tensor wl = tr.to(t.scalar_type()) - t;
  torch::Tensor wr = 1 - wl;
  auto ce = [&](const torch::Tensor& index) {
    return F::cross_entropy(pred, index.view({-1}),
                            F::CrossEntropyFuncOptions().reduction(torch::kNone))
        .view(tl.sizes());
  };
  return (ce(tl) * wl + ce(tr) * wr).mean(-1, true);
}

// targets [N, 6] (batch_index, class, x1, y1, x2, y2) -> gt [B, M, 5] (class, box) and the mask
// of real rows [B, M, 1], M the largest count of one image.
std::pair<torch::Tensor, torch::Tensor> PadTargets(const torch::Tensor& targets, int64_t batch_size,
                                                   int64_t num_classes,
                                                   const torch::TensorOptions& to) {
  Require(targets.defined() && targets.dim() == 2 && targets.size(1) == 6,
          "detection loss: targets must be [N, 6], got " + ShapeText(targets));
  torch::Tensor rows = targets.detach().to(torch::kCPU, torch::kFloat).contiguous();
  auto acc = rows.accessor<float, 2>();
  std::vector<int64_t> counts(static_cast<size_t>(batch_size), 0);
  for (int64_t i = 0; i < rows.size(0); ++i) {
    float b = acc[i][0];
    Require(b >= 0 && b < static_cast<float>(batch_size) && b == static_cast<float>(int64_t(b)),
            "detection loss: target row " + std::to_string(i) + " has batch index " +
                NumberText(b) + " outside the batch of " + std::to_string(batch_size));
    const float cls = acc[i][1];
    Require(cls >= 0 && cls < static_cast<float>(num_classes) &&
                cls == static_cast<float>(int64_t(cls)),
            "detection loss: target row " + std::to_string(i) + " has class " + NumberText(cls) +
                ", the model has " + std::to_string(num_classes));
    Require(std::isfinite(acc[i][2]) && std::isfinite(acc[i][3]) && std::isfinite(acc[i][4]) &&
                std::isfinite(acc[i][5]),
            "detection loss: target row " + std::to_string(i) + " has a box that is not finite");
    ++counts[static_cast<size_t>(b)];
  }
  int64_t m = counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end());
  torch::Tensor gt = torch::zeros({batch_size, m, 5}, torch::kFloat);
  torch::Tensor mask = torch::zeros({batch_size, m, 1}, torch::kFloat);
  auto g = gt.accessor<float, 3>();
  auto k = mask.accessor<float, 3>();
  std::fill(counts.begin(), counts.end(), 0);
  for (int64_t i = 0; i < rows.size(0); ++i) {
    auto b = static_cast<int64_t>(acc[i][0]);
    int64_t j = counts[static_cast<size_t>(b)]++;
    for (int c = 0; c < 5; ++c) g[b][j][c] = acc[i][c + 1];
    k[b][j][0] = 1;
  }
  return {gt.to(to), mask.to(to)};
}

}  // namespace

LossParts DistillLoss(const HeadOut& student, const HeadOut& teacher,
                      const DistillLossOptions& options) {
  CheckHead(student, "student head");
  CheckHead(teacher, "teacher head");
  Require(student.cls.sizes() == teacher.cls.sizes() && student.box.sizes() == teacher.box.sizes(),
          "distill loss: student " + ShapeText(student.cls) + "/" + ShapeText(student.box) +
              " and teacher " + ShapeText(teacher.cls) + "/" + ShapeText(teacher.box) +
              " heads differ in shape");
  Require(options.cls_loss == "bce" || options.cls_loss == "kl",
          "distill loss: class loss must be bce or kl, got " + options.cls_loss);
  Require(options.box_loss == "kl" || options.box_loss == "l1" || options.box_loss == "iou",
          "distill loss: box loss must be kl, l1 or iou, got " + options.box_loss);
  torch::Tensor t_cls = teacher.cls.detach();
  torch::Tensor t_box = teacher.box.detach();
  torch::Tensor p_t = torch::sigmoid(t_cls);                  // [B, nc, A]
  torch::Tensor w = std::get<0>(p_t.max(1));                  // [B, A]
  torch::Tensor norm = w.sum().clamp_min(1.0);                // scalar
  torch::Tensor cls_elem = ElementwiseBce(student.cls, p_t);  // [B, nc, A]
  // KL(Bernoulli(p_t) || Bernoulli(p_s)) = BCE(s, p_t) - H(p_t); H(p_t) = BCE(t, p_t).
  if (options.cls_loss == "kl") cls_elem = cls_elem - ElementwiseBce(t_cls, p_t);
  torch::Tensor cls = cls_elem.sum() / norm;

  torch::Tensor per_anchor;  // [B, A]
  if (options.box_loss == "kl") {
    torch::Tensor log_s = torch::log_softmax(student.box, 2);
    torch::Tensor log_t = torch::log_softmax(t_box, 2);
    per_anchor = (log_t.exp() * (log_t - log_s)).sum(2).mean(1);
  } else if (options.box_loss == "l1") {
    per_anchor = (DecodeDistances(student.box) - DecodeDistances(t_box)).abs().mean(-1);
  } else {
    // CIoU is invariant to translation and scale, so both boxes can sit on the anchor at the
    // origin in grid units: (-l, -t, r, b).
    const torch::Tensor sign = torch::tensor({-1.0F, -1.0F, 1.0F, 1.0F}, student.box.options());
    torch::Tensor s_box = DecodeDistances(student.box) * sign;  // [B, A, 4]
    torch::Tensor t_box_xyxy = DecodeDistances(t_box) * sign;
    per_anchor = (1.0 - BboxIoU(s_box, t_box_xyxy, /*ciou=*/true)).squeeze(-1);
  }
  torch::Tensor box = (per_anchor * w).sum() / norm;

  LossParts parts;
  parts.total = options.cls_weight * cls + options.box_weight * box;
  parts.cls = cls.item<double>();
  parts.box = box.item<double>();
  return parts;
}

torch::Tensor BboxIoU(const torch::Tensor& a, const torch::Tensor& b, bool ciou, double eps) {
  auto ac = a.chunk(4, -1);
  auto bc = b.chunk(4, -1);
  const torch::Tensor &ax1 = ac[0], &ay1 = ac[1], &ax2 = ac[2], &ay2 = ac[3];
  const torch::Tensor &bx1 = bc[0], &by1 = bc[1], &bx2 = bc[2], &by2 = bc[3];
  torch::Tensor w1 = ax2 - ax1, h1 = ay2 - ay1 + eps;
  torch::Tensor w2 = bx2 - bx1, h2 = by2 - by1 + eps;
  torch::Tensor inter = (torch::minimum(ax2, bx2) - torch::maximum(ax1, bx1)).clamp_min(0) *
                        (torch::minimum(ay2, by2) - torch::maximum(ay1, by1)).clamp_min(0);
  torch::Tensor uni = w1 * h1 + w2 * h2 - inter + eps;
  torch::Tensor iou = inter / uni;
  if (!ciou) return iou;
  torch::Tensor cw = torch::maximum(ax2, bx2) - torch::minimum(ax1, bx1);
  torch::Tensor ch = torch::maximum(ay2, by2) - torch::minimum(ay1, by1);
  torch::Tensor c2 = cw.pow(2) + ch.pow(2) + eps;
  torch::Tensor rho2 = ((bx1 + bx2 - ax1 - ax2).pow(2) + (by1 + by2 - ay1 - ay2).pow(2)) / 4;
  const double k = 4.0 / (std::numbers::pi * std::numbers::pi);
  torch::Tensor v = k * (torch::atan(w2 / h2) - torch::atan(w1 / h1)).pow(2);
  torch::Tensor alpha;
  {
    torch::NoGradGuard no_grad;
    alpha = v / (v - iou + (1 + eps));
  }
  return iou - (rho2 / c2 + v * alpha);
}

torch::Tensor Dist2Bbox(const torch::Tensor& distance, const torch::Tensor& anchor_points,
                        bool xywh) {
  auto d = distance.chunk(2, -1);
  torch::Tensor x1y1 = anchor_points - d[0];
  torch::Tensor x2y2 = anchor_points + d[1];
  if (xywh) return torch::cat({(x1y1 + x2y2) / 2, x2y2 - x1y1}, -1);
  return torch::cat({x1y1, x2y2}, -1);
}

torch::Tensor Bbox2Dist(const torch::Tensor& anchor_points, const torch::Tensor& bbox,
                        double max_distance) {
  auto c = bbox.chunk(2, -1);
  return torch::cat({anchor_points - c[0], c[1] - anchor_points}, -1).clamp(0, max_distance - 0.01);
}

torch::Tensor DecodeDistances(const torch::Tensor& box_logits) {
  Require(box_logits.dim() == 4 && box_logits.size(1) == 4,
          "box logits must be [B, 4, reg_max, A], got " + ShapeText(box_logits));
  int64_t reg_max = box_logits.size(2);
  torch::Tensor bins = torch::arange(reg_max, box_logits.options()).view({1, 1, reg_max, 1});
  return (torch::softmax(box_logits, 2) * bins).sum(2).permute({0, 2, 1});
}

Assignment TaskAlignedAssign(const torch::Tensor& pd_scores, const torch::Tensor& pd_bboxes,
                             const torch::Tensor& anchor_points, const torch::Tensor& gt_labels,
                             const torch::Tensor& gt_bboxes, const torch::Tensor& mask_gt,
                             const AssignerOptions& options) {
  torch::NoGradGuard no_grad;
  const int64_t b = pd_scores.size(0), a = pd_scores.size(1), nc = pd_scores.size(2);
  const int64_t m = gt_bboxes.size(1);
  auto fopt = pd_scores.options();
  Assignment out;
  if (m == 0) {
    out.labels = torch::zeros({b, a}, fopt.dtype(torch::kLong));
    out.bboxes = torch::zeros({b, a, 4}, fopt);
    out.scores = torch::zeros({b, a, nc}, fopt);
    out.fg_mask = torch::zeros({b, a}, fopt.dtype(torch::kBool));
    out.gt_idx = torch::zeros({b, a}, fopt.dtype(torch::kLong));
    return out;
  }
  torch::Tensor gtb = gt_bboxes.to(fopt);
  torch::Tensor mgt = mask_gt.to(fopt);  // [b, m, 1]
  // Candidates: anchor centres strictly inside the gt box.
  torch::Tensor centres = anchor_points.to(fopt).view({1, 1, a, 2});
  torch::Tensor deltas = torch::cat(
      {centres - gtb.slice(-1, 0, 2).unsqueeze(2), gtb.slice(-1, 2, 4).unsqueeze(2) - centres}, -1);
  torch::Tensor in_gts = std::get<0>(deltas.min(-1)).gt(options.eps).to(fopt.dtype());  // b,m,a
  torch::Tensor cand = (in_gts * mgt).to(torch::kBool);

  torch::Tensor labels = gt_labels.view({b, m}).to(torch::kLong).clamp_min(0);
  torch::Tensor scores =
      pd_scores.permute({0, 2, 1}).gather(1, labels.unsqueeze(-1).expand({b, m, a}));
  torch::Tensor zero = torch::zeros({}, fopt);
  scores = torch::where(cand, scores, zero);
  // CIoU only for the candidate pairs (anchors inside a gt): a few percent of B * M * A.
  torch::Tensor overlaps = torch::zeros({b, m, a}, fopt);
  torch::Tensor pair_gt = gtb.unsqueeze(2).expand({b, m, a, 4}).index({cand});
  torch::Tensor pair_pd = pd_bboxes.to(fopt).unsqueeze(1).expand({b, m, a, 4}).index({cand});
  overlaps.index_put_({cand}, BboxIoU(pair_gt, pair_pd, true).squeeze(-1).clamp_min(0));
  torch::Tensor align = scores.pow(options.alpha) * overlaps.pow(options.beta);  // b, m, a

  // Top-k anchors per gt; a padding row's indices all point at 0, counted k times, dropped.
  int64_t k = std::min<int64_t>(options.topk, a);
  torch::Tensor topk_idx = std::get<1>(align.topk(k, -1, true));
  topk_idx.masked_fill_(~mgt.to(torch::kBool).expand({b, m, k}), 0);
  torch::Tensor count = torch::zeros({b, m, a}, fopt);
  count.scatter_add_(-1, topk_idx, torch::ones({b, m, k}, fopt));
  count.masked_fill_(count > 1, 0);
  torch::Tensor mask_pos = count * in_gts * mgt;

  // An anchor claimed by several gts keeps the one it overlaps most.
  torch::Tensor fg = mask_pos.sum(-2);  // b, a
  if (fg.max().item<double>() > 1) {
    torch::Tensor multi = (fg.unsqueeze(1) > 1).expand({b, m, a});
    torch::Tensor is_max =
        torch::zeros_like(mask_pos).scatter_(1, overlaps.argmax(1).unsqueeze(1), 1.0);
    mask_pos = torch::where(multi, is_max, mask_pos);
    fg = mask_pos.sum(-2);
  }
  torch::Tensor gt_idx = mask_pos.argmax(-2);  // b, a
  torch::Tensor flat = (gt_idx + torch::arange(b, gt_idx.options()).unsqueeze(-1) * m).view({-1});
  out.labels = labels.reshape({-1}).index_select(0, flat).view({b, a});
  out.bboxes = gtb.reshape({-1, 4}).index_select(0, flat).view({b, a, 4});
  out.fg_mask = fg > 0;
  torch::Tensor one_hot = F::one_hot(out.labels, nc).to(fopt);
  one_hot = torch::where(out.fg_mask.unsqueeze(-1), one_hot, zero);

  align = align * mask_pos;
  torch::Tensor pos_align = align.amax(-1, true);                     // b, m, 1
  torch::Tensor pos_overlaps = (overlaps * mask_pos).amax(-1, true);  // b, m, 1
  torch::Tensor norm = (align * pos_overlaps / (pos_align + options.eps)).amax(-2).unsqueeze(-1);
  out.scores = one_hot * norm;
  out.gt_idx = gt_idx;
  return out;
}

LossParts DetectionLoss(const HeadOut& pred, const torch::Tensor& anchors,
                        const torch::Tensor& strides, const torch::Tensor& targets,
                        int64_t batch_size, const DetectionLossOptions& options) {
  CheckHead(pred, "detection loss");
  const int64_t b = pred.cls.size(0), a = pred.cls.size(2);
  const int64_t reg_max = pred.box.size(2);
  Require(batch_size == b, "detection loss: batch size " + std::to_string(batch_size) +
                               " but the head has " + std::to_string(b));
  Require(anchors.dim() == 2 && anchors.size(0) == a && anchors.size(1) == 2,
          "detection loss: anchors must be [A, 2] with A = " + std::to_string(a) + ", got " +
              ShapeText(anchors));
  Require(strides.numel() == a, "detection loss: strides must have A = " + std::to_string(a) +
                                    " values, got " + ShapeText(strides));
  auto fopt = pred.cls.options().requires_grad(false);
  torch::Tensor anc = anchors.to(fopt);
  torch::Tensor stride = strides.to(fopt).reshape({a, 1});
  torch::Tensor pred_scores = pred.cls.permute({0, 2, 1});                // b, a, nc
  torch::Tensor pred_dist = pred.box.permute({0, 3, 1, 2});               // b, a, 4, R
  torch::Tensor pred_bboxes = Dist2Bbox(DecodeDistances(pred.box), anc);  // b, a, 4 grid
  auto [gt, mask_gt] = PadTargets(targets, b, pred.cls.size(1), fopt);
  torch::Tensor gt_labels = gt.slice(2, 0, 1), gt_bboxes = gt.slice(2, 1, 5);

  Assignment as = TaskAlignedAssign(pred_scores.detach().sigmoid(), pred_bboxes.detach() * stride,
                                    anc * stride, gt_labels, gt_bboxes, mask_gt, options.assigner);
  torch::Tensor score_sum = as.scores.sum().clamp_min(1.0);
  torch::Tensor cls = ElementwiseBce(pred_scores, as.scores).sum() / score_sum;
  torch::Tensor box = torch::zeros({}, fopt), dfl = torch::zeros({}, fopt);
  if (as.fg_mask.any().item<bool>()) {
    torch::Tensor fg = as.fg_mask;
    torch::Tensor target_bboxes = as.bboxes / stride;                    // grid units
    torch::Tensor weight = as.scores.sum(-1).index({fg}).unsqueeze(-1);  // P, 1
    torch::Tensor iou = BboxIoU(pred_bboxes.index({fg}), target_bboxes.index({fg}), true);
    box = ((1.0 - iou) * weight).sum() / score_sum;
    torch::Tensor target_ltrb = Bbox2Dist(anc, target_bboxes, static_cast<double>(reg_max - 1));
    torch::Tensor d =
        DflLoss(pred_dist.index({fg}).reshape({-1, reg_max}), target_ltrb.index({fg}), reg_max);
    dfl = (d * weight).sum() / score_sum;
  }
  torch::Tensor gained_box = box * options.box_gain;
  torch::Tensor gained_cls = cls * options.cls_gain;
  torch::Tensor gained_dfl = dfl * options.dfl_gain;
  LossParts parts;
  parts.total = (gained_box + gained_cls + gained_dfl) * static_cast<double>(batch_size);
  parts.box = gained_box.item<double>();
  parts.cls = gained_cls.item<double>();
  parts.dfl = gained_dfl.item<double>();
  return parts;
}

}  // namespace cvdeploy::train
