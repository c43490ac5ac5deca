// SPDX-License-Identifier: Apache-2.0
// Rotated-box geometry for OBB models: probabilistic IoU (Ultralytics batch_probiou),
// greedy rotated NMS, angle regularization and corners.
#pragma once

#include <array>
#include <span>
#include <vector>

#include <opencv2/core.hpp>

#include "cvdeploy/types.h"

namespace cvdeploy::vision {

// Probabilistic IoU of two rotated boxes: each box is modelled as a 2-D Gaussian with
// covariance R diag(w^2/12, h^2/12) R^T; the Bhattacharyya distance bd between the two
// Gaussians (clamped to [eps, 100]) gives iou = 1 - sqrt(1 - exp(-bd) + eps).
// Symmetric, ~1 for identical boxes, ~0 for distant ones. Angles in radians.
float ProbIou(const RotatedBox& a, const RotatedBox& b, float eps = 1e-7f);

// Greedy rotated NMS: visits boxes by score (descending; ties keep input order) and keeps a
// box unless ProbIou with an already kept box is > `iou_threshold` (a box is suppressed only
// by kept, higher-scored boxes). Unless `agnostic`, centres are shifted by
// class_id * kClassOffset (class-aware). Stops after `max_det` kept boxes (<= 0: no limit).
// Returns indices into `boxes`, best first. Thread-safe.
std::vector<int> NmsRotated(std::span<const RotatedBox> boxes, std::span<const float> scores,
                            std::span<const int> class_ids, float iou_threshold, bool agnostic,
                            int max_det);

// Canonical form of the same rectangle, as current Ultralytics `regularize_rboxes`: when
// angle mod pi is >= pi/2, w and h are swapped; the angle becomes angle mod pi/2, in
// [0, pi/2). The rectangle covered does not change.
RotatedBox RegularizeRotatedBox(const RotatedBox& box);

// The four corners (Ultralytics xywhr2xyxyxyxy order): c+u+v, c+u-v, c-u-v, c-u+v with
// u = (w/2)(cos a, sin a) and v = (h/2)(-sin a, cos a).
std::array<cv::Point2f, 4> RotatedCorners(const RotatedBox& box);

// Axis-aligned bounds of the corners (not clipped).
BoxXYXY RotatedBounds(const RotatedBox& box);

}  // namespace cvdeploy::vision
