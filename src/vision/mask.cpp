// SPDX-License-Identifier: Apache-2.0
#include "vision/mask.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

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

// Python's round() (half to even) under the default rounding mode.
int PyRound(double v) { return static_cast<int>(std::nearbyint(v)); }

bool Usable(const Prototypes& protos, std::span<const float> coeffs) {
  return protos.data != nullptr && protos.width > 0 && protos.height > 0 && protos.channels > 0 &&
         static_cast<int>(coeffs.size()) >= protos.channels;
}

// Inclusive range of indices; empty when last < first.
struct Span {
  int first = 0, last = -1;
  bool Empty() const { return last < first; }
  int Size() const { return last - first + 1; }
};

// Prototype cells kept by Ultralytics' crop_mask along one axis: lo * ratio <= c < hi * ratio.
Span KeptCells(float lo, float hi, float ratio, int size) {
  const float a = lo * ratio, b = hi * ratio;
  if (!std::isfinite(a) || !std::isfinite(b)) return {};
  const float first = std::max(std::ceil(a), 0.f);
  const float last = std::min(std::ceil(b) - 1.f, static_cast<float>(size - 1));
  if (last < first) return {};
  return {static_cast<int>(first), static_cast<int>(last)};
}

// Bilinear resampling of one axis from `in_size` to `out_size` samples, restricted to the
// outputs that read any source index in `valid` with a nonzero weight. Source indices are
// relative to valid.first; a tap outside `valid` has weight 0 (the source is 0 there).
struct AxisTaps {
  int first = 0;  // first output index covered
  std::vector<int> i0, i1;
  std::vector<float> w0, w1;
  int Count() const { return static_cast<int>(i0.size()); }
};

AxisTaps ResampleTaps(int out_size, int in_size, Span valid) {
  AxisTaps t;
  if (out_size <= 0 || in_size <= 0 || valid.Empty()) return t;
  // F.interpolate(align_corners=False) without scale_factor: scale = in / out in float, the
  // source position clamped below at 0, the upper index repeated at the last sample.
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  const auto tap = [&](int o, int& i0, int& i1, float& w1) {
    const float src = std::max(scale * (static_cast<float>(o) + 0.5f) - 0.5f, 0.f);
    i0 = std::min(static_cast<int>(std::floor(src)), in_size - 1);
    w1 = std::clamp(src - static_cast<float>(i0), 0.f, 1.f);
    i1 = i0 + (i0 < in_size - 1 ? 1 : 0);
  };
  const auto inside = [&](int i) { return i >= valid.first && i <= valid.last; };
  int first = -1, last = -1;
  for (int o = 0; o < out_size; ++o) {
    int i0, i1;
    float w1;
    tap(o, i0, i1, w1);
    if ((inside(i0) && w1 < 1.f) || (inside(i1) && w1 > 0.f)) {
      if (first < 0) first = o;
      last = o;
    }
  }
  if (first < 0) return t;
  t.first = first;
  for (int o = first; o <= last; ++o) {
    int i0, i1;
    float w1;
    tap(o, i0, i1, w1);
    const bool in0 = inside(i0), in1 = inside(i1);
    t.i0.push_back(in0 ? i0 - valid.first : 0);
    t.i1.push_back(in1 ? i1 - valid.first : 0);
    t.w0.push_back(in0 ? 1.f - w1 : 0.f);
    t.w1.push_back(in1 ? w1 : 0.f);
  }
  return t;
}

// Separable bilinear sample of `src` (CV_32F) at output (u, v) of the tap tables.
float Sample(const cv::Mat& src, const AxisTaps& tx, const AxisTaps& ty, int u, int v) {
  const float* r0 = src.ptr<float>(ty.i0[v]);
  const float* r1 = src.ptr<float>(ty.i1[v]);
  const float top = tx.w0[u] * r0[tx.i0[u]] + tx.w1[u] * r0[tx.i1[u]];
  const float bottom = tx.w0[u] * r1[tx.i0[u]] + tx.w1[u] * r1[tx.i1[u]];
  return ty.w0[v] * top + ty.w1[v] * bottom;
}

