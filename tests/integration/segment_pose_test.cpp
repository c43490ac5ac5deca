// SPDX-License-Identifier: Apache-2.0
// Real segmentation and pose models on the sample images: the objects of the reference
// (MANIFEST, measured independently) are found, masks lie inside their boxes and cover a
// plausible part of them, and keypoints lie inside their person boxes.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
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

// How far foreground may reach past the box, in original pixels: with the default rule the
// crop happens on the prototype grid (stride 4), and upsampling reaches up to 1.5 cells
// (6 input pixels) past the box; the retina rule crops at full resolution (1 pixel of
// rounding).
double MaskMargin(const Result& r, bool retina) {
  const double scale = 640.0 / std::max(r.width, r.height);
  return retina ? 1.0 : 6.0 / scale + 1.0;
}

void ExpectPlausibleMask(const Detection& d, int width, int height, double margin) {
  ASSERT_FALSE(d.mask.empty()) << d.class_name;
  EXPECT_EQ(d.mask.type(), CV_8UC1);
  EXPECT_EQ(d.mask.size(), d.mask_roi.size());
  EXPECT_LE(d.mask_roi.x + d.mask_roi.width, width);
  EXPECT_LE(d.mask_roi.y + d.mask_roi.height, height);
  EXPECT_GE(d.mask_roi.x, 0);
  EXPECT_GE(d.mask_roi.y, 0);
  // The foreground lies within the (clipped) box, up to the rule's margin.
  const cv::Rect fg = cv::boundingRect(d.mask) + d.mask_roi.tl();
  EXPECT_GE(fg.x, d.box.x1 - margin) << d.class_name;
  EXPECT_GE(fg.y, d.box.y1 - margin) << d.class_name;
  EXPECT_LE(fg.x + fg.width, d.box.x2 + margin) << d.class_name;
  EXPECT_LE(fg.y + fg.height, d.box.y2 + margin) << d.class_name;
  // A real object fills a good part of its box, never all of it or nearly none.
  const double fill = cv::countNonZero(d.mask) / std::max(1.0, static_cast<double>(d.box.Area()));
  EXPECT_GT(fill, 0.2) << d.class_name;
  EXPECT_LT(fill, 0.98) << d.class_name;
  ASSERT_FALSE(d.polygons.empty());
  ASSERT_GE(d.polygon.size(), d.polygons.front().size());
  for (const cv::Point& p : d.polygon) {
    EXPECT_GE(p.x, d.box.x1 - margin - 1);
    EXPECT_LE(p.x, d.box.x2 + margin + 1);
    EXPECT_GE(p.y, d.box.y1 - margin - 1);
    EXPECT_LE(p.y, d.box.y2 + margin + 1);
  }
  EXPECT_GT(cv::contourArea(d.polygons.front()), 0.15 * d.box.Area());
}

cv::Mat Canvas(const Detection& d, int width, int height) {
  cv::Mat canvas(height, width, CV_8U, cv::Scalar(0));
  d.mask.copyTo(canvas(d.mask_roi));
  return canvas;
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
  for (const Detection& d : r.detections) {
    ExpectPlausibleMask(d, r.width, r.height, MaskMargin(r, false));
  }
}

// The two mask rules on the same detections (one engine run, decoded twice): both give
// plausible masks, they agree on large objects and differ at the edges.
TEST(SegmentTest, DefaultAndRetinaMasksAgreeOnLargeObjects) {
  auto predictor = Predictor::Load(Asset("models/yolov8n-seg-dq.onnx"));
  for (const char* name : {"images/bus.jpg", "images/zidane.jpg"}) {
    SCOPED_TRACE(name);
    const cv::Mat image = ReadImage(Asset(name));
    Batch batch = predictor->Prepare({image});
    const auto outputs = predictor->Run(batch);
    // Both rules on the same detections: none is dropped for an empty mask.
    PredictOptions plain, retina;
    plain.keep_empty_masks = retina.keep_empty_masks = true;
    retina.retina_masks = true;
    const Result a = predictor->Decode(outputs, batch, plain).at(0);
    const Result b = predictor->Decode(outputs, batch, retina).at(0);
    ASSERT_EQ(a.detections.size(), b.detections.size());
    ASSERT_GE(a.detections.size(), 3u);
    double differing = 0;
    for (size_t k = 0; k < a.detections.size(); ++k) {
      const Detection& da = a.detections[k];
      const Detection& db = b.detections[k];
      ExpectPlausibleMask(db, b.width, b.height, MaskMargin(b, true));
      const cv::Mat ma = Canvas(da, a.width, a.height), mb = Canvas(db, b.width, b.height);
      const double iou =
          static_cast<double>(cv::countNonZero(ma & mb)) / std::max(1, cv::countNonZero(ma | mb));
      std::printf("%s %s %.0fx%.0f mask IoU default/retina %.3f\n", name, da.class_name.c_str(),
                  da.box.Width(), da.box.Height(), iou);
      EXPECT_GT(iou, 0.8) << da.class_name;
      differing += cv::countNonZero(ma ^ mb);
    }
    EXPECT_GT(differing, 0) << "the two rules should not give identical masks";
  }
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
    ExpectPlausibleMask(d, r.width, r.height, MaskMargin(r, false));
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
