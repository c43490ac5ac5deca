// SPDX-License-Identifier: Apache-2.0
#include "eval/mask_iou.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <opencv2/imgproc.hpp>

namespace cvdeploy::eval {
namespace {

// Sub-pixel vertices (1/16 px) so a polygon edge at x = 10.0 splits pixels at their edge,
// not at their centre as integer vertices would.
constexpr int kShift = 4;

}  // namespace

RegionMask RasterizeLabel(const GroundTruth& label, int width, int height) {
  std::vector<std::vector<cv::Point2f>> polygons = label.polygons;
  if (polygons.empty()) {
    const BoxXYXY& b = label.box;
    polygons.push_back({{b.x1, b.y1}, {b.x2, b.y1}, {b.x2, b.y2}, {b.x1, b.y2}});
  }
  double min_x = std::numeric_limits<double>::max(), min_y = min_x;
  double max_x = std::numeric_limits<double>::lowest(), max_y = max_x;
  for (const auto& polygon : polygons) {
    for (const cv::Point2f& p : polygon) {
      min_x = std::min(min_x, static_cast<double>(p.x) * width);
      max_x = std::max(max_x, static_cast<double>(p.x) * width);
      min_y = std::min(min_y, static_cast<double>(p.y) * height);
      max_y = std::max(max_y, static_cast<double>(p.y) * height);
    }
  }
  RegionMask out;
  if (min_x > max_x) return out;
  const int x0 = static_cast<int>(std::floor(min_x)), y0 = static_cast<int>(std::floor(min_y));
  const cv::Rect bounds(x0, y0, static_cast<int>(std::ceil(max_x)) - x0 + 1,
                        static_cast<int>(std::ceil(max_y)) - y0 + 1);
  out.roi = bounds & cv::Rect(0, 0, width, height);
  if (out.roi.empty()) return out;
  out.mask = cv::Mat::zeros(out.roi.size(), CV_8U);

  const double scale = 1 << kShift;
  for (const auto& polygon : polygons) {
    if (polygon.size() < 3) continue;  // a point or a segment encloses no pixel
    // Pixel centres sit at integer coordinates in fillPoly's space, hence the -0.5.
    std::vector<cv::Point> points;
    points.reserve(polygon.size());
    for (const cv::Point2f& p : polygon) {
      points.emplace_back(static_cast<int>(std::lround((p.x * width - 0.5 - out.roi.x) * scale)),
                          static_cast<int>(std::lround((p.y * height - 0.5 - out.roi.y) * scale)));
    }
    // One call per polygon: a single multi-contour call would XOR overlapping parts.
    cv::fillPoly(out.mask, std::vector<std::vector<cv::Point>>{points}, cv::Scalar(255), cv::LINE_8,
                 kShift);
  }
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