// coeffs . protos on the prototype cells `cx` x `cy`.
cv::Mat Logits(const Prototypes& protos, std::span<const float> coeffs, Span cx, Span cy) {
  cv::Mat logits(cy.Size(), cx.Size(), CV_32F, cv::Scalar(0));
  const size_t plane = static_cast<size_t>(protos.width) * protos.height;
  for (int c = 0; c < protos.channels; ++c) {
    const float k = coeffs[c];
    const float* src = protos.data + c * plane;
    for (int y = 0; y < logits.rows; ++y) {
      const float* row = src + static_cast<size_t>(cy.first + y) * protos.width + cx.first;
      float* dst = logits.ptr<float>(y);
      for (int x = 0; x < logits.cols; ++x) dst[x] += k * row[x];
    }
  }
  return logits;
}

// The unpadded part of a network-input-sized mask as Ultralytics' scale_masks cuts it, along
// one axis: [first, last] of `input` samples for an original side `src`, gain shared.
Span UnpaddedSpan(int input, int src, double gain) {
  const double pad = (input - src * gain) / 2;
  return {PyRound(pad - 0.1), input - PyRound(pad + 0.1) - 1};
}

}  // namespace

void ComputeMask(const Prototypes& protos, std::span<const float> coeffs, const BoxXYXY& input_box,
                 const LetterboxInfo& lb, cv::Mat& mask, cv::Rect& roi) {
  mask = cv::Mat();
  roi = cv::Rect();
  const int iw = lb.dst.width, ih = lb.dst.height, sw = lb.src.width, sh = lb.src.height;
  if (!Usable(protos, coeffs) || iw <= 0 || ih <= 0 || sw <= 0 || sh <= 0) return;
  // 1-2. Logits of the kept prototype cells; every other cell is 0.
  const Span cx =
      KeptCells(input_box.x1, input_box.x2,
                static_cast<float>(protos.width) / static_cast<float>(iw), protos.width);
  const Span cy =
      KeptCells(input_box.y1, input_box.y2,
                static_cast<float>(protos.height) / static_cast<float>(ih), protos.height);
  if (cx.Empty() || cy.Empty()) return;
  const cv::Mat logits = Logits(protos, coeffs, cx, cy);

  // 3. Upsampled to the input size and thresholded, only where a kept cell contributes.
  const AxisTaps ux = ResampleTaps(iw, protos.width, cx);
  const AxisTaps uy = ResampleTaps(ih, protos.height, cy);
  if (ux.Count() == 0 || uy.Count() == 0) return;
  cv::Mat input_mask(uy.Count(), ux.Count(), CV_32F);
  for (int v = 0; v < input_mask.rows; ++v) {
    float* dst = input_mask.ptr<float>(v);
    for (int u = 0; u < input_mask.cols; ++u) {
      dst[u] = Sample(logits, ux, uy, u, v) > 0.f ? 1.f : 0.f;
    }
  }

  // 4. The unpadded region resized to the original image, thresholded at 0.5.
  const double gain = std::min(static_cast<double>(ih) / sh, static_cast<double>(iw) / sw);
  const Span px = UnpaddedSpan(iw, sw, gain), py = UnpaddedSpan(ih, sh, gain);
  if (px.Empty() || py.Empty()) return;
  // The computed input columns [ux.first, ux.first + count) as indices of the cut region.
  const Span vx{std::max(ux.first, px.first) - px.first,
                std::min(ux.first + ux.Count() - 1, px.last) - px.first};
  const Span vy{std::max(uy.first, py.first) - py.first,
                std::min(uy.first + uy.Count() - 1, py.last) - py.first};
  if (vx.Empty() || vy.Empty()) return;
  const cv::Mat cut = input_mask(cv::Rect(vx.first + px.first - ux.first,
                                          vy.first + py.first - uy.first, vx.Size(), vy.Size()));
  const AxisTaps ox = ResampleTaps(sw, px.Size(), vx);
  const AxisTaps oy = ResampleTaps(sh, py.Size(), vy);
  if (ox.Count() == 0 || oy.Count() == 0) return;
  mask.create(oy.Count(), ox.Count(), CV_8U);
  for (int v = 0; v < mask.rows; ++v) {
    uint8_t* dst = mask.ptr<uint8_t>(v);
    for (int u = 0; u < mask.cols; ++u) dst[u] = Sample(cut, ox, oy, u, v) > 0.5f ? 255 : 0;
  }
  roi = cv::Rect(ox.first, oy.first, ox.Count(), oy.Count());
}

void ComputeMaskRetina(const Prototypes& protos, std::span<const float> coeffs,
                       const BoxXYXY& image_box, const LetterboxInfo& lb, cv::Mat& mask,
                       cv::Rect& roi) {
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

}  // namespace cvdeploy::vision
