// SPDX-License-Identifier: Apache-2.0
// Postprocess for segment, pose and OBB heads (channels-first and end-to-end). Masks are
// compared with a naive Ultralytics-style reference that upsamples the full prototype map.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "cvdeploy/error.h"
#include "unit/postprocess_fixtures.h"
#include "vision/letterbox.h"
#include "vision/obb.h"

namespace cvdeploy::vision {
namespace {

constexpr int kNm = 32, kProto = 160;  // 640 / 4

struct SegmentCase {
  ModelMeta meta = Meta(Task::kSegment, OutputLayout::kChannelsFirst, 2);
  Tensor head{1, 4 + 2 + kNm, 8};
  Tensor protos{1, kNm, kProto* kProto};  // [1, 32, 160*160], viewed as [1, 32, 160, 160]
  SegmentCase() { meta.mask_channels = kNm; }
  float& Proto(int c, int y, int x) { return protos.At(c, y * kProto + x); }
  // Anchor i: box (input cx, cy, w, h), class 1 with `score`, mask coefficients.
  void Add(int i, float cx, float cy, float w, float h, float score, std::vector<float> coeffs) {
    SetAnchor(head, i, {cx, cy, w, h, 0.f, score});
    for (size_t c = 0; c < coeffs.size(); ++c) head.At(6 + c, i) = coeffs[c];
  }
  std::vector<TensorView> Outputs() const {
    return {head.View(),
            TensorView(DataType::kFloat32, {1, kNm, kProto, kProto}, protos.data.data())};
  }
  std::vector<Detection> Run(const LetterboxInfo& lb, PredictOptions o = {}) const {
    return Postprocess(Outputs(), 0, meta, lb, o);
  }
  // Channel 0: +1 on the proto cells [y0, y1) x [x0, x1), -1 elsewhere.
  void Square(int x0, int y0, int x1, int y1) {
    for (int y = 0; y < kProto; ++y) {
      for (int x = 0; x < kProto; ++x) {
        if (Proto(0, y, x) <= 0.f)
          Proto(0, y, x) = (x >= x0 && x < x1 && y >= y0 && y < y1) ? 1 : -1;
      }
    }
  }
};

// coeffs . protos over the whole prototype grid, for one anchor.
cv::Mat FullLogits(const SegmentCase& s, int anchor) {
  cv::Mat logits(kProto, kProto, CV_32F, cv::Scalar(0));
  for (int c = 0; c < kNm; ++c) {
    const float k = s.head.data[(6 + c) * s.head.cols + anchor];
    for (int y = 0; y < kProto; ++y) {
      for (int x = 0; x < kProto; ++x) {
        logits.at<float>(y, x) += k * s.protos.data[c * kProto * kProto + y * kProto + x];
      }
    }
  }
  return logits;
}

// Retina reference: the full logit map, upsampled to the input size, the letterbox padding
// cut off, resized to the original image, thresholded and cropped to the box.
cv::Mat NaiveFullMask(const SegmentCase& s, int anchor, const LetterboxInfo& lb,
                      const BoxXYXY& box) {
  const cv::Mat logits = FullLogits(s, anchor);
  cv::Mat input, full;
  cv::resize(logits, input, lb.dst, 0, 0, cv::INTER_LINEAR);
  cv::resize(input(cv::Rect(cv::Point(lb.pad_left, lb.pad_top), lb.resized)), full, lb.src, 0, 0,
             cv::INTER_LINEAR);
  cv::Mat bin(lb.src, CV_8U, cv::Scalar(0));
  for (int y = 0; y < bin.rows; ++y) {
    for (int x = 0; x < bin.cols; ++x) {
      const bool in_box =
          x + 0.5f >= box.x1 && x + 0.5f < box.x2 && y + 0.5f >= box.y1 && y + 0.5f < box.y2;
      if (in_box && full.at<float>(y, x) > 0) bin.at<uint8_t>(y, x) = 255;
    }
  }
  return bin;
}

// Default-rule reference, step by step on whole images (Ultralytics' process_mask with
// upsample, then scale_masks): logits on the full 160x160 grid, cells outside the box scaled
// to the grid set to 0, cv::resize to the input, > 0, the unpadded part cut as scale_masks
// cuts it, cv::resize to the original image, > 0.5. `input_box` is in network-input pixels.
cv::Mat NaiveDefaultMask(const SegmentCase& s, int anchor, const LetterboxInfo& lb,
                         const BoxXYXY& input_box) {
  cv::Mat logits = FullLogits(s, anchor);
  const float rw = static_cast<float>(kProto) / static_cast<float>(lb.dst.width);
  const float rh = static_cast<float>(kProto) / static_cast<float>(lb.dst.height);
  for (int y = 0; y < kProto; ++y) {
    for (int x = 0; x < kProto; ++x) {
      const float fx = static_cast<float>(x), fy = static_cast<float>(y);
      const bool kept = fx >= input_box.x1 * rw && fx < input_box.x2 * rw &&
                        fy >= input_box.y1 * rh && fy < input_box.y2 * rh;
      if (!kept) logits.at<float>(y, x) = 0.f;
    }
  }
  cv::Mat input;
  cv::resize(logits, input, lb.dst, 0, 0, cv::INTER_LINEAR);
  cv::Mat binary = cv::Mat::zeros(input.size(), CV_32F);
  binary.setTo(1.f, input > 0.f);
  const double gain = std::min(static_cast<double>(lb.dst.height) / lb.src.height,
                               static_cast<double>(lb.dst.width) / lb.src.width);
  const double pad_w = (lb.dst.width - lb.src.width * gain) / 2;
  const double pad_h = (lb.dst.height - lb.src.height * gain) / 2;
  const int left = static_cast<int>(std::nearbyint(pad_w - 0.1));
  const int top = static_cast<int>(std::nearbyint(pad_h - 0.1));
  const int right = lb.dst.width - static_cast<int>(std::nearbyint(pad_w + 0.1));
  const int bottom = lb.dst.height - static_cast<int>(std::nearbyint(pad_h + 0.1));
  cv::Mat full;
  cv::resize(binary(cv::Rect(left, top, right - left, bottom - top)), full, lb.src, 0, 0,
             cv::INTER_LINEAR);
  cv::Mat out = cv::Mat::zeros(lb.src, CV_8U);
  out.setTo(255, full > 0.5f);
  return out;
}

// The detection's mask placed on a canvas of the original image size.
cv::Mat OnCanvas(const Detection& d, cv::Size image) {
  cv::Mat canvas(image, CV_8U, cv::Scalar(0));
  if (!d.mask.empty()) d.mask.copyTo(canvas(d.mask_roi));
  return canvas;
}

double Iou(const cv::Mat& a, const cv::Mat& b) {
  const double inter = cv::countNonZero(a & b), uni = cv::countNonZero(a | b);
  return uni > 0 ? inter / uni : 1.0;
}

PredictOptions Retina() {
  PredictOptions o;
  o.retina_masks = true;
  return o;
}

TEST(SegmentTest, SquarePrototypeGivesSquareMask) {
  SegmentCase s;
  s.Square(40, 40, 80, 80);  // input pixels [160, 320)
  std::vector<float> coeffs(kNm, 0.f);
  coeffs[0] = 1;
  s.Add(3, 240, 240, 240, 240, 0.9f, coeffs);  // box [120, 360) contains the square
  const auto d = s.Run(Identity(), Retina());
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].mask_roi, cv::Rect(120, 120, 240, 240));
  ASSERT_EQ(d[0].mask.size(), d[0].mask_roi.size());
  EXPECT_EQ(d[0].mask.type(), CV_8U);
  // Edges fall exactly on [160, 320); bilinear interpolation rounds off each corner pixel.
  EXPECT_EQ(cv::countNonZero(d[0].mask), 160 * 160 - 4);
  EXPECT_EQ(d[0].mask.at<uint8_t>(40, 100), 255);   // image (220, 160)
  EXPECT_EQ(d[0].mask.at<uint8_t>(39, 100), 0);     // image y 159
  EXPECT_EQ(d[0].mask.at<uint8_t>(199, 100), 255);  // image y 319
  EXPECT_EQ(d[0].mask.at<uint8_t>(200, 100), 0);
  EXPECT_EQ(d[0].mask.at<uint8_t>(100, 39), 0);
  EXPECT_EQ(d[0].mask.at<uint8_t>(100, 40), 255);
  ASSERT_EQ(d[0].polygons.size(), 1u);
  EXPECT_NEAR(cv::contourArea(d[0].polygons[0]), 160.0 * 160.0, 0.03 * 160 * 160);
  EXPECT_EQ(cv::boundingRect(d[0].polygons[0]), cv::Rect(160, 160, 160, 160));
  EXPECT_EQ(d[0].polygon, d[0].polygons[0]);  // one part: the polygon is that contour

