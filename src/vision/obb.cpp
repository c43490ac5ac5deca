// SPDX-License-Identifier: Apache-2.0
#include "vision/obb.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "vision/nms.h"

namespace cvdeploy::vision {
namespace {

// Centre and covariance (a = var x, b = var y, c = cov xy) of a box's Gaussian. Computed in
// double: the offset centres (up to ~6e5) and the subtraction in the determinant lose too
// much in float.
struct Gaussian {
  double x, y, a, b, c;
};

Gaussian ToGaussian(const RotatedBox& r, double shift = 0.0) {
  const double w2 = static_cast<double>(r.w) * r.w / 12.0;
  const double h2 = static_cast<double>(r.h) * r.h / 12.0;
  const double cs = std::cos(static_cast<double>(r.angle));
  const double sn = std::sin(static_cast<double>(r.angle));
  return {r.cx + shift, r.cy + shift, w2 * cs * cs + h2 * sn * sn, w2 * sn * sn + h2 * cs * cs,
          (w2 - h2) * cs * sn};
}

double ProbIouGaussian(const Gaussian& p, const Gaussian& q, double eps) {
  const double a = p.a + q.a, b = p.b + q.b, c = p.c + q.c;
  const double dx = p.x - q.x, dy = p.y - q.y;
  const double denom = a * b - c * c + eps;
  const double t1 = (a * dy * dy + b * dx * dx) / denom * 0.25;
  const double t2 = (c * (q.x - p.x) * dy) / denom * 0.5;
  const double det_p = std::max(p.a * p.b - p.c * p.c, 0.0);
  const double det_q = std::max(q.a * q.b - q.c * q.c, 0.0);
  const double t3 = 0.5 * std::log((a * b - c * c) / (4.0 * std::sqrt(det_p * det_q) + eps) + eps);
  const double bd = std::clamp(t1 + t2 + t3, eps, 100.0);
  const double hd = std::sqrt(1.0 - std::exp(-bd) + eps);
  return 1.0 - hd;
}

}  // namespace

float ProbIou(const RotatedBox& a, const RotatedBox& b, float eps) {
  return static_cast<float>(ProbIouGaussian(ToGaussian(a), ToGaussian(b), eps));
}

std::vector<int> NmsRotated(std::span<const RotatedBox> boxes, std::span<const float> scores,
                            std::span<const int> class_ids, float iou_threshold, bool agnostic,
                            int max_det) {
  const size_t limit = max_det > 0 ? static_cast<size_t>(max_det) : boxes.size();
  std::vector<int> keep;
  if (boxes.empty() || limit == 0) return keep;
  const bool offset = !agnostic && class_ids.size() == boxes.size();
  constexpr double kEps = 1e-7;

  std::vector<Gaussian> kept;
  for (int idx : OrderByScore(scores)) {
    const double shift = offset ? class_ids[idx] * static_cast<double>(kClassOffset) : 0.0;
    const Gaussian g = ToGaussian(boxes[idx], shift);
    bool suppressed = false;
    for (const Gaussian& k : kept) {
      if (ProbIouGaussian(g, k, kEps) > iou_threshold) {
        suppressed = true;
        break;
      }
    }
    if (suppressed) continue;
    keep.push_back(idx);
    kept.push_back(g);
    if (keep.size() >= limit) break;
  }
  return keep;
}

RotatedBox RegularizeRotatedBox(const RotatedBox& box) {
  constexpr double kPi = std::numbers::pi;
  // Python-style modulo (result has the sign of the divisor).
  auto mod = [](double v, double m) {
    const double r = std::fmod(v, m);
    return r < 0 ? r + m : r;
  };
  RotatedBox out = box;
  if (mod(box.angle, kPi) >= kPi / 2) std::swap(out.w, out.h);
  double a = mod(box.angle, kPi / 2);
  if (a >= kPi / 2) a = 0.0;  // guards the float rounding of fmod at the boundary
  out.angle = static_cast<float>(a);
  return out;
}

std::array<cv::Point2f, 4> RotatedCorners(const RotatedBox& box) {
  const float cs = std::cos(box.angle), sn = std::sin(box.angle);
  const cv::Point2f c(box.cx, box.cy);
  const cv::Point2f u(box.w / 2 * cs, box.w / 2 * sn);
  const cv::Point2f v(-box.h / 2 * sn, box.h / 2 * cs);
  return {c + u + v, c + u - v, c - u - v, c - u + v};
}

BoxXYXY RotatedBounds(const RotatedBox& box) {
  const auto pts = RotatedCorners(box);
  BoxXYXY b{pts[0].x, pts[0].y, pts[0].x, pts[0].y};
  for (const auto& p : pts) {
    b.x1 = std::min(b.x1, p.x);
    b.y1 = std::min(b.y1, p.y);
    b.x2 = std::max(b.x2, p.x);
    b.y2 = std::max(b.y2, p.y);
  }
  return b;
}

}  // namespace cvdeploy::vision
