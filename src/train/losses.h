// SPDX-License-Identifier: Apache-2.0
// Training losses on the raw YOLO detection head (libtorch): distillation against a teacher's
// head on unlabelled images, and the Ultralytics-style detection loss (task-aligned assigner,
// BCE, CIoU, DFL) for labelled images, with the box helpers both use.
//
// Shapes use the canonical raw head of torch_graph.h: class logits [B, nc, A], box
// distribution logits [B, 4, reg_max, A] (sides l, t, r, b; reg_max bins 0..reg_max-1 in grid
// units), anchor points [A, 2] in grid units (x + 0.5, y + 0.5) and strides [A] (pixels per
// grid unit). All functions are differentiable where a gradient makes sense and run on the
// tensors' device and dtype (float32 expected).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace cvdeploy::train {

// The raw head of one forward pass, in canonical form (see above).
struct HeadOut {
  torch::Tensor cls;  // [B, nc, A] logits (before sigmoid)
  torch::Tensor box;  // [B, 4, reg_max, A] logits (before the softmax over reg_max)
};

// A loss to minimise (`total`, a scalar with a graph) and its detached parts for progress
// lines. Which parts are filled and what they mean is stated by each loss function.
struct LossParts {
  torch::Tensor total;
  double cls = 0, box = 0, dfl = 0;
};

// ---------------------------------------------------------------------------------------------
// Distillation (no labels).

struct DistillLossOptions {
  double cls_weight = 1.0;
  double box_weight = 1.0;
  // "bce": binary cross-entropy of the student's logits against the teacher's sigmoid
  //   probabilities as soft targets. Its minimum (student == teacher) is NOT 0 but the teacher's
  //   own Bernoulli entropy, summed like the loss: the gradient is the same as "kl"'s.
  // "kl": the KL divergence of the per-class Bernoulli distributions, KL(teacher || student) =
  //   BCE - H(teacher): 0 when student == teacher, identical gradients to "bce".
  std::string cls_loss = "bce";
  // "kl": KL(teacher || student) between the DFL bin distributions (softmax over reg_max),
  //   averaged over the 4 sides.
  // "l1": L1 distance between the decoded ltrb distances (expected bin value, grid units),
  //   averaged over the 4 sides.
  // "iou": 1 - CIoU of the decoded boxes (the detection loss's box term, against the teacher's
  //   box instead of a label).
  // Each is weighted per anchor by the teacher's max class probability (background anchors,
  // whose boxes mean nothing, barely count) and normalised by the sum of those weights.
  std::string box_loss = "kl";
};

