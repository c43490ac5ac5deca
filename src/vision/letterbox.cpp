// SPDX-License-Identifier: Apache-2.0
#include "vision/letterbox.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <opencv2/imgproc.hpp>

namespace cvdeploy::vision {
namespace {

// Python's round(): half to even. std::nearbyint uses the current rounding mode, which is
// round-to-nearest-even unless someone changed it.
int PyRound(double v) { return static_cast<int>(std::nearbyint(v)); }

// v / 255 exactly as a float32 division (what Ultralytics does), not v * (1/255).
const std::array<float, 256>& Normalize() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[v] = static_cast<float>(v) / 255.0f;
    return t;
  }();
  return table;
}

}  // namespace

LetterboxInfo ComputeLetterbox(cv::Size src, cv::Size dst, int auto_stride) {
  LetterboxInfo info;
  info.src = src;
  const double r = std::min(static_cast<double>(dst.height) / src.height,
                            static_cast<double>(dst.width) / src.width);
  // Ultralytics computes round(side * r) and lets cv2.resize fail when a side of a very thin
  // image (1x20000, 8000x4) rounds to 0; a side of at least one pixel keeps such images
  // working (everything else is unchanged: the max only acts where the round gives 0).
  info.resized =
      cv::Size(std::max(1, PyRound(src.width * r)), std::max(1, PyRound(src.height * r)));
  double dw = dst.width - info.resized.width;
  double dh = dst.height - info.resized.height;
  if (auto_stride > 0) {
    dw = std::fmod(dw, auto_stride);
    dh = std::fmod(dh, auto_stride);
    info.dst = cv::Size(info.resized.width + static_cast<int>(dw),
                        info.resized.height + static_cast<int>(dh));
  } else {
    info.dst = dst;
  }
  dw /= 2;
  dh /= 2;
  info.pad_left = PyRound(dw - 0.1);
  info.pad_top = PyRound(dh - 0.1);
  // The right/bottom pads are round(d + 0.1); the resized image fills the rest exactly.
  info.scale = static_cast<float>(r);
  return info;
}

LetterboxInfo PadLetterbox(const LetterboxInfo& info, cv::Size canvas) {
  LetterboxInfo out = info;
  out.dst = canvas;
  out.pad_left = PyRound((canvas.width - info.resized.width) / 2.0 - 0.1);
  out.pad_top = PyRound((canvas.height - info.resized.height) / 2.0 - 0.1);
  return out;
}

void LetterboxToTensor(const cv::Mat& bgr, const LetterboxInfo& info, float* chw, cv::Mat& scratch,
                       int threads) {
  const cv::Mat* resized = &bgr;
  if (bgr.size() != info.resized) {
    cv::resize(bgr, scratch, info.resized, 0, 0, cv::INTER_LINEAR);
    resized = &scratch;
  }
  const auto& norm = Normalize();
  const float pad = norm[114];
  const int width = info.dst.width, height = info.dst.height;
  const size_t plane = static_cast<size_t>(width) * height;
  float* r_plane = chw;
  float* g_plane = chw + plane;
  float* b_plane = chw + 2 * plane;
  const int x0 = info.pad_left, x1 = info.pad_left + info.resized.width;
  const int y0 = info.pad_top, y1 = info.pad_top + info.resized.height;
  auto rows = [&](const cv::Range& range) {
    for (int y = range.start; y < range.end; ++y) {
      const size_t row = static_cast<size_t>(y) * width;
      if (y < y0 || y >= y1) {
        std::fill_n(r_plane + row, width, pad);
        std::fill_n(g_plane + row, width, pad);
        std::fill_n(b_plane + row, width, pad);
        continue;
      }
      std::fill_n(r_plane + row, x0, pad);
      std::fill_n(g_plane + row, x0, pad);
      std::fill_n(b_plane + row, x0, pad);
      const uint8_t* src = resized->ptr<uint8_t>(y - y0);
      for (int x = x0; x < x1; ++x, src += 3) {
        b_plane[row + x] = norm[src[0]];
        g_plane[row + x] = norm[src[1]];
        r_plane[row + x] = norm[src[2]];
      }
      std::fill_n(r_plane + row + x1, width - x1, pad);
      std::fill_n(g_plane + row + x1, width - x1, pad);
      std::fill_n(b_plane + row + x1, width - x1, pad);
    }
  };
  if (threads > 1) {
    cv::parallel_for_(cv::Range(0, height), rows, threads);
  } else {
    rows(cv::Range(0, height));
  }
}

}  // namespace cvdeploy::vision
