// SPDX-License-Identifier: Apache-2.0
#include "vision/nms.h"

#include <algorithm>
#include <numeric>

namespace cvdeploy::vision {

float AxisAlignedIou(const BoxXYXY& a, const BoxXYXY& b) {
  const float iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  const float ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  if (iw <= 0.f || ih <= 0.f) return 0.f;
  const float inter = iw * ih;
  const float uni = a.Area() + b.Area() - inter;
  return uni > 0.f ? inter / uni : 0.f;
}

std::vector<int> OrderByScore(std::span<const float> scores) {
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  return order;
}

std::vector<int> Nms(std::span<const BoxXYXY> boxes, std::span<const float> scores,
                     std::span<const int> class_ids, float iou_threshold, bool agnostic,
                     int max_det) {
  const size_t limit = max_det > 0 ? static_cast<size_t>(max_det) : boxes.size();
  std::vector<int> keep;
  if (boxes.empty() || limit == 0) return keep;
  const bool offset = !agnostic && class_ids.size() == boxes.size();

  // Kept boxes are stored already offset, so each comparison is a plain IoU.
  std::vector<BoxXYXY> kept_boxes;
  keep.reserve(std::min(limit, boxes.size()));
  kept_boxes.reserve(keep.capacity());
  for (int idx : OrderByScore(scores)) {
    BoxXYXY box = boxes[idx];
    if (offset) {
      const float shift = static_cast<float>(class_ids[idx]) * kClassOffset;
      box = {box.x1 + shift, box.y1 + shift, box.x2 + shift, box.y2 + shift};
    }
    bool suppressed = false;
    for (const BoxXYXY& k : kept_boxes) {
      if (AxisAlignedIou(box, k) > iou_threshold) {
        suppressed = true;
        break;
      }
    }
    if (suppressed) continue;
    keep.push_back(idx);
    kept_boxes.push_back(box);
    if (keep.size() >= limit) break;
  }
  return keep;
}

}  // namespace cvdeploy::vision