  // The default rule gives the same foreground: the box holds the square with a margin of
  // negative cells, so the crop on the prototype grid changes nothing. Its region covers the
  // kept cells [30, 90) plus what bilinear upsampling reaches past them (2 input pixels).
  const auto u = s.Run(Identity());
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].mask_roi, cv::Rect(118, 118, 244, 244));
  EXPECT_EQ(cv::countNonZero(OnCanvas(u[0], {640, 640}) ^ OnCanvas(d[0], {640, 640})), 0);
  EXPECT_EQ(u[0].polygon, d[0].polygon);
}

TEST(SegmentTest, MaskIsCroppedToTheBox) {
  SegmentCase s;
  s.Square(40, 40, 80, 80);
  std::vector<float> coeffs(kNm, 0.f);
  coeffs[0] = 1;
  s.Add(0, 240, 240, 80, 80, 0.9f, coeffs);    // [200, 280)^2, inside the square
  s.Add(1, 150, 240, 100, 100, 0.8f, coeffs);  // x [100, 200): overlaps the square from 160
  const auto d = s.Run(Identity(), Retina());
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(cv::countNonZero(d[0].mask), 80 * 80);
  EXPECT_EQ(d[1].mask_roi, cv::Rect(100, 190, 100, 100));
  EXPECT_EQ(cv::countNonZero(d[1].mask), 40 * 100);
}

