// SPDX-License-Identifier: Apache-2.0
// Drift features of one image and one prediction (cvdeploy/drift.h): pixel statistics on a
// small copy of the decoded image, the JPEG quality from the quantization table, and the
// boxes of the prediction relative to the image.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include <opencv2/imgproc.hpp>

#include "cvdeploy/drift.h"
#include "cvdeploy/error.h"

namespace cvdeploy::drift {
namespace {

// The IJG standard luminance quantization table (ITU T.81 Annex K, table K.1), in natural
// (row-major) order; a DQT segment stores its entries in zigzag order, kNaturalOrder maps them.
constexpr int kStdLuminance[64] = {16,  11,  10,  16,  24, 40, 51,  61,  12,  12,  14,  19,  26,
                                   58,  60,  55,  14,  13, 16, 24,  40,  57,  69,  56,  14,  17,
                                   22,  29,  51,  87,  80, 62, 18,  22,  37,  56,  68,  109, 103,
                                   77,  24,  35,  55,  64, 81, 104, 113, 92,  49,  64,  78,  87,
                                   103, 121, 120, 101, 72, 92, 95,  98,  112, 100, 103, 99};

constexpr int kNaturalOrder[64] = {0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
                                   12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
                                   35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
                                   58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

// libjpeg's jpeg_quality_scaling inverted on the mean scale factor S (percent) of the table:
// quality q < 50 scales by 5000 / q, q >= 50 by 200 - 2q.
// Entries clamped by libjpeg (to 1 at high quality, to 255 in 8-bit tables at low quality)
// would bias the mean; they are left out while at least 8 others remain.
int QualityFromTable(const uint32_t* table) {
  double sum = 0, std_sum = 0, all = 0, all_std = 0;
  int used = 0;
  for (int i = 0; i < 64; ++i) {
    all += table[i];
    const int reference = kStdLuminance[kNaturalOrder[i]];
    all_std += reference;
    if (table[i] <= 1 || table[i] >= 255) continue;
    sum += table[i];
    std_sum += reference;
    ++used;
  }
  if (used < 8) {
    sum = all;
    std_sum = all_std;
  }
  const double scale = 100.0 * sum / std_sum;
  const double quality = scale <= 100 ? (200 - scale) / 2 : 5000 / scale;
  return std::clamp(static_cast<int>(std::lround(quality)), 1, 100);
}

// A copy with the longer side at most kAnalysisSide, 3-channel BGR (or 1-channel gray).
cv::Mat AnalysisCopy(const cv::Mat& image) {
  if (image.empty() || image.depth() != CV_8U ||
      (image.channels() != 1 && image.channels() != 3 && image.channels() != 4)) {
    throw InvalidArgument(
        "drift features: expected a non-empty 8-bit image with 1, 3 or 4 "
        "channels");
  }
  cv::Mat small = image;
  const int side = std::max(image.cols, image.rows);
  if (side > kAnalysisSide) {
    // INTER_LINEAR reads 4 source pixels per output pixel: ~0.1 ms whatever the source size,
    // where INTER_AREA reads every source pixel (several ms on a 1080p image under load, more
    // than the 2% budget of the server's monitoring). The copy is aliased, but the same way
    // for the baseline and the monitored images.
    const double f = static_cast<double>(kAnalysisSide) / side;
    const cv::Size size(std::max(1, static_cast<int>(std::lround(image.cols * f))),
                        std::max(1, static_cast<int>(std::lround(image.rows * f))));
    cv::resize(image, small, size, 0, 0, cv::INTER_LINEAR);
  }
  if (small.channels() == 4) {
    cv::Mat bgr;
    cv::cvtColor(small, bgr, cv::COLOR_BGRA2BGR);
    return bgr;
  }
  return small;
}

// Hasler & Suesstrunk, "Measuring colourfulness in natural images" (2003):
// rg = R - G, yb = (R + G) / 2 - B, M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mu_rg^2 + mu_yb^2).
double Colourfulness(const cv::Mat& bgr) {
  double s_rg = 0, s_yb = 0, ss_rg = 0, ss_yb = 0;
  for (int y = 0; y < bgr.rows; ++y) {
    const uint8_t* p = bgr.ptr<uint8_t>(y);
    for (int x = 0; x < bgr.cols; ++x, p += 3) {
      const double b = p[0], g = p[1], r = p[2];
      const double rg = r - g, yb = 0.5 * (r + g) - b;
      s_rg += rg;
      s_yb += yb;
      ss_rg += rg * rg;
      ss_yb += yb * yb;
    }
  }
  const double n = static_cast<double>(bgr.total());
  const double mu_rg = s_rg / n, mu_yb = s_yb / n;
  const double var_rg = std::max(0.0, ss_rg / n - mu_rg * mu_rg);
  const double var_yb = std::max(0.0, ss_yb / n - mu_yb * mu_yb);
  return std::sqrt(var_rg + var_yb) + 0.3 * std::sqrt(mu_rg * mu_rg + mu_yb * mu_yb);
}

}  // namespace

int EstimateJpegQuality(const uint8_t* data, size_t size) {
  if (data == nullptr || size < 4 || data[0] != 0xFF || data[1] != 0xD8) return -1;
  size_t i = 2;
  while (i + 4 <= size) {
    if (data[i] != 0xFF) return -1;
    while (i < size && data[i] == 0xFF) ++i;  // fill bytes
    if (i >= size) return -1;
    const uint8_t marker = data[i++];
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length
    if (marker == 0xD9 || marker == 0xDA || i + 2 > size) return -1;     // EOI, scan: no table
    const size_t length = (size_t{data[i]} << 8) | data[i + 1];
    if (length < 2 || length > size - i) return -1;
    if (marker == 0xDB) {  // DQT: (Pq << 4 | Tq), then 64 entries of 1 or 2 bytes
      size_t p = i + 2;
      const size_t end = i + length;
      while (p < end) {
        const int precision = data[p] >> 4, id = data[p] & 0x0F;
        const size_t entry = precision == 0 ? 1 : 2;
        if (precision > 1 || end - p - 1 < 64 * entry) return -1;
        if (id == 0) {
          uint32_t table[64];
          for (size_t k = 0; k < 64; ++k) {
            const uint8_t* e = data + p + 1 + k * entry;
            table[k] = entry == 1 ? e[0] : (uint32_t{e[0]} << 8) | e[1];
          }
          return QualityFromTable(table);
        }
        p += 1 + 64 * entry;
      }
    }
    i += length;
  }
  return -1;
}

ImageFeatures ExtractImageFeatures(const cv::Mat& image, cv::Size original, const uint8_t* encoded,
                                   size_t encoded_size) {
  const cv::Mat small = AnalysisCopy(image);
  if (original.width <= 0 || original.height <= 0) original = image.size();
  ImageFeatures f;
  f.values[kSize] = static_cast<double>(original.width) * original.height / 1e6;
  f.values[kAspectRatio] = static_cast<double>(original.width) / original.height;
  cv::Mat gray;
  if (small.channels() == 1) {
    gray = small;
  } else {
    cv::cvtColor(small, gray, cv::COLOR_BGR2GRAY);
  }
  cv::Scalar mean, stddev;
  cv::meanStdDev(gray, mean, stddev);
  f.values[kBrightness] = mean[0];
  f.values[kContrast] = stddev[0];
  if (small.channels() == 3) {
    cv::Mat hsv;
    cv::cvtColor(small, hsv, cv::COLOR_BGR2HSV);
    f.values[kSaturation] = cv::mean(hsv)[1];
    f.values[kColourfulness] = Colourfulness(small);
  }
  cv::Mat laplacian;
  cv::Laplacian(gray, laplacian, CV_32F);
  cv::meanStdDev(laplacian, mean, stddev);
  f.values[kSharpness] = stddev[0] * stddev[0];
  f.values[kJpegQuality] = EstimateJpegQuality(encoded, encoded_size);
  return f;
}

void AddPredictionFeatures(const Result& result, Observation* observation) {
  observation->detections = static_cast<int>(result.detections.size());
  observation->boxes.clear();
  const double w = std::max(1, result.width), h = std::max(1, result.height);
  const size_t n = std::min(result.detections.size(), size_t{kMaxBoxesPerObservation});
  observation->boxes.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const Detection& d = result.detections[i];
    BoxFeatures b;
    b.class_id = d.class_id;
    b.confidence = d.confidence;
    b.area = d.box.Area() / (w * h);
    b.cx = (d.box.x1 + d.box.x2) / 2 / w;
    b.cy = (d.box.y1 + d.box.y2) / 2 / h;
    observation->boxes.push_back(b);
  }
}

Observation Observe(const cv::Mat& image, cv::Size original, const uint8_t* encoded,
                    size_t encoded_size, const Result& result) {
  Observation o;
  o.image = ExtractImageFeatures(image, original, encoded, encoded_size);
  AddPredictionFeatures(result, &o);
  return o;
}

}  // namespace cvdeploy::drift
