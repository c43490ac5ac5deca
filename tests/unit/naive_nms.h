// SPDX-License-Identifier: Apache-2.0
// Slow, obvious reference implementations shared by the vision unit tests. They are kept
// deliberately simple (O(n^2), no early exits) so the optimized code has something
// independent to be compared against.
#pragma once

#include <algorithm>
#include <functional>
#include <numeric>
#include <vector>

#include "cvdeploy/types.h"

namespace cvdeploy::testing {

inline double NaiveIou(const BoxXYXY& a, const BoxXYXY& b) {
  const double ix1 = std::max(a.x1, b.x1), iy1 = std::max(a.y1, b.y1);
  const double ix2 = std::min(a.x2, b.x2), iy2 = std::min(a.y2, b.y2);
  const double inter = std::max(0.0, ix2 - ix1) * std::max(0.0, iy2 - iy1);
  const double area_a = std::max(0.0, double{a.x2} - a.x1) * std::max(0.0, double{a.y2} - a.y1);
  const double area_b = std::max(0.0, double{b.x2} - b.x1) * std::max(0.0, double{b.y2} - b.y1);
  const double uni = area_a + area_b - inter;
  return uni > 0 ? inter / uni : 0.0;
}

// Textbook greedy NMS over a precomputed overlap function: sort by score (stable), then
// every kept box suppresses every later box that overlaps it more than `threshold`.
inline std::vector<int> NaiveGreedyNms(size_t n, const std::vector<float>& scores,
                                       const std::function<double(int, int)>& overlap,
                                       double threshold, int max_det) {
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  std::vector<bool> suppressed(n, false);
  std::vector<int> keep;
  for (size_t i = 0; i < n; ++i) {
    if (suppressed[order[i]]) continue;
    keep.push_back(order[i]);
    for (size_t j = i + 1; j < n; ++j) {
      if (overlap(order[i], order[j]) > threshold) suppressed[order[j]] = true;
    }
  }
  if (max_det > 0 && keep.size() > static_cast<size_t>(max_det)) keep.resize(max_det);
  return keep;
}

// Axis-aligned boxes with the class offset applied the slow way (a shifted copy).
inline std::vector<int> NaiveNms(const std::vector<BoxXYXY>& boxes,
                                 const std::vector<float>& scores, const std::vector<int>& classes,
                                 double threshold, bool agnostic, int max_det) {
  std::vector<BoxXYXY> shifted = boxes;
  for (size_t i = 0; i < boxes.size(); ++i) {
    const float s = agnostic ? 0.f : static_cast<float>(classes[i]) * 7680.f;
    shifted[i] = {boxes[i].x1 + s, boxes[i].y1 + s, boxes[i].x2 + s, boxes[i].y2 + s};
  }
  return NaiveGreedyNms(
      boxes.size(), scores, [&](int a, int b) { return NaiveIou(shifted[a], shifted[b]); },
      threshold, max_det);
}

}  // namespace cvdeploy::testing
