// SPDX-License-Identifier: Apache-2.0
#include "vision/mask.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <opencv2/imgproc.hpp>

namespace cvdeploy::vision {
namespace {

// Bilinear taps along one axis for each output pixel: two source indices (relative to the
// evaluated prototype window) and the weight of the second.
struct Taps {
  std::vector<int> i0, i1;
  std::vector<float> w1;
};

// Maps output pixels [first, first + count) of the original image along one axis to
// prototype coordinates: original centre -> input pixel (scale, pad) -> prototype cell
// centre convention (p = x * ratio - 0.5), clamped to [0, size - 1].
Taps MakeTaps(int first, int count, float scale, int pad, float ratio, int size, int& lo, int& hi) {
  Taps t;
  t.i0.resize(count);
  t.i1.resize(count);
  t.w1.resize(count);
  std::vector<float> pos(count);
  for (int k = 0; k < count; ++k) {
    const float input = (static_cast<float>(first + k) + 0.5f) * scale + static_cast<float>(pad);
    pos[k] = std::clamp(input * ratio - 0.5f, 0.f, static_cast<float>(size - 1));
  }
  lo = static_cast<int>(std::floor(pos.front()));
  hi = std::min(static_cast<int>(std::floor(pos.back())) + 1, size - 1);
  for (int k = 0; k < count; ++k) {
    const int i0 = static_cast<int>(std::floor(pos[k]));
    t.i0[k] = i0 - lo;
    t.i1[k] = std::min(i0 + 1, size - 1) - lo;
    t.w1[k] = pos[k] - static_cast<float>(i0);
  }
  return t;
}

}  // namespace

void ComputeMask(const Prototypes& protos, std::span<const float> coeffs, const BoxXYXY& image_box,
                 const LetterboxInfo& lb, cv::Mat& mask, cv::Rect& roi) {
  mask = cv::Mat();
  roi = cv::Rect();
  const int x0 = static_cast<int>(std::floor(image_box.x1));
  const int y0 = static_cast<int>(std::floor(image_box.y1));
  const int x1 = std::min(static_cast<int>(std::ceil(image_box.x2)), lb.src.width);
  const int y1 = std::min(static_cast<int>(std::ceil(image_box.y2)), lb.src.height);
  if (x0 < 0 || y0 < 0 || x1 <= x0 || y1 <= y0 || protos.data == nullptr || protos.width <= 0 ||
      protos.height <= 0 || static_cast<int>(coeffs.size()) < protos.channels) {
    return;
  }
  const int out_w = x1 - x0, out_h = y1 - y0;
  const float rx = static_cast<float>(protos.width) / static_cast<float>(lb.dst.width);
  const float ry = static_cast<float>(protos.height) / static_cast<float>(lb.dst.height);
  int px0, px1, py0, py1;
  const Taps tx = MakeTaps(x0, out_w, lb.scale, lb.pad_left, rx, protos.width, px0, px1);
  const Taps ty = MakeTaps(y0, out_h, lb.scale, lb.pad_top, ry, protos.height, py0, py1);

  // Logits on the prototype window [px0, px1] x [py0, py1] only.
  const int win_w = px1 - px0 + 1, win_h = py1 - py0 + 1;
  cv::Mat logits(win_h, win_w, CV_32F, cv::Scalar(0));
  const size_t plane = static_cast<size_t>(protos.width) * protos.height;
  for (int c = 0; c < protos.channels; ++c) {
    const float k = coeffs[c];
    const float* src = protos.data + c * plane;
    for (int y = 0; y < win_h; ++y) {
      const float* row = src + static_cast<size_t>(py0 + y) * protos.width + px0;
      float* dst = logits.ptr<float>(y);
      for (int x = 0; x < win_w; ++x) dst[x] += k * row[x];
    }
  }

  // Crop: only pixels whose centre lies inside the box.
  auto inside = [](int p, float lo, float hi) {
    const float centre = static_cast<float>(p) + 0.5f;
    return centre >= lo && centre < hi;
  };
  mask.create(out_h, out_w, CV_8U);
  for (int v = 0; v < out_h; ++v) {
    uint8_t* dst = mask.ptr<uint8_t>(v);
    if (!inside(y0 + v, image_box.y1, image_box.y2)) {
      std::fill(dst, dst + out_w, uint8_t{0});
      continue;
    }
    const float* r0 = logits.ptr<float>(ty.i0[v]);
    const float* r1 = logits.ptr<float>(ty.i1[v]);
    const float wy = ty.w1[v];
    for (int u = 0; u < out_w; ++u) {
      const float top = r0[tx.i0[u]] + (r0[tx.i1[u]] - r0[tx.i0[u]]) * tx.w1[u];
      const float bottom = r1[tx.i0[u]] + (r1[tx.i1[u]] - r1[tx.i0[u]]) * tx.w1[u];
      const float value = top + (bottom - top) * wy;
      dst[u] = (value > 0.f && inside(x0 + u, image_box.x1, image_box.x2)) ? 255 : 0;
    }
  }
  roi = cv::Rect(x0, y0, out_w, out_h);
}

std::vector<std::vector<cv::Point>> MaskPolygons(const cv::Mat& mask, cv::Point offset,
                                                 bool all_contours) {
  std::vector<std::vector<cv::Point>> contours;
  if (mask.empty()) return contours;
  cv::findContours(mask, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE, offset);
  if (contours.empty()) return contours;
  std::vector<double> areas(contours.size());
  for (size_t i = 0; i < contours.size(); ++i) areas[i] = cv::contourArea(contours[i]);
  std::vector<size_t> order(contours.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    // Single-point or line contours have area 0; fall back to point count.
    if (areas[a] != areas[b]) return areas[a] > areas[b];
    return contours[a].size() > contours[b].size();
  });
  std::vector<std::vector<cv::Point>> sorted;
  const size_t n = all_contours ? order.size() : 1;
  sorted.reserve(n);
  for (size_t i = 0; i < n; ++i) sorted.push_back(std::move(contours[order[i]]));
  return sorted;
}

}  // namespace cvdeploy::vision