// The default rule crops on the prototype grid: kept cells keep their logit, the rest become
// 0, and bilinear upsampling blends the two across the box edge. Worked by hand:
//   box [200, 280)^2 keeps cells [50, 70), all +1; input pixel u samples the grid at
//   (u + 0.5) / 4 - 0.5, which reads a kept cell with a nonzero weight for u in [198, 281]:
//   an 84 x 84 square, 2 pixels past each box edge.
//   box x [100, 200), y [190, 290) keeps cells x [25, 50), y [48, 73); the square's cells
//   start at x 40 (value crosses 0 between input 159 and 160) and the crop ends after cell
//   49 (u <= 201), rows run from 190 to 293: 42 x 104 pixels.
TEST(SegmentTest, DefaultMaskIsCroppedOnThePrototypeGrid) {
  SegmentCase s;
  s.Square(40, 40, 80, 80);
  std::vector<float> coeffs(kNm, 0.f);
  coeffs[0] = 1;
  s.Add(0, 240, 240, 80, 80, 0.9f, coeffs);
  s.Add(1, 150, 240, 100, 100, 0.8f, coeffs);
  const auto d = s.Run(Identity());
  ASSERT_EQ(d.size(), 2u);
  const cv::Mat first = OnCanvas(d[0], {640, 640}), second = OnCanvas(d[1], {640, 640});
  EXPECT_EQ(cv::countNonZero(first), 84 * 84);
  EXPECT_EQ(cv::boundingRect(first), cv::Rect(198, 198, 84, 84));
  EXPECT_EQ(cv::countNonZero(second), 42 * 104);
  EXPECT_EQ(cv::boundingRect(second), cv::Rect(160, 190, 42, 104));
  // And the same as the step-by-step reference.
  EXPECT_EQ(cv::countNonZero(first ^ NaiveDefaultMask(s, 0, Identity(), {200, 200, 280, 280})), 0);
  EXPECT_EQ(cv::countNonZero(second ^ NaiveDefaultMask(s, 1, Identity(), {100, 190, 200, 290})), 0);
}

// Smooth random prototypes (one sine plane wave per channel) written into a case, and
// normally distributed mask coefficients drawn from the same generator.
class SmoothRandom {
 public:
  SmoothRandom(SegmentCase& s, unsigned seed) : rng_(seed) {
    std::uniform_real_distribution<float> freq(0.02f, 0.12f), phase(0.f, 6.f);
    for (int c = 0; c < kNm; ++c) {
      const float fx = freq(rng_), fy = freq(rng_), p = phase(rng_);
      for (int y = 0; y < kProto; ++y) {
        for (int x = 0; x < kProto; ++x) s.Proto(c, y, x) = std::sin(fx * x + fy * y + p);
      }
    }
  }
  std::vector<float> Coefficients() {
    std::vector<float> v(kNm);
    for (float& x : v) x = coeff_(rng_);
    return v;
  }

