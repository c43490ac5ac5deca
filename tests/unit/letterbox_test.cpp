// SPDX-License-Identifier: Apache-2.0
// The one-pass letterbox must equal the obvious multi-step reference bit for bit.
#include "vision/letterbox.h"

#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/imgproc.hpp>
#include <random>

#include "support/reference.h"

namespace cvdeploy::vision {
namespace {

cv::Mat RandomImage(int w, int h, unsigned seed) {
  cv::Mat m(h, w, CV_8UC3);
  cv::theRNG().state = seed;
  cv::randu(m, 0, 256);
  return m;
}

TEST(LetterboxTest, GeometryOfBusImage) {
  // bus.jpg is 810x1080: r = 640/1080, resized 480x640, 80 px of padding left and right.
  const LetterboxInfo info = ComputeLetterbox(cv::Size(810, 1080), cv::Size(640, 640));
  EXPECT_EQ(info.resized, cv::Size(480, 640));
  EXPECT_EQ(info.pad_left, 80);
  EXPECT_EQ(info.pad_top, 0);
  EXPECT_NEAR(info.ToSrcX(80.f), 0.f, 1e-4);
  EXPECT_NEAR(info.ToSrcX(560.f), 810.f, 1e-3);
}

TEST(LetterboxTest, OddPaddingSplitsLikeUltralytics) {
  // 1000x333 into 640: r = 0.64, 640x213, dh = 213.5 -> top round(213.4)=213, bottom 214.
  const LetterboxInfo info = ComputeLetterbox(cv::Size(1000, 333), cv::Size(640, 640));
  EXPECT_EQ(info.resized, cv::Size(640, 213));
  EXPECT_EQ(info.pad_top, 213);
}

TEST(LetterboxTest, AutoStrideShrinksToStrideMultiple) {
  const LetterboxInfo info = ComputeLetterbox(cv::Size(1280, 720), cv::Size(640, 640), 32);
  EXPECT_EQ(info.dst, cv::Size(640, 384));  // 360 rounded up to a multiple of 32
  EXPECT_EQ(info.pad_top, 12);
}

TEST(LetterboxTest, PixelExactAgainstNaiveReference) {
  const std::vector<std::pair<cv::Size, cv::Size>> cases = {
      {{810, 1080}, {640, 640}}, {{1280, 720}, {640, 640}}, {{1000, 333}, {640, 640}},
      {{640, 640}, {640, 640}},  {{100, 37}, {320, 320}},   {{333, 1000}, {480, 480}},
      {{17, 5}, {64, 64}},       {{1081, 542}, {640, 640}}, {{640, 480}, {320, 256}}};
  cv::Mat scratch;
  unsigned seed = 1;
  for (const auto& [src, dst] : cases) {
    const cv::Mat image = RandomImage(src.width, src.height, seed++);
    const LetterboxInfo info = ComputeLetterbox(src, dst);
    ASSERT_EQ(info.dst, dst);
    const std::vector<float> naive = cvdeploy::testing::NaiveLetterbox(image, dst);
    for (int threads : {1, 2, 3}) {  // row-split output must not depend on the split
      std::vector<float> fast(3 * dst.area(), -1.f);
      LetterboxToTensor(image, info, fast.data(), scratch, threads);
      size_t mismatches = 0;
      for (size_t i = 0; i < fast.size(); ++i) mismatches += fast[i] != naive[i];
      EXPECT_EQ(mismatches, 0u) << src << " -> " << dst << " threads " << threads;
    }
  }
}

// Issue 16: the rect letterbox (Ultralytics' LetterBox(auto=True, stride=32)) against the
// naive step-by-step reference, bit for bit, over portrait, landscape, square, odd and
// already-aligned sizes, at imgsz 640 and 320.
TEST(LetterboxTest, RectPixelExactAgainstNaiveReference) {
  struct Case {
    cv::Size src, dst;
    cv::Size expected;  // the rect input size (0x0: not checked)
  };
  const Case cases[] = {{{810, 1080}, {640, 640}, {480, 640}},  // bus.jpg
                        {{1280, 720}, {640, 640}, {640, 384}},  // a 16:9 frame
                        {{1000, 333}, {640, 640}, {640, 224}},  // 213 rows -> 224
                        {{640, 640}, {640, 640}, {640, 640}},
                        {{640, 480}, {640, 640}, {640, 480}},  // already aligned: no padding
                        {{333, 1000}, {320, 320}, {128, 320}},
                        {{1081, 542}, {640, 640}, {640, 352}},
                        {{17, 5}, {64, 64}, {64, 32}},
                        {{500, 375}, {640, 640}, {640, 480}},
                        {{427, 640}, {640, 640}, {448, 640}}};
  cv::Mat scratch;
  unsigned seed = 200;
  for (const Case& c : cases) {
    const cv::Mat image = RandomImage(c.src.width, c.src.height, seed++);
    const LetterboxInfo info = ComputeLetterbox(c.src, c.dst, 32);
    EXPECT_EQ(info.dst, c.expected) << c.src;
    EXPECT_EQ(info.dst.width % 32, 0) << c.src;
    EXPECT_EQ(info.dst.height % 32, 0) << c.src;
    double ratio = 0;
    int pad_left = -1, pad_top = -1;
    cv::Size naive_size;
    const std::vector<float> naive = cvdeploy::testing::NaiveLetterbox(
        image, c.dst, &ratio, &pad_left, &pad_top, 32, &naive_size);
    ASSERT_EQ(info.dst, naive_size) << c.src;
    EXPECT_EQ(info.pad_left, pad_left) << c.src;
    EXPECT_EQ(info.pad_top, pad_top) << c.src;
    EXPECT_FLOAT_EQ(info.scale, static_cast<float>(ratio)) << c.src;
    for (int threads : {1, 2}) {
      std::vector<float> fast(3 * info.dst.area(), -1.f);
      LetterboxToTensor(image, info, fast.data(), scratch, threads);
      size_t mismatches = 0;
      for (size_t i = 0; i < fast.size(); ++i) mismatches += fast[i] != naive[i];
      EXPECT_EQ(mismatches, 0u) << c.src << " threads " << threads;
    }
  }
}

// A batch of rect letterboxes of different shapes padded to one shape: the same resized image
// centred in the larger canvas with Ultralytics' split, which equals the naive letterbox into
// that canvas whenever the canvas does not change the scale.
TEST(LetterboxTest, PadLetterboxCentresInTheCanvas) {
  const cv::Mat image = RandomImage(1280, 720, 300);
  const LetterboxInfo rect = ComputeLetterbox(image.size(), cv::Size(640, 640), 32);
  ASSERT_EQ(rect.dst, cv::Size(640, 384));
  const LetterboxInfo padded = PadLetterbox(rect, cv::Size(640, 480));
  EXPECT_EQ(padded.resized, rect.resized);
  EXPECT_EQ(padded.scale, rect.scale);
  EXPECT_EQ(padded.dst, cv::Size(640, 480));
  EXPECT_EQ(padded.pad_left, 0);
  EXPECT_EQ(padded.pad_top, 60);  // (480 - 360) / 2
  // Same canvas: unchanged.
  const LetterboxInfo same = PadLetterbox(rect, rect.dst);
  EXPECT_EQ(same.pad_top, rect.pad_top);
  EXPECT_EQ(same.pad_left, rect.pad_left);
  int pad_left = -1, pad_top = -1;
  const std::vector<float> naive =
      cvdeploy::testing::NaiveLetterbox(image, cv::Size(640, 480), nullptr, &pad_left, &pad_top);
  EXPECT_EQ(padded.pad_left, pad_left);
  EXPECT_EQ(padded.pad_top, pad_top);
  cv::Mat scratch;
  std::vector<float> fast(3 * padded.dst.area(), -1.f);
  LetterboxToTensor(image, padded, fast.data(), scratch);
  size_t mismatches = 0;
  for (size_t i = 0; i < fast.size(); ++i) mismatches += fast[i] != naive[i];
  EXPECT_EQ(mismatches, 0u);
}

// Issue 12, item 5: a side that rounds to 0 (1x20000 into 640: 0.032 px) made cv::resize
// assert (HTTP 500). Each side is at least one pixel; the naive reference agrees.
TEST(LetterboxTest, VeryThinImagesKeepAtLeastOnePixel) {
  struct Case {
    cv::Size src, resized;
  };
  const Case cases[] = {{{1, 20000}, {1, 640}},
                        {{20000, 1}, {640, 1}},
                        {{8000, 4}, {640, 1}},  // 4 * 0.08 = 0.32 rounds to 0
                        {{4, 8000}, {1, 640}},
                        {{1, 1}, {640, 640}}};
  cv::Mat scratch;
  unsigned seed = 100;
  for (const Case& c : cases) {
    const cv::Size dst(640, 640);
    const LetterboxInfo info = ComputeLetterbox(c.src, dst);
    EXPECT_EQ(info.resized, c.resized) << c.src;
    EXPECT_EQ(info.dst, dst) << c.src;
    EXPECT_GE(info.pad_left, 0) << c.src;
    EXPECT_GE(info.pad_top, 0) << c.src;
    EXPECT_LE(info.pad_left + info.resized.width, dst.width) << c.src;
    EXPECT_LE(info.pad_top + info.resized.height, dst.height) << c.src;
    const cv::Mat image = RandomImage(c.src.width, c.src.height, seed++);
    double ratio = 0;
    int pad_left = -1, pad_top = -1;
    const std::vector<float> naive =
        cvdeploy::testing::NaiveLetterbox(image, dst, &ratio, &pad_left, &pad_top);
    EXPECT_EQ(info.pad_left, pad_left) << c.src;
    EXPECT_EQ(info.pad_top, pad_top) << c.src;
    std::vector<float> fast(3 * dst.area(), -1.f);
    LetterboxToTensor(image, info, fast.data(), scratch);
    ASSERT_EQ(fast.size(), naive.size()) << c.src;
    size_t mismatches = 0;
    for (size_t i = 0; i < fast.size(); ++i) mismatches += fast[i] != naive[i];
    EXPECT_EQ(mismatches, 0u) << c.src;
    // "rect" inference (dynamic models) shrinks dst to a stride multiple that still holds it.
    const LetterboxInfo rect = ComputeLetterbox(c.src, dst, 32);
    EXPECT_GE(rect.dst.width, rect.resized.width) << c.src;
    EXPECT_GE(rect.dst.height, rect.resized.height) << c.src;
    EXPECT_GT(rect.resized.area(), 0) << c.src;
  }
}

}  // namespace
}  // namespace cvdeploy::vision
