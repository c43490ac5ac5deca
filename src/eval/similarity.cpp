// SPDX-License-Identifier: Apache-2.0
#include "eval/similarity.h"

#include <algorithm>
#include <cmath>

namespace cvdeploy::eval {
namespace {

constexpr double kEps = 1e-7;

}  // namespace

double AxisAlignedIouWithEpsilon(const BoxXYXY& a, const BoxXYXY& b) {
  const double iw = std::max(0.0, static_cast<double>(std::min(a.x2, b.x2)) - std::max(a.x1, b.x1));
  const double ih = std::max(0.0, static_cast<double>(std::min(a.y2, b.y2)) - std::max(a.y1, b.y1));
  const double inter = iw * ih;
  return inter / (static_cast<double>(a.Area()) + b.Area() - inter + kEps);
}

std::vector<double> KeypointSigmas(size_t num_keypoints) {
  if (num_keypoints == 17) {
    // Nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles (COCO's per-point
    // annotation spread, divided by 10 as in pycocotools).
    return {.026, .025, .025, .035, .035, .079, .079, .072, .072,
            .062, .062, .107, .107, .087, .087, .089, .089};
  }
  return std::vector<double>(num_keypoints, num_keypoints ? 1.0 / num_keypoints : 0.0);
}

double Oks(std::span<const Keypoint> label, std::span<const Keypoint> prediction, double area,
           std::span<const double> sigmas) {
  double sum = 0.0;
  int visible = 0;
  for (size_t k = 0; k < label.size() && k < sigmas.size(); ++k) {
    if (label[k].visibility <= 0) continue;
    ++visible;
    if (k >= prediction.size()) continue;
    const double dx = static_cast<double>(label[k].x) - prediction[k].x;
    const double dy = static_cast<double>(label[k].y) - prediction[k].y;
    const double two_sigma = 2.0 * sigmas[k];
    const double e = (dx * dx + dy * dy) / (two_sigma * two_sigma * (area + kEps) * 2.0);
    sum += std::exp(-e);
  }
  return sum / (visible + kEps);
}

}  // namespace cvdeploy::eval
