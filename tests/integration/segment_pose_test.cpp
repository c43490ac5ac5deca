// SPDX-License-Identifier: Apache-2.0
// Real segmentation and pose models on the sample images: the objects of the reference
// (MANIFEST, measured independently) are found, masks lie inside their boxes and cover a
// plausible part of them, and keypoints lie inside their person boxes.
#include <gtest/gtest.h>

#include <array>
#include <opencv2/imgproc.hpp>

#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "support/assets.h"

namespace cvdeploy {
namespace {

using cvdeploy::testing::Asset;

const Detection* FindNear(const Result& r, const std::string& name, float x, float y, float w,
                          float h) {
  for (const Detection& d : r.detections) {
    if (d.class_name == name && std::abs(d.box.x1 - x) <= 3 && std::abs(d.box.y1 - y) <= 3 &&
        std::abs(d.box.x2 - (x + w)) <= 3 && std::abs(d.box.y2 - (y + h)) <= 3) {
      return &d;
    }
  }
  return nullptr;
}

void ExpectPlausibleMask(const Detection& d, int width, int height) {
  ASSERT_FALSE(d.mask.empty()) << d.class_name;
  EXPECT_EQ(d.mask.type(), CV_8UC1);
  EXPECT_EQ(d.mask.size(), d.mask_roi.size());
  // The mask region lies within the (clipped) box, allowing one pixel of rounding.
  EXPECT_GE(d.mask_roi.x, std::floor(d.box.x1) - 1);
  EXPECT_GE(d.mask_roi.y, std::floor(d.box.y1) - 1);
  EXPECT_LE(d.mask_roi.x + d.mask_roi.width, std::ceil(d.box.x2) + 1);
  EXPECT_LE(d.mask_roi.y + d.mask_roi.height, std::ceil(d.box.y2) + 1);
  EXPECT_LE(d.mask_roi.x + d.mask_roi.width, width);
  EXPECT_LE(d.mask_roi.y + d.mask_roi.height, height);
  // A real object fills a good part of its box, never all of it or nearly none.
  const double fill = cv::countNonZero(d.mask) / std::max(1.0, static_cast<double>(d.box.Area()));
  EXPECT_GT(fill, 0.2) << d.class_name;
  EXPECT_LT(fill, 0.98) << d.class_name;
  ASSERT_FALSE(d.polygons.empty());
  for (const cv::Point& p : d.polygons.front()) {
    EXPECT_GE(p.x, d.box.x1 - 2);
    EXPECT_LE(p.x, d.box.x2 + 2);
    EXPECT_GE(p.y, d.box.y1 - 2);
    EXPECT_LE(p.y, d.box.y2 + 2);
  }
  EXPECT_GT(cv::contourArea(d.polygons.front()), 0.15 * d.box.Area());
}

TEST(SegmentTest, BusMasksInsideBoxes) {
  auto predictor = Predictor::Load(Asset("models/yolov8n-seg-dq.onnx"));
  ASSERT_EQ(predictor->meta().task, Task::kSegment);
  const cv::Mat image = ReadImage(Asset("images/bus.jpg"));
  const Result r = predictor->Predict(image);
  EXPECT_EQ(r.task, Task::kSegment);
  // Reference: bus 0.87 [20,225,777,513]; person 0.87 [218,408,128,453]; person 0.79
  // [51,397,195,506]; person 0.76 [669,396,141,481].
  const Detection* bus = FindNear(r, "bus", 20, 225, 777, 513);
  ASSERT_NE(bus, nullptr);
  EXPECT_NEAR(bus->confidence, 0.87, 0.01);
  ASSERT_NE(FindNear(r, "person", 218, 408, 128, 453), nullptr);
  ASSERT_NE(FindNear(r, "person", 51, 397, 195, 506), nullptr);
  ASSERT_NE(FindNear(r, "person", 669, 396, 141, 481), nullptr);
  for (const Detection& d : r.detections) ExpectPlausibleMask(d, r.width, r.height);
}

TEST(SegmentTest, ZidaneMasksAndAllContours) {
  auto predictor = Predictor::Load(Asset("models/yolov8n-seg-dq.onnx"));
  const cv::Mat image = ReadImage(Asset("images/zidane.jpg"));
  PredictOptions options;
  options.all_contours = true;
  const Result r = predictor->Predict(image, options);
  ASSERT_NE(FindNear(r, "person", 124, 201, 987, 508), nullptr);
  ASSERT_NE(FindNear(r, "tie", 434, 437, 88, 276), nullptr);
  for (const Detection& d : r.detections) {
    ExpectPlausibleMask(d, r.width, r.height);
    for (size_t i = 1; i < d.polygons.size(); ++i) {
      EXPECT_LE(cv::contourArea(d.polygons[i]), cv::contourArea(d.polygons[i - 1]));
    }
  }
  PredictOptions no_masks;
  no_masks.masks = false;
  for (const Detection& d : predictor->Predict(image, no_masks).detections)
    EXPECT_TRUE(d.mask.empty());
}

void ExpectKeypointsInside(const Detection& d) {
  ASSERT_EQ(d.keypoints.size(), 17u);
  int visible = 0;
  for (const Keypoint& k : d.keypoints) {
    EXPECT_GE(k.visibility, 0.f);
    EXPECT_LE(k.visibility, 1.f);
    if (k.visibility < 0.5f) continue;
    ++visible;
    // A visible joint of a person lies in that person's box (5% margin for limbs at edges).
    const float mx = 0.05f * d.box.Width(), my = 0.05f * d.box.Height();
    EXPECT_GE(k.x, d.box.x1 - mx);
    EXPECT_LE(k.x, d.box.x2 + mx);
    EXPECT_GE(k.y, d.box.y1 - my);
    EXPECT_LE(k.y, d.box.y2 + my);
  }
  EXPECT_GE(visible, 5) << "a clearly visible person should have several visible keypoints";
}

TEST(PoseTest, BusAndZidaneKeypointsInsidePersons) {
  auto predictor = Predictor::Load(Asset("models/yolo11n-pose-dq.onnx"));
  ASSERT_EQ(predictor->meta().task, Task::kPose);
  const Result bus = predictor->Predict(ReadImage(Asset("images/bus.jpg")));
  // Reference: person 0.89 [48,396,198,510]; 0.89 [669,392,141,486]; 0.88 [221,405,123,454].
  for (auto [x, y, w, h] :
       {std::array<float, 4>{48, 396, 198, 510}, {669, 392, 141, 486}, {221, 405, 123, 454}}) {
    const Detection* d = FindNear(bus, "person", x, y, w, h);
    ASSERT_NE(d, nullptr) << x << "," << y;
    ExpectKeypointsInside(*d);
    // Head above hips: nose (0) above the left/right hips (11, 12) when all are visible.
    if (d->keypoints[0].visibility > 0.5f && d->keypoints[11].visibility > 0.5f) {
      EXPECT_LT(d->keypoints[0].y, d->keypoints[11].y);
    }
  }
  const Result zidane = predictor->Predict(ReadImage(Asset("images/zidane.jpg")));
  const Detection* left = FindNear(zidane, "person", 143, 205, 899, 507);
  const Detection* right = FindNear(zidane, "person", 743, 39, 406, 672);
  ASSERT_NE(left, nullptr);
  ASSERT_NE(right, nullptr);
  ExpectKeypointsInside(*right);
  for (const Detection& d : zidane.detections) ASSERT_EQ(d.keypoints.size(), 17u);
}

}  // namespace
}  // namespace cvdeploy
