// SPDX-License-Identifier: Apache-2.0
// Greedy non-maximum suppression for axis-aligned boxes (torchvision / Ultralytics semantics).
#pragma once

#include <span>
#include <vector>

#include "cvdeploy/types.h"

namespace cvdeploy::vision {

// Ultralytics' per-class coordinate offset (max_wh): boxes of different classes are moved
// this far apart so that one NMS pass never lets one class suppress another.
inline constexpr float kClassOffset = 7680.f;

// Intersection over union of two axis-aligned boxes in float, exact (no epsilon): 0 when they
// do not overlap or either box is empty. The rotated-box counterpart is ProbIou (obb.h).
float AxisAlignedIou(const BoxXYXY& a, const BoxXYXY& b);

// Greedy NMS. Visits boxes by score (descending; ties keep input order) and keeps a box
// unless its IoU with an already kept box is > `iou_threshold`. Unless `agnostic`, every
// box is shifted by class_id * kClassOffset first (class-aware, as Ultralytics).
// Stops after `max_det` kept boxes (a prefix of the unbounded result; max_det <= 0 means
// no limit). `class_ids` may be empty when `agnostic`. Returns indices into `boxes`, best
// first. Thread-safe; allocates O(boxes.size()).
std::vector<int> Nms(std::span<const BoxXYXY> boxes, std::span<const float> scores,
                     std::span<const int> class_ids, float iou_threshold, bool agnostic,
                     int max_det);

// Indices 0..n-1 ordered by score descending, ties by index (a stable order).
std::vector<int> OrderByScore(std::span<const float> scores);

}  // namespace cvdeploy::vision
