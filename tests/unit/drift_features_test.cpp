// SPDX-License-Identifier: Apache-2.0
// Drift features (cvdeploy/drift.h) on synthetic images with known answers: brightness,
// contrast, saturation, colourfulness (Hasler-Suesstrunk by hand), sharpness of a blurred
// copy, size and aspect ratio from the original size, the JPEG quality estimate against
// OpenCV's encoder, and the per-box features of a prediction.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cvdeploy/drift.h"
#include "cvdeploy/error.h"

namespace cvdeploy::drift {
namespace {

ImageFeatures Of(const cv::Mat& image, cv::Size original = {}) {
  return ExtractImageFeatures(image, original, nullptr, 0);
}

// Random texture: sharp by construction.
cv::Mat Noise(int w, int h) {
  cv::Mat m(h, w, CV_8UC3);
  cv::RNG rng(7);
  rng.fill(m, cv::RNG::UNIFORM, 0, 256);
  return m;
}

TEST(DriftFeatures, DarkImageHasLowBrightnessAndAUniformOneNoContrast) {
  const ImageFeatures dark = Of(cv::Mat(120, 160, CV_8UC3, cv::Scalar(20, 20, 20)));
  const ImageFeatures bright = Of(cv::Mat(120, 160, CV_8UC3, cv::Scalar(200, 200, 200)));
  EXPECT_NEAR(dark.values[kBrightness], 20, 0.5);
  EXPECT_NEAR(bright.values[kBrightness], 200, 0.5);
  // Not exactly 0 on every platform: cv::meanStdDev computes sqrt(E[x^2] - E[x]^2), and
  // Debian's arm64 OpenCV leaves a rounding residue of that difference (1.6e-7 gray levels on
  // this image under qemu, 0 on x86). 1e-3 is far below the first contrast bin edge (16).
  EXPECT_NEAR(dark.values[kContrast], 0, 1e-3);
  EXPECT_EQ(dark.values[kSharpness], 0);
  EXPECT_EQ(BinOf(kBrightness, dark.values[kBrightness], 1), 0);
  EXPECT_GT(Of(Noise(160, 120)).values[kContrast], 40);
}

TEST(DriftFeatures, GrayHasZeroSaturationAndColourfulness) {
  cv::Mat gray3;
  cv::cvtColor(Noise(200, 100), gray3, cv::COLOR_BGR2GRAY);
  const ImageFeatures one_channel = Of(gray3);
  EXPECT_EQ(one_channel.values[kSaturation], 0);
  EXPECT_EQ(one_channel.values[kColourfulness], 0);
  cv::cvtColor(gray3, gray3, cv::COLOR_GRAY2BGR);
  const ImageFeatures three = Of(gray3);
  EXPECT_EQ(three.values[kSaturation], 0);
  EXPECT_NEAR(three.values[kColourfulness], 0, 1e-9);
  EXPECT_GT(Of(Noise(200, 100)).values[kSaturation], 50);
}

TEST(DriftFeatures, ColourfulnessOfPureRedIsTheHandComputedValue) {
  // rg = 255, yb = 127.5 everywhere: sigma 0, M = 0.3 * sqrt(255^2 + 127.5^2).
  const ImageFeatures red = Of(cv::Mat(50, 50, CV_8UC3, cv::Scalar(0, 0, 255)));
  EXPECT_NEAR(red.values[kColourfulness], 0.3 * std::sqrt(255.0 * 255 + 127.5 * 127.5), 1e-9);
  EXPECT_NEAR(red.values[kSaturation], 255, 1e-9);
}

TEST(DriftFeatures, BlurredImageHasLowSharpness) {
  const cv::Mat sharp = Noise(640, 480);
  cv::Mat blurred;
  cv::GaussianBlur(sharp, blurred, {0, 0}, 4.0);
  const double s = Of(sharp).values[kSharpness], b = Of(blurred).values[kSharpness];
  EXPECT_GT(s, 1000);
  EXPECT_LT(b, s / 20) << s << " " << b;
  EXPECT_LT(BinOf(kSharpness, b, 1), BinOf(kSharpness, s, 1));
}

TEST(DriftFeatures, SizeAndAspectRatioComeFromTheOriginalSize) {
  // A reduced decode (as DecodeImageForModel gives) still reports the original geometry.
  const ImageFeatures f = Of(Noise(320, 180), cv::Size(1280, 720));
  EXPECT_NEAR(f.values[kSize], 0.9216, 1e-12);
  EXPECT_NEAR(f.values[kAspectRatio], 1280.0 / 720, 1e-12);
  const ImageFeatures own = Of(Noise(300, 600));
  EXPECT_NEAR(own.values[kAspectRatio], 0.5, 1e-12);
}

TEST(DriftFeatures, PixelStatisticsBarelyDependOnTheDecodeScale) {
  // A smooth, photo-like image (gradients and blurred texture): the statistics of its full and
  // half-resolution decodes agree (the server decodes large JPEGs at reduced scale).
  cv::Mat full(960, 1280, CV_8UC3);
  for (int y = 0; y < full.rows; ++y) {
    for (int x = 0; x < full.cols; ++x) {
      full.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uint8_t>(x / 6), static_cast<uint8_t>(y / 5),
                                           static_cast<uint8_t>((x + y) / 10));
    }
  }
  cv::Mat texture = Noise(1280, 960), half;
  cv::GaussianBlur(texture, texture, {0, 0}, 8.0);
  cv::addWeighted(full, 0.8, texture, 0.2, 0, full);
  cv::resize(full, half, {640, 480}, 0, 0, cv::INTER_AREA);
  const ImageFeatures a = Of(full), b = Of(half);
  for (int f : {kBrightness, kContrast, kSaturation, kColourfulness}) {
    EXPECT_NEAR(a.values[f], b.values[f], 0.03 * a.values[f] + 0.5) << Spec(f).name;
  }
}

TEST(DriftFeatures, RefusesImagesItCannotMeasure) {
  EXPECT_THROW(Of(cv::Mat()), Error);
  EXPECT_THROW(Of(cv::Mat(10, 10, CV_32FC3)), Error);
  EXPECT_THROW(Of(cv::Mat(10, 10, CV_8UC2)), Error);
  EXPECT_NO_THROW(Of(cv::Mat(10, 10, CV_8UC4, cv::Scalar(1, 2, 3, 4))));
}

TEST(DriftFeatures, JpegQualityEstimateMatchesTheEncoderSetting) {
  const cv::Mat image = Noise(64, 64);
  for (int quality : {10, 30, 50, 75, 90, 95, 100}) {
    std::vector<uint8_t> jpeg;
    ASSERT_TRUE(cv::imencode(".jpg", image, jpeg, {cv::IMWRITE_JPEG_QUALITY, quality}));
    EXPECT_NEAR(EstimateJpegQuality(jpeg.data(), jpeg.size()), quality, 1) << quality;
    const ImageFeatures f = ExtractImageFeatures(image, {}, jpeg.data(), jpeg.size());
    EXPECT_NEAR(f.values[kJpegQuality], quality, 1);
  }
}

TEST(DriftFeatures, JpegQualityIsMinusOneForAnythingElse) {
  std::vector<uint8_t> png;
  ASSERT_TRUE(cv::imencode(".png", Noise(8, 8), png));
  EXPECT_EQ(EstimateJpegQuality(png.data(), png.size()), -1);
  EXPECT_EQ(EstimateJpegQuality(nullptr, 0), -1);
  std::vector<uint8_t> jpeg;
  ASSERT_TRUE(cv::imencode(".jpg", Noise(8, 8), jpeg));
  // Every truncation: a bounded answer, never a read past the end (ASan builds check).
  for (size_t n = 0; n < 200 && n < jpeg.size(); ++n) {
    const std::vector<uint8_t> cut(jpeg.begin(), jpeg.begin() + static_cast<long>(n));
    const int q = EstimateJpegQuality(cut.data(), cut.size());
    EXPECT_TRUE(q == -1 || (q >= 1 && q <= 100)) << n;
  }
  // A segment length pointing past the end.
  const std::vector<uint8_t> bad = {0xFF, 0xD8, 0xFF, 0xDB, 0xFF, 0xFF, 0x00};
  EXPECT_EQ(EstimateJpegQuality(bad.data(), bad.size()), -1);
}

TEST(DriftFeatures, PredictionFeaturesAreRelativeToTheImage) {
  Result r;
  r.width = 200;
  r.height = 100;
  Detection d;
  d.class_id = 3;
  d.confidence = 0.75f;
  d.box = {0, 0, 100, 50};
  r.detections.push_back(d);
  Observation o;
  AddPredictionFeatures(r, &o);
  ASSERT_EQ(o.boxes.size(), 1u);
  EXPECT_EQ(o.detections, 1);
  EXPECT_EQ(o.boxes[0].class_id, 3);
  EXPECT_NEAR(o.boxes[0].area, 0.25, 1e-12);
  EXPECT_NEAR(o.boxes[0].cx, 0.25, 1e-12);
  EXPECT_NEAR(o.boxes[0].cy, 0.25, 1e-12);
  r.detections.assign(kMaxBoxesPerObservation + 20, d);
  AddPredictionFeatures(r, &o);
  EXPECT_EQ(o.detections, kMaxBoxesPerObservation + 20);
  EXPECT_EQ(o.boxes.size(), static_cast<size_t>(kMaxBoxesPerObservation));
}

TEST(DriftBins, EdgesAreHalfOpenAndNanFallsInTheFirstBin) {
  EXPECT_EQ(BinOf(kBrightness, 0, 1), 0);
  EXPECT_EQ(BinOf(kBrightness, 47.999, 1), 0);
  EXPECT_EQ(BinOf(kBrightness, 48, 1), 1);
  EXPECT_EQ(BinOf(kBrightness, 255, 1), BinCount(kBrightness, 1) - 1);
  EXPECT_EQ(BinOf(kBrightness, std::numeric_limits<double>::quiet_NaN(), 1), 0);
  EXPECT_EQ(BinOf(kJpegQuality, -1, 1), 0);  // not a JPEG
  EXPECT_EQ(BinOf(kDetections, 0, 1), 0);
  EXPECT_EQ(BinOf(kClass, 2, 80), 2);
  EXPECT_EQ(BinOf(kClass, 80, 80), 80);  // out of range: the "other" bin
  EXPECT_EQ(BinOf(kClass, -1, 80), 80);
  EXPECT_EQ(BinCount(kClass, 80), 81);
  for (int f = 0; f < kFeatureCount; ++f) {
    const FeatureSpec& s = Spec(f);
    for (int i = 1; i < s.edge_count; ++i) EXPECT_LT(s.edges[i - 1], s.edges[i]) << s.name;
  }
}

}  // namespace
}  // namespace cvdeploy::drift
