// SPDX-License-Identifier: Apache-2.0
// Annotation: visible changes where expected, and no crash on awkward input.
#include "vision/draw.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

namespace cvdeploy::vision {
namespace {

Detection Box(float x1, float y1, float x2, float y2, int cls = 0, float conf = 0.87f) {
  Detection d;
  d.class_id = cls;
  d.class_name = std::string("class").append(std::to_string(cls));
  d.confidence = conf;
  d.box = {x1, y1, x2, y2};
  return d;
}

Result Make(Task task, std::vector<Detection> dets, int w = 320, int h = 240) {
  Result r;
  r.width = w;
  r.height = h;
  r.task = task;
  r.detections = std::move(dets);
  return r;
}

int ChangedPixels(const cv::Mat& a, const cv::Mat& b, cv::Rect roi) {
  cv::Mat diff;
  cv::absdiff(a(roi), b(roi), diff);
  cv::Mat gray;
  cv::cvtColor(diff, gray, cv::COLOR_BGR2GRAY);
  return cv::countNonZero(gray);
}

TEST(DrawTest, BoxChangesPixelsOnItsOutline) {
  const cv::Mat original(240, 320, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::Mat img = original.clone();
  Annotate(img, Make(Task::kDetect, {Box(100, 80, 200, 180)}));
  EXPECT_GT(ChangedPixels(original, img, cv::Rect(98, 120, 5, 20)), 0);    // left edge
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(130, 120, 40, 40)), 0);  // interior
  EXPECT_GT(ChangedPixels(original, img, cv::Rect(100, 60, 60, 20)), 0);   // label above
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(250, 200, 60, 30)), 0);  // elsewhere
  EXPECT_EQ(img.type(), CV_8UC3);
}

TEST(DrawTest, EmptyResultAndEmptyImage) {
  const cv::Mat original(50, 60, CV_8UC3, cv::Scalar(10, 20, 30));
  cv::Mat img = original.clone();
  Annotate(img, Make(Task::kDetect, {}));
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(0, 0, 60, 50)), 0);
  Annotate(img, Make(Task::kClassify, {}));
  cv::Mat empty;
  Annotate(empty, Make(Task::kDetect, {Box(0, 0, 10, 10)}));
  EXPECT_TRUE(empty.empty());
}

TEST(DrawTest, BordersAndDegenerateBoxesDoNotCrash) {
  cv::Mat img(100, 120, CV_8UC3, cv::Scalar(0, 0, 0));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  Annotate(img, Make(Task::kDetect,
                     {Box(0, 0, 120, 100), Box(-50, -50, 10, 10, 1), Box(110, 90, 500, 400, 2),
                      Box(60, 0, 60, 0, 3), Box(nan, 5, inf, -inf, 4), Box(0, 99, 120, 100, 5)},
                     120, 100));
  // A label for a box at the top edge is drawn inside the image.
  EXPECT_GT(cv::countNonZero(img.reshape(1)), 0);
  cv::Mat tiny(2, 2, CV_8UC3, cv::Scalar(0, 0, 0));
  Annotate(tiny, Make(Task::kDetect, {Box(0, 0, 2, 2)}, 2, 2));
}