 private:
  std::mt19937 rng_;
  std::normal_distribution<float> coeff_{0.f, 1.f};
};

TEST(SegmentTest, MatchesNaiveReferenceThroughLetterbox) {
  SegmentCase s;
  SmoothRandom random(s, 5);
  auto coeffs = [&] { return random.Coefficients(); };
  s.Add(0, 300, 300, 400, 300, 0.9f, coeffs());     // original x [200, 1000), y [20, 620)
  s.Add(1, 100, 200, 150, 200, 0.8f, coeffs());     // starts in the padding: y clipped to 0
  s.Add(2, 600, 450, 120, 100.5f, 0.7f, coeffs());  // past the right and bottom edges
  const LetterboxInfo lb = Wide();
  const auto d = s.Run(lb, Retina());
  ASSERT_EQ(d.size(), 3u);
  for (size_t k = 0; k < d.size(); ++k) {
    SCOPED_TRACE(k);
    const cv::Rect image(0, 0, 1280, 720);
    ASSERT_EQ(d[k].mask.size(), d[k].mask_roi.size());
    EXPECT_EQ(d[k].mask_roi & image, d[k].mask_roi);
    cv::Mat mine(lb.src, CV_8U, cv::Scalar(0));
    d[k].mask.copyTo(mine(d[k].mask_roi));
    const cv::Mat ref = NaiveFullMask(s, static_cast<int>(k), lb, d[k].box);
    const double inter = cv::countNonZero(mine & ref), uni = cv::countNonZero(mine | ref);
    ASSERT_GT(uni, 1000);
    EXPECT_GT(inter / uni, 0.995);
    EXPECT_FALSE(d[k].polygons.empty());
  }
  EXPECT_FLOAT_EQ(d[1].box.y1, 0);
  EXPECT_FLOAT_EQ(d[2].box.x2, 1280);
  EXPECT_FLOAT_EQ(d[2].box.y2, 720);
}

