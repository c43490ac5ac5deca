// SPDX-License-Identifier: Apache-2.0
#include "eval/mask_iou.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <opencv2/imgproc.hpp>

namespace cvdeploy::eval {
namespace {

// Fills the pixels of `mask` (covering `roi` of the image) whose centres lie inside
// `polygon` (pixel coordinates), even-odd rule. Rows and columns are half-open: a polygon
// edge at x = 10.0 leaves pixel 9 out and pixel 10 in, so a 10 x 10 square yields exactly
// 100 pixels. cv::fillPoly is not used because it fills both boundary columns and rows
// (11 x 11 for that square), which caps the IoU of a perfect small mask well below 1.
void FillPolygon(const std::vector<cv::Point2d>& polygon, const cv::Rect& roi, cv::Mat& mask) {
  std::vector<std::vector<double>> crossings(roi.height);
  const size_t n = polygon.size();
  for (size_t i = 0; i < n; ++i) {
    const cv::Point2d& a = polygon[i];
    const cv::Point2d& b = polygon[(i + 1) % n];
    if (a.y == b.y) continue;  // horizontal edges never cross a row centre line
    // Rows whose centre y + 0.5 lies in [min y, max y): half-open so a vertex shared by
    // two edges is counted once.
    const double y_lo = std::min(a.y, b.y), y_hi = std::max(a.y, b.y);
    const int r0 = std::max(static_cast<int>(std::ceil(y_lo - 0.5)), roi.y);
    const int r1 = std::min(static_cast<int>(std::ceil(y_hi - 0.5)), roi.y + roi.height);
    for (int r = r0; r < r1; ++r) {
      const double yc = r + 0.5;
      crossings[r - roi.y].push_back(a.x + (yc - a.y) * (b.x - a.x) / (b.y - a.y));
    }
  }
  for (int r = 0; r < roi.height; ++r) {
    std::vector<double>& xs = crossings[r];
    std::sort(xs.begin(), xs.end());
    uint8_t* row = mask.ptr<uint8_t>(r);
    for (size_t k = 0; k + 1 < xs.size(); k += 2) {
      // Columns whose centre x + 0.5 lies in [xs[k], xs[k + 1]).
      const int c0 = std::max(static_cast<int>(std::ceil(xs[k] - 0.5)), roi.x);
      const int c1 = std::min(static_cast<int>(std::ceil(xs[k + 1] - 0.5)), roi.x + roi.width);
      for (int c = c0; c < c1; ++c) row[c - roi.x] = 255;
    }
  }
}

}  // namespace

RegionMask RasterizeLabel(const GroundTruth& label, int width, int height) {
  std::vector<std::vector<cv::Point2f>> polygons = label.polygons;
  if (polygons.empty()) {
    const BoxXYXY& b = label.box;
    polygons.push_back({{b.x1, b.y1}, {b.x2, b.y1}, {b.x2, b.y2}, {b.x1, b.y2}});
  }
  std::vector<std::vector<cv::Point2d>> pixels;
  double min_x = std::numeric_limits<double>::max(), min_y = min_x;
  double max_x = std::numeric_limits<double>::lowest(), max_y = max_x;
  for (const auto& polygon : polygons) {
    if (polygon.size() < 3) continue;  // a point or a segment encloses no pixel
    std::vector<cv::Point2d>& points = pixels.emplace_back();
    for (const cv::Point2f& p : polygon) {
      points.emplace_back(static_cast<double>(p.x) * width, static_cast<double>(p.y) * height);
      min_x = std::min(min_x, points.back().x);
      max_x = std::max(max_x, points.back().x);
      min_y = std::min(min_y, points.back().y);
      max_y = std::max(max_y, points.back().y);
    }
  }
  RegionMask out;
  if (pixels.empty()) return out;
  const int x0 = static_cast<int>(std::floor(min_x)), y0 = static_cast<int>(std::floor(min_y));
  const cv::Rect bounds(x0, y0, static_cast<int>(std::ceil(max_x)) - x0 + 1,
                        static_cast<int>(std::ceil(max_y)) - y0 + 1);
  out.roi = bounds & cv::Rect(0, 0, width, height);
  if (out.roi.empty()) return out;
  out.mask = cv::Mat::zeros(out.roi.size(), CV_8U);
  // One fill per polygon so that overlapping parts of a multi-part label are a union.
  for (const auto& polygon : pixels) FillPolygon(polygon, out.roi, out.mask);
  out.area = cv::countNonZero(out.mask);
  return out;
}

RegionMask PredictionMask(const Detection& detection, int width, int height) {
  RegionMask out;
  const cv::Rect& roi = detection.mask_roi;
  if (detection.mask.empty() || roi.empty()) return out;
  cv::Mat mask = detection.mask;
  if (mask.type() != CV_8UC1) cv::compare(mask, 0, mask, cv::CMP_GT);  // any nonzero is in
  if (mask.size() != roi.size()) {
    cv::resize(mask, mask, roi.size(), 0, 0, cv::INTER_NEAREST);
  }
  out.roi = roi & cv::Rect(0, 0, width, height);
  if (out.roi.empty()) return out;
  out.mask = mask(out.roi - roi.tl());
  out.area = cv::countNonZero(out.mask);
  return out;
}

double MaskIou(const RegionMask& a, const RegionMask& b) {
  double inter = 0.0;
  const cv::Rect overlap = a.roi & b.roi;
  if (!overlap.empty() && !a.mask.empty() && !b.mask.empty()) {
    cv::Mat both;
    cv::bitwise_and(a.mask(overlap - a.roi.tl()), b.mask(overlap - b.roi.tl()), both);
    inter = cv::countNonZero(both);
  }
  return inter / (a.area + b.area - inter + 1e-7);
}

}  // namespace cvdeploy::eval