// The distillation loss of `student` against `teacher` (same shapes; the teacher is used
// detached). total = cls_weight * cls + box_weight * box, where
//   cls = sum over batch, classes and anchors of the per-class loss / W,
//   box = sum over anchors of w_a * (box loss of anchor a) / W,
//   w_a = max over classes of the teacher's sigmoid probability, W = max(sum of w_a, 1).
// Normalising both parts by W keeps their scale that of one foreground anchor, as the
// detection loss normalises by the target score sum. Fills cls and box (unweighted); dfl = 0.
// Throws Error(kInvalidArgument) for mismatched shapes or an unknown loss name.
LossParts DistillLoss(const HeadOut& student, const HeadOut& teacher,
                      const DistillLossOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Box helpers (Ultralytics utils/metrics.py and utils/tal.py semantics).

// IoU of boxes `a` and `b` (x1, y1, x2, y2 in the last dimension, broadcast against each
// other), [..., 1]. With `ciou`, the complete IoU: IoU - (centre distance^2 / enclosing
// diagonal^2 + v * alpha), v = 4/pi^2 (atan(w2/h2) - atan(w1/h1))^2, alpha = v / (v - IoU + 1),
// alpha without gradient. In [-1, 1]; identical boxes give 1 (up to eps).
torch::Tensor BboxIoU(const torch::Tensor& a, const torch::Tensor& b, bool ciou = false,
                      double eps = 1e-7);

// Distances (l, t, r, b in the last dimension) from anchor points [..., 2] to a box: x1y1x2y2
// (or cx, cy, w, h with `xywh`).
torch::Tensor Dist2Bbox(const torch::Tensor& distance, const torch::Tensor& anchor_points,
                        bool xywh = false);

// The inverse for x1y1x2y2 boxes: (l, t, r, b) = (ax - x1, ay - y1, x2 - ax, y2 - ay),
// clamped to [0, max_distance - 0.01] (max_distance = reg_max - 1 for the DFL targets).
torch::Tensor Bbox2Dist(const torch::Tensor& anchor_points, const torch::Tensor& bbox,
                        double max_distance);

// The expected distance of each side from box logits [B, 4, reg_max, A]: softmax over the bins
// dotted with 0..reg_max-1. Returns [B, A, 4] (l, t, r, b) in grid units.
torch::Tensor DecodeDistances(const torch::Tensor& box_logits);

// ---------------------------------------------------------------------------------------------
// Detection loss (labels).

struct AssignerOptions {
  int64_t topk = 10;
  double alpha = 0.5;  // class score exponent of the alignment metric
  double beta = 6.0;   // IoU exponent of the alignment metric
  double eps = 1e-9;
};

// The task-aligned assigner's answer for B images, A anchors, nc classes.
struct Assignment {
  // Where fg_mask is false, labels and bboxes are those of the image's gt 0 (as Ultralytics):
  // only their foreground entries mean something.
  torch::Tensor labels;   // [B, A] int64, class of the assigned gt
  torch::Tensor bboxes;   // [B, A, 4] assigned gt box, in gt_bboxes' units
  torch::Tensor scores;   // [B, A, nc] one-hot class * normalised alignment metric
  torch::Tensor fg_mask;  // [B, A] bool, anchor has a gt
  torch::Tensor gt_idx;   // [B, A] int64, index of the assigned gt in its image (0 where bg)
};

// Ultralytics' TaskAlignedAssigner (no gradient). pd_scores [B, A, nc] (probabilities),
// pd_bboxes [B, A, 4] and anchor_points [A, 2] in pixels, gt_labels [B, M, 1] (class ids as
// floats or ints), gt_bboxes [B, M, 4] x1y1x2y2 pixels, mask_gt [B, M, 1] (1 for real rows,
// 0 for padding). Candidates of a gt: anchors whose centre is strictly inside its box; the
// metric is score^alpha * CIoU.clamp(0)^beta; each gt takes its topk anchors by metric; an
// anchor claimed by several gts keeps the one with the highest IoU; the target score of a
// positive anchor is metric / (max metric of its gt) * (max IoU of its gt).
Assignment TaskAlignedAssign(const torch::Tensor& pd_scores, const torch::Tensor& pd_bboxes,
                             const torch::Tensor& anchor_points, const torch::Tensor& gt_labels,
                             const torch::Tensor& gt_bboxes, const torch::Tensor& mask_gt,
                             const AssignerOptions& options = {});

struct DetectionLossOptions {
  double box_gain = 7.5;
  double cls_gain = 0.5;
  double dfl_gain = 1.5;
  AssignerOptions assigner;
};

// Ultralytics' v8DetectionLoss on `pred` for a batch of `batch_size` images (pred's batch).
// targets [N, 6]: one row per gt box, (batch_index, class, x1, y1, x2, y2) in input pixels
// (N may be 0: all background). The parts, each normalised by S = max(sum of target scores, 1):
//   cls = sum of BCE(logits, target scores) / S
//   box = sum over positives of (1 - CIoU) * weight / S      (weight = the anchor's score sum)
//   dfl = sum over positives of DFL(distances to the gt in grid units) * weight / S
// Convention (as Ultralytics, whose per-image mean is what its hyper-parameters were tuned
// for): total = (box_gain * box + cls_gain * cls + dfl_gain * dfl) * batch_size, while the
// LossParts doubles are the gained parts WITHOUT the batch factor (Ultralytics' logged items).
// Throws Error(kInvalidArgument) for malformed shapes or a batch index out of range.
LossParts DetectionLoss(const HeadOut& pred, const torch::Tensor& anchors,
                        const torch::Tensor& strides, const torch::Tensor& targets,
                        int64_t batch_size, const DetectionLossOptions& options = {});

}  // namespace cvdeploy::train