// Random smooth prototypes and three boxes, as above, against NaiveDefaultMask through a
// letterbox that shrinks (1280x720) and one that enlarges (500x375, pad 80) the image.
TEST(SegmentTest, DefaultMatchesNaiveReferenceThroughLetterbox) {
  SegmentCase s;
  SmoothRandom random(s, 11);
  auto coeffs = [&] { return random.Coefficients(); };
  const std::vector<BoxXYXY> boxes = {
      {100, 150, 500, 450}, {25, 100, 175, 300}, {539.3f, 400.1f, 660, 500.6f}};
  for (size_t k = 0; k < boxes.size(); ++k) {
    const BoxXYXY& b = boxes[k];
    s.Add(static_cast<int>(k), (b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2, b.x2 - b.x1, b.y2 - b.y1,
          0.9f - 0.1f * static_cast<float>(k), coeffs());
  }
  for (const LetterboxInfo& lb : {Wide(), ComputeLetterbox({500, 375}, {640, 640})}) {
    SCOPED_TRACE(lb.src.width);
    const auto d = s.Run(lb);
    ASSERT_EQ(d.size(), boxes.size());
    for (size_t k = 0; k < d.size(); ++k) {
      SCOPED_TRACE(k);
      ASSERT_EQ(d[k].mask.size(), d[k].mask_roi.size());
      EXPECT_EQ(d[k].mask_roi & cv::Rect({0, 0}, lb.src), d[k].mask_roi);
      const cv::Mat mine = OnCanvas(d[k], lb.src);
      const cv::Mat ref = NaiveDefaultMask(s, static_cast<int>(k), lb, boxes[k]);
      ASSERT_GT(cv::countNonZero(ref), 500);
      // Float rounding may flip a pixel whose interpolated logit is ~0; nothing more.
      EXPECT_GT(Iou(mine, ref), 0.998);
      EXPECT_FALSE(d[k].polygon.empty());
    }
  }
}

// As Ultralytics' predict, a detection whose mask has no foreground is dropped, unless
// keep_empty_masks (validation) or masks are off.
TEST(SegmentTest, DetectionWithAnEmptyMaskIsDropped) {
  SegmentCase s;
  s.Square(40, 40, 80, 80);  // input pixels [160, 320); -1 elsewhere
  std::vector<float> coeffs(kNm, 0.f);
  coeffs[0] = 1;
  s.Add(0, 240, 240, 80, 80, 0.9f, coeffs);  // on the square
  s.Add(1, 500, 500, 60, 60, 0.8f, coeffs);  // far from it: every logit negative
  ASSERT_EQ(s.Run(Identity()).size(), 1u);
  ASSERT_EQ(s.Run(Identity(), Retina()).size(), 1u);
  PredictOptions keep;
  keep.keep_empty_masks = true;
  const auto kept = s.Run(Identity(), keep);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(cv::countNonZero(kept[1].mask), 0);
  EXPECT_TRUE(kept[1].polygon.empty());
  PredictOptions no_masks;
  no_masks.masks = false;
  EXPECT_EQ(s.Run(Identity(), no_masks).size(), 2u);
}

TEST(SegmentTest, ContoursAndMaskOptions) {
  SegmentCase s;
  s.Square(20, 20, 40, 40);  // 80x80 px
  s.Square(60, 60, 70, 70);  // 40x40 px
  std::vector<float> coeffs(kNm, 0.f);
  coeffs[0] = 1;
  s.Add(0, 160, 160, 300, 300, 0.9f, coeffs);
  auto d = s.Run(Identity());
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].polygons.size(), 1u);
  // The polygon keeps both parts: every point of each contour is on the joined path, which
  // walks both contours closed (4 + 1 points each for two squares).
  PredictOptions o;
  o.all_contours = true;
  d = s.Run(Identity(), o);
  ASSERT_EQ(d[0].polygons.size(), 2u);
  EXPECT_GT(cv::contourArea(d[0].polygons[0]), cv::contourArea(d[0].polygons[1]));
  EXPECT_EQ(d[0].polygon.size(), d[0].polygons[0].size() + d[0].polygons[1].size() + 2);
  for (const auto& part : d[0].polygons) {
    for (const cv::Point& p : part) {
      EXPECT_NE(std::find(d[0].polygon.begin(), d[0].polygon.end(), p), d[0].polygon.end());
    }
  }
  o.masks = false;
  d = s.Run(Identity(), o);
  EXPECT_TRUE(d[0].mask.empty());
  EXPECT_TRUE(d[0].polygons.empty());
  EXPECT_THROW(Postprocess({s.head.View()}, 0, s.meta, Identity(), {}), Error);
}

TEST(PoseTest, KeypointsMappedAndClipped) {
  ModelMeta meta = Meta(Task::kPose, OutputLayout::kChannelsFirst, 1);
  meta.kpt_shape = {{17, 3}};
  Tensor t(1, 4 + 1 + 51, 4);
  SetAnchor(t, 2, {320, 320, 200, 200, 0.9f});
  for (int j = 0; j < 17; ++j) SetAnchor(t, 2, {100.f + 10 * j, 200.f + j, 0.8f}, 5 + 3 * j);
  SetAnchor(t, 2, {-50, 600, 0.1f}, 5 + 3 * 16);
  const auto d = Postprocess({t.View()}, 0, meta, Wide(), {});
  ASSERT_EQ(d.size(), 1u);
  ASSERT_EQ(d[0].keypoints.size(), 17u);
  EXPECT_FLOAT_EQ(d[0].keypoints[0].x, 200);
  EXPECT_FLOAT_EQ(d[0].keypoints[0].y, 120);
  EXPECT_FLOAT_EQ(d[0].keypoints[0].visibility, 0.8f);
  EXPECT_FLOAT_EQ(d[0].keypoints[15].x, (100 + 150) / 0.5f);
  EXPECT_FLOAT_EQ(d[0].keypoints[16].x, 0);
  EXPECT_FLOAT_EQ(d[0].keypoints[16].y, 720);
  EXPECT_FLOAT_EQ(d[0].keypoints[16].visibility, 0.1f);

  meta.kpt_shape = {{2, 2}};
  Tensor t2(1, 4 + 1 + 4, 1);
  SetAnchor(t2, 0, {50, 50, 20, 20, 0.7f, 45, 46, 55, 56});
  const auto d2 = Postprocess({t2.View()}, 0, meta, Identity(), {});
  ASSERT_EQ(d2.size(), 1u);
  ASSERT_EQ(d2[0].keypoints.size(), 2u);
  EXPECT_FLOAT_EQ(d2[0].keypoints[1].x, 55);
  EXPECT_FLOAT_EQ(d2[0].keypoints[1].visibility, 1.f);
}

