// SPDX-License-Identifier: Apache-2.0
// Polygons of instance masks: the outer contours, and their merge into one path as
// Ultralytics' masks2segments makes it (strategy "all", its default).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <utility>

#include <opencv2/imgproc.hpp>

#include "vision/mask.h"

namespace cvdeploy::vision {
namespace {

// Indices (in a, in b) of the closest pair of points, squared Euclidean distance; on ties
// the first pair in row-major order (a's index, then b's), as numpy's argmin.
std::pair<size_t, size_t> ClosestPair(const std::vector<cv::Point>& a,
                                      const std::vector<cv::Point>& b) {
  std::pair<size_t, size_t> best{0, 0};
  int64_t best_d = std::numeric_limits<int64_t>::max();
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < b.size(); ++j) {
      const int64_t dx = int64_t{a[i].x} - b[j].x, dy = int64_t{a[i].y} - b[j].y;
      const int64_t d = dx * dx + dy * dy;
      if (d < best_d) {
        best_d = d;
        best = {i, j};
      }
    }
  }
  return best;
}

size_t Distance(size_t a, size_t b) { return a > b ? a - b : b - a; }

}  // namespace

std::vector<cv::Point> MergeSegments(std::vector<std::vector<cv::Point>> segments) {
  const size_t n = segments.size();
  if (n == 0) return {};
  if (n == 1) return std::move(segments[0]);
  for (const auto& s : segments) {
    if (s.empty()) return {};  // findContours never yields one; nothing sensible to join
  }
  // links[i]: the point of contour i closest to contour i - 1, then the one closest to i + 1
  // (the first and last contours have one link).
  std::vector<std::vector<size_t>> links(n);
  for (size_t i = 1; i < n; ++i) {
    const auto [a, b] = ClosestPair(segments[i - 1], segments[i]);
    links[i - 1].push_back(a);
    links[i].push_back(b);
  }
  std::vector<cv::Point> path;
  // Forward: each contour starts at its first link and is closed; the first and last are
  // walked whole, a middle one only up to its second link.
  for (size_t i = 0; i < n; ++i) {
    std::vector<cv::Point>& s = segments[i];
    std::vector<size_t> link = links[i];
    if (link.size() == 2 && link[0] > link[1]) {
      // The reference reverses the points but keeps the indices as they were; so do we.
      std::swap(link[0], link[1]);
      std::reverse(s.begin(), s.end());
    }
    std::rotate(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(link[0]), s.end());
    s.push_back(s.front());
    const size_t take = (i == 0 || i == n - 1) ? s.size() : link[1] - link[0] + 1;
    path.insert(path.end(), s.begin(), s.begin() + static_cast<std::ptrdiff_t>(take));
  }
  // Backward through the middle contours: the rest of each, back to where it was entered.
  for (size_t i = n - 1; i-- > 1;) {
    const std::vector<cv::Point>& s = segments[i];
    const size_t skip = Distance(links[i][0], links[i][1]);
    path.insert(path.end(), s.begin() + static_cast<std::ptrdiff_t>(skip), s.end());
  }
  return path;
}

MaskOutline OutlineMask(const cv::Mat& mask, cv::Point offset, bool all_parts) {
  MaskOutline out;
  if (mask.empty()) return out;
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(mask, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE, offset);
  if (contours.empty()) return out;
  out.polygon = MergeSegments(contours);
  std::vector<double> areas(contours.size());
  for (size_t i = 0; i < contours.size(); ++i) areas[i] = cv::contourArea(contours[i]);
  std::vector<size_t> order(contours.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    // Single-point or line contours have area 0; fall back to point count.
    if (areas[a] != areas[b]) return areas[a] > areas[b];
    return contours[a].size() > contours[b].size();
  });
  const size_t n = all_parts ? order.size() : 1;
  out.parts.reserve(n);
  for (size_t i = 0; i < n; ++i) out.parts.push_back(std::move(contours[order[i]]));
  return out;
}

}  // namespace cvdeploy::vision
