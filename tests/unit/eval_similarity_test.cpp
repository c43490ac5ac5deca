// SPDX-License-Identifier: Apache-2.0
// Box IoU, mask IoU and OKS on tiny cases with hand-computed answers.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "eval/mask_iou.h"
#include "eval/similarity.h"

namespace cvdeploy::eval {
namespace {

TEST(EvalSimilarity, AxisAlignedIouWithEpsilon) {
  // [0,10]x[0,10] vs [5,15]x[0,10]: intersection 50, union 150.
  EXPECT_NEAR(AxisAlignedIouWithEpsilon({0, 0, 10, 10}, {5, 0, 15, 10}), 1.0 / 3, 1e-9);
  EXPECT_NEAR(AxisAlignedIouWithEpsilon({0, 0, 10, 10}, {0, 0, 10, 10}), 1.0, 1e-9);
  EXPECT_EQ(AxisAlignedIouWithEpsilon({0, 0, 10, 10}, {20, 20, 30, 30}), 0.0);
  // eps: no NaN for empty boxes
  EXPECT_EQ(AxisAlignedIouWithEpsilon({0, 0, 0, 0}, {0, 0, 0, 0}), 0.0);
}

GroundTruth Square(float x1, float y1, float x2, float y2) {
  GroundTruth gt;
  gt.class_id = 0;
  gt.box = {x1, y1, x2, y2};
  gt.polygons = {{{x1, y1}, {x2, y1}, {x2, y2}, {x1, y2}}};
  return gt;
}

Detection MaskDetection(cv::Rect roi) {
  Detection d;
  d.mask_roi = roi;
  d.mask = cv::Mat(roi.size(), CV_8U, cv::Scalar(255));
  return d;
}

TEST(EvalMaskIou, PolygonRasterizesToTheCoveredPixels) {
  // (0.1, 0.1)-(0.2, 0.2) of 100x100 is x, y in [10, 20): exactly 10 x 10 pixels.
  const RegionMask label = RasterizeLabel(Square(0.1f, 0.1f, 0.2f, 0.2f), 100, 100);
  EXPECT_EQ(label.area, 100);
  // Right triangle (0,0), (8,0), (0,8) px in a 64 x 64 image (1/8 is exact in binary, so
  // centres on the hypotenuse are exactly on it). Row j (centre j + .5) spans x in
  // [0, 7.5 - j); column centres i + .5 inside need i < 7 - j: 7 - j pixels for
  // j = 0..6, 7 + 6 + ... + 1 = 28 (centres on the hypotenuse are out: half-open).
  GroundTruth tri;
  tri.polygons = {{{0.f, 0.f}, {0.125f, 0.f}, {0.f, 0.125f}}};
  EXPECT_EQ(RasterizeLabel(tri, 64, 64).area, 28);
  // Two overlapping squares of one label are a union: [0,10)^2 and [5,15)^2 -> 175.
  GroundTruth two;
  two.polygons = {{{0.f, 0.f}, {.1f, 0.f}, {.1f, .1f}, {0.f, .1f}},
                  {{.05f, .05f}, {.15f, .05f}, {.15f, .15f}, {.05f, .15f}}};
  EXPECT_EQ(RasterizeLabel(two, 100, 100).area, 175);
}

TEST(EvalMaskIou, HalfOverlappingMask) {
  // Label covers x in [10, 20), prediction x in [15, 25), both y in [10, 20):
  // intersection 50, union 150 -> 1/3.
  const RegionMask label = RasterizeLabel(Square(0.1f, 0.1f, 0.2f, 0.2f), 100, 100);
  const RegionMask pred = PredictionMask(MaskDetection({15, 10, 10, 10}), 100, 100);
  EXPECT_EQ(pred.area, 100);
  EXPECT_NEAR(MaskIou(label, pred), 50.0 / 150.0, 1e-9);
  const RegionMask same = PredictionMask(MaskDetection({10, 10, 10, 10}), 100, 100);
  EXPECT_NEAR(MaskIou(label, same), 1.0, 1e-6);
}

TEST(EvalMaskIou, PredictionClippedToCanvasAndLabelWithoutPolygonUsesBox) {
  const RegionMask pred = PredictionMask(MaskDetection({-5, -5, 10, 10}), 100, 100);
  EXPECT_EQ(pred.area, 25);  // only [0, 5) x [0, 5) lies inside the image
  GroundTruth box_only;
  box_only.box = {0.f, 0.f, 0.05f, 0.05f};
  const RegionMask label = RasterizeLabel(box_only, 100, 100);
  EXPECT_EQ(label.area, 25);
  EXPECT_NEAR(MaskIou(label, pred), 1.0, 1e-6);
  EXPECT_EQ(MaskIou(label, RegionMask{}), 0.0);  // empty prediction mask
}

TEST(EvalOks, HandComputed) {
  // K = 2 -> sigma 1/2 each. Label point 0 visible at (10, 10), point 1 not labelled.
  // Prediction (13, 14): d^2 = 9 + 16 = 25; area 100:
  // e = 25 / ((2 * 0.5)^2 * 100 * 2) = 0.125 -> OKS = exp(-0.125) (one visible point).
  const std::vector<Keypoint> label = {{10, 10, 2}, {50, 50, 0}};
  const std::vector<Keypoint> pred = {{13, 14, 0.9f}, {0, 0, 0.1f}};
  EXPECT_NEAR(Oks(label, pred, 100, KeypointSigmas(2)), std::exp(-0.125), 1e-6);
  EXPECT_NEAR(Oks(label, label, 100, KeypointSigmas(2)), 1.0, 1e-6);
  const std::vector<Keypoint> hidden = {{10, 10, 0}, {50, 50, 0}};
  EXPECT_EQ(Oks(hidden, pred, 100, KeypointSigmas(2)), 0.0);
}

TEST(EvalOks, CocoSigmas) {
  const std::vector<double> s = KeypointSigmas(17);
  ASSERT_EQ(s.size(), 17u);
  EXPECT_DOUBLE_EQ(s[0], 0.026);   // nose
  EXPECT_DOUBLE_EQ(s[11], 0.107);  // left hip
  // Nose 2 px off, area 400: e = 4 / ((0.052)^2 * 400 * 2) = 4 / 2.1632.
  std::vector<Keypoint> label(17), pred(17);
  label[0] = {100, 100, 2};
  pred[0] = {102, 100, 1};
  EXPECT_NEAR(Oks(label, pred, 400, s), std::exp(-4.0 / 2.1632), 1e-6);
  EXPECT_EQ(KeypointSigmas(4), (std::vector<double>{0.25, 0.25, 0.25, 0.25}));
}

}  // namespace
}  // namespace cvdeploy::eval