TEST(ObbTest, RotatedNmsRegularizationAndMapping) {
  const ModelMeta meta = Meta(Task::kObb, OutputLayout::kChannelsFirst, 2);
  Tensor t(1, 4 + 2 + 1, 4);
  SetAnchor(t, 0, {320, 320, 100, 40, 0.9f, 0.f, 0.3f});
  SetAnchor(t, 1, {322, 320, 100, 40, 0.8f, 0.f, 0.3f});  // same class: suppressed
  SetAnchor(t, 2, {322, 320, 100, 40, 0.f, 0.7f, 0.3f});  // other class: kept unless agnostic
  SetAnchor(t, 3, {100, 200, 30, 60, 0.f, 0.6f, 2.0f});   // needs regularization
  auto d = Postprocess({t.View()}, 0, meta, Wide(), {});
  ASSERT_EQ(d.size(), 3u);
  EXPECT_FLOAT_EQ(d[1].confidence, 0.7f);
  ASSERT_TRUE(d[0].rotated.has_value());
  const RotatedBox& r = *d[0].rotated;
  EXPECT_FLOAT_EQ(r.cx, 640);
  EXPECT_FLOAT_EQ(r.cy, 360);
  EXPECT_FLOAT_EQ(r.w, 200);
  EXPECT_FLOAT_EQ(r.h, 80);
  EXPECT_FLOAT_EQ(r.angle, 0.3f);
  const BoxXYXY bounds = RotatedBounds(r);
  EXPECT_FLOAT_EQ(d[0].box.x1, bounds.x1);
  EXPECT_FLOAT_EQ(d[0].box.y2, bounds.y2);
  const RotatedBox& q = *d[2].rotated;
  EXPECT_FLOAT_EQ(q.w, 120);  // 60 / 0.5 after the swap
  EXPECT_FLOAT_EQ(q.h, 60);
  EXPECT_NEAR(q.angle, 2.0 - std::numbers::pi / 2, 1e-6);
  EXPECT_FLOAT_EQ(d[2].box.x1, std::max(0.f, RotatedBounds(q).x1));
  PredictOptions o;
  o.agnostic = true;
  EXPECT_EQ(Postprocess({t.View()}, 0, meta, Wide(), o).size(), 2u);
}

TEST(EndToEndTest, PoseSegmentAndObbExtras) {
  ModelMeta pose = Meta(Task::kPose, OutputLayout::kEndToEnd, 1);
  pose.kpt_shape = {{1, 3}};
  Tensor tp(1, 2, 6 + 3);
  SetRow(tp, 0, {10, 150, 110, 250, 0.9f, 0, 60, 200, 0.4f});
  auto d = Postprocess({tp.View()}, 0, pose, Wide(), {});
  ASSERT_EQ(d.size(), 1u);
  ASSERT_EQ(d[0].keypoints.size(), 1u);
  EXPECT_FLOAT_EQ(d[0].keypoints[0].x, 120);
  EXPECT_FLOAT_EQ(d[0].keypoints[0].y, 120);
  EXPECT_FLOAT_EQ(d[0].keypoints[0].visibility, 0.4f);

  ModelMeta obb = Meta(Task::kObb, OutputLayout::kEndToEnd, 1);
  Tensor to(1, 2, 7);  // x, y, w, h, score, class, angle
  SetRow(to, 0, {320, 320, 100, 40, 0.9f, 0, 0.3f});
  SetRow(to, 1, {321, 320, 100, 40, 0.8f, 0, 0.3f});  // no NMS: both kept
  d = Postprocess({to.View()}, 0, obb, Identity(), {});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_FLOAT_EQ(d[0].rotated->cx, 320);
  EXPECT_FLOAT_EQ(d[0].rotated->w, 100);

  SegmentCase s;
  s.meta.layout = OutputLayout::kEndToEnd;
  s.Square(40, 40, 80, 80);
  s.head = Tensor(1, 1, 6 + kNm);
  SetRow(s.head, 0, {120, 120, 360, 360, 0.9f, 1, 1});  // coefficient 0 = 1
  d = s.Run(Identity());
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(cv::countNonZero(d[0].mask), 160 * 160 - 4);
}

}  // namespace
}  // namespace cvdeploy::vision