TEST(DrawTest, SegmentMaskIsTranslucent) {
  const cv::Mat original(100, 100, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::Mat img = original.clone();
  Detection d = Box(20, 20, 80, 80);
  d.mask_roi = cv::Rect(20, 20, 60, 60);
  d.mask = cv::Mat(60, 60, CV_8U, cv::Scalar(0));
  d.mask(cv::Rect(20, 20, 20, 20)).setTo(255);  // image [40, 60)^2
  d.polygons = {{{40, 40}, {59, 40}, {59, 59}, {40, 59}}};
  Detection outside = Box(90, 90, 100, 100, 1);
  outside.mask_roi = cv::Rect(90, 90, 20, 20);  // half outside the image
  outside.mask = cv::Mat(20, 20, CV_8U, cv::Scalar(255));
  Detection bad = Box(0, 0, 5, 5, 2);
  bad.mask = cv::Mat(3, 3, CV_8U, cv::Scalar(255));  // size mismatch: ignored
  Annotate(img, Make(Task::kSegment, {d, outside, bad}, 100, 100));
  const cv::Vec3b inside = img.at<cv::Vec3b>(50, 50);
  EXPECT_GT(inside[0] + inside[1] + inside[2], 0);
  EXPECT_LT(std::max({inside[0], inside[1], inside[2]}), 255);  // blended, not opaque
  EXPECT_EQ(img.at<cv::Vec3b>(45, 65), cv::Vec3b(0, 0, 0));     // box interior, no mask
  EXPECT_GT(cv::sum(img(cv::Rect(92, 92, 8, 8)))[0] + cv::sum(img(cv::Rect(92, 92, 8, 8)))[1] +
                cv::sum(img(cv::Rect(92, 92, 8, 8)))[2],
            0);
}

TEST(DrawTest, PoseSkeletonAndPartialKeypoints) {
  const cv::Mat original(200, 200, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::Mat img = original.clone();
  Detection person = Box(20, 20, 180, 180);
  for (int j = 0; j < 17; ++j) {
    person.keypoints.push_back({40.f + 8 * j, 60.f + 5 * j, 0.9f});
  }
  person.keypoints[3] = {150, 40, 0.2f};    // hidden, away from the other points
  person.keypoints[16] = {-10, 500, 0.9f};  // off-image: clipped by OpenCV
  Detection hand = Box(150, 150, 200, 200, 1);
  hand.keypoints = {{160, 160, 1.f}, {170, 170, 0.3f}, {199, 199, 1.f}};
  Annotate(img, Make(Task::kPose, {person, hand}, 200, 200));
  EXPECT_GT(ChangedPixels(original, img, cv::Rect(38, 58, 5, 5)), 0);    // keypoint 0
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(146, 36, 9, 9)), 0);   // keypoint 3 hidden
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(168, 168, 5, 5)), 0);  // hand point 1 hidden
}

TEST(DrawTest, RotatedBoxDrawnAsPolygon) {
  const cv::Mat original(200, 200, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::Mat img = original.clone();
  Detection d = Box(60, 60, 140, 140);
  d.rotated = RotatedBox{100, 100, 80, 20, 0.785f};
  Annotate(img, Make(Task::kObb, {d}, 200, 200));
  // Corner c + u + v = (121.2, 135.4) is drawn; the centre and the bounds' corner are not.
  EXPECT_GT(ChangedPixels(original, img, cv::Rect(119, 133, 5, 5)), 0);
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(96, 96, 8, 8)), 0);
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(60, 130, 10, 10)), 0);
  Detection edge = Box(0, 0, 200, 200, 1);
  edge.rotated = RotatedBox{0, 0, 400, 50, 2.5f};
  Annotate(img, Make(Task::kObb, {edge}, 200, 200));
}

TEST(DrawTest, ClassificationTop5Text) {
  const cv::Mat original(120, 160, CV_8UC3, cv::Scalar(128, 128, 128));
  cv::Mat img = original.clone();
  Detection d = Box(0, 0, 160, 120, 3, 0.6f);
  for (int k = 0; k < 5; ++k)
    d.top5.push_back({k, std::string("cat").append(std::to_string(k)), 0.1f * (5 - k)});
  Annotate(img, Make(Task::kClassify, {d}, 160, 120));
  EXPECT_GT(ChangedPixels(original, img, cv::Rect(0, 0, 80, 40)), 0);
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(150, 110, 10, 10)), 0);  // no whole-image box
}

TEST(DrawTest, GrayImagesBecomeBgr) {
  cv::Mat gray(60, 60, CV_8UC1, cv::Scalar(0));
  Annotate(gray, Make(Task::kDetect, {Box(10, 10, 50, 50)}, 60, 60));
  EXPECT_EQ(gray.type(), CV_8UC3);
  cv::Mat floats(10, 10, CV_32FC3, cv::Scalar(0, 0, 0));
  Annotate(floats, Make(Task::kDetect, {Box(1, 1, 5, 5)}, 10, 10));  // unsupported: untouched
  EXPECT_EQ(cv::sum(floats)[0], 0);
}

TEST(DrawTest, ColorsAreStableAndDistinct) {
  EXPECT_EQ(ClassColor(3), ClassColor(3));
  EXPECT_NE(ClassColor(0), ClassColor(1));
  EXPECT_NE(ClassColor(1), ClassColor(2));
}

}  // namespace
}  // namespace cvdeploy::vision
