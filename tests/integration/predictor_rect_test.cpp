// SPDX-License-Identifier: Apache-2.0
// Issue 16: rect inference through the Predictor. A sample model converted with
// MakeBatchDynamic + MakeShapeDynamic (cvdeploy convert --dynamic) gets the minimal stride-aligned
// letterbox by default (bus.jpg 810x1080 -> 480 wide x 640 high) and the full square with
// rect = false; its detections agree with the square path; a batch of mixed shapes is grouped
// by shape (PredictBatch) or padded to one shape (Prepare); a fixed-size model ignores rect.
#include <gtest/gtest.h>

#include <algorithm>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "cvdeploy/file.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/tools.h"
#include "support/assets.h"
#include "vision/nms.h"

namespace cvdeploy::testing {
namespace {

// Detections of `a` with confidence >= min_conf that have a same-class partner in `b` at
// IoU >= 0.9, and how many there are.
std::pair<int, int> Matched(const Result& a, const Result& b, float min_conf) {
  int total = 0, matched = 0;
  for (const Detection& d : a.detections) {
    if (d.confidence < min_conf) continue;
    ++total;
    for (const Detection& e : b.detections) {
      if (e.class_id == d.class_id && vision::AxisAlignedIou(d.box, e.box) >= 0.9f) {
        ++matched;
        break;
      }
    }
  }
  return {total, matched};
}

void ExpectSameDetections(const Result& a, const Result& b, float tolerance) {
  ASSERT_EQ(a.detections.size(), b.detections.size());
  for (size_t i = 0; i < a.detections.size(); ++i) {
    const Detection& x = a.detections[i];
    const Detection& y = b.detections[i];
    EXPECT_EQ(x.class_id, y.class_id) << i;
    EXPECT_NEAR(x.confidence, y.confidence, tolerance) << i;
    EXPECT_NEAR(x.box.x1, y.box.x1, 100 * tolerance) << i;
    EXPECT_NEAR(x.box.y1, y.box.y1, 100 * tolerance) << i;
    EXPECT_NEAR(x.box.x2, y.box.x2, 100 * tolerance) << i;
    EXPECT_NEAR(x.box.y2, y.box.y2, 100 * tolerance) << i;
  }
}

class PredictorRectTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = Asset("models/yolov8n-dq.onnx");
    // cvdeploy convert --dynamic: a batch axis too, so that a mixed batch can be one call.
    const DynamicShapeResult converted =
        MakeShapeDynamic(MakeBatchDynamic(ReadFileBytes(path), path).bytes, path);
    SessionOptions options;
    options.intra_op_threads = 2;
    dynamic_ = Predictor::LoadFromMemory(converted.bytes, "yolov8n-dq-dynamic", options).release();
    fixed_ = Predictor::Load(path, options).release();
  }
  static void TearDownTestSuite() {
    delete dynamic_;
    delete fixed_;
  }
  static const Predictor* dynamic_;
  static const Predictor* fixed_;
};
const Predictor* PredictorRectTest::dynamic_ = nullptr;
const Predictor* PredictorRectTest::fixed_ = nullptr;

TEST_F(PredictorRectTest, BusGetsTheMinimalRectInputByDefault) {
  ASSERT_TRUE(dynamic_->meta().dynamic);
  const cv::Mat bus = cv::imread(Asset("images/bus.jpg"));
  ASSERT_EQ(bus.size(), cv::Size(810, 1080));
  PredictOptions options;
  Batch rect = dynamic_->Prepare({bus}, options);
  EXPECT_EQ(rect.input().shape(), (std::vector<int64_t>{1, 3, 640, 480}));
  EXPECT_EQ(rect.letterboxes()[0].pad_left, 0);
  options.rect = false;
  Batch square = dynamic_->Prepare({bus}, options);
  EXPECT_EQ(square.input().shape(), (std::vector<int64_t>{1, 3, 640, 640}));
  EXPECT_EQ(square.letterboxes()[0].pad_left, 80);
}

TEST_F(PredictorRectTest, RectDetectionsMatchTheSquarePath) {
  // The confident detections (>= 0.5) of either path have a same-class partner at IoU >= 0.9
  // on the other; below that, detections near the 0.25 threshold may flip (the grey padding
  // the square path adds changes what the border convolutions see).
  for (const char* name : {"images/bus.jpg", "images/zidane.jpg"}) {
    SCOPED_TRACE(name);
    const cv::Mat image = cv::imread(Asset(name));
    PredictOptions options;
    const Result rect = dynamic_->Predict(image, options);
    options.rect = false;
    const Result square = dynamic_->Predict(image, options);
    ASSERT_FALSE(square.detections.empty());
    const auto [s_total, s_matched] = Matched(square, rect, 0.5f);
    const auto [r_total, r_matched] = Matched(rect, square, 0.5f);
    EXPECT_GT(s_total, 0);
    EXPECT_EQ(s_matched, s_total);
    EXPECT_EQ(r_matched, r_total);
  }
}

TEST_F(PredictorRectTest, MixedShapesAreGroupedOrPadded) {
  const cv::Mat bus = cv::imread(Asset("images/bus.jpg"));        // rect 480x640
  const cv::Mat zidane = cv::imread(Asset("images/zidane.jpg"));  // rect 640x384
  const PredictOptions options;
  const Result bus_alone = dynamic_->Predict(bus, options);
  const Result zidane_alone = dynamic_->Predict(zidane, options);
  // PredictBatch: one engine call per shape, results in the caller's order, each equal to
  // the image predicted alone (batched kernels may differ in the last bits).
  const std::vector<Result> grouped = dynamic_->PredictBatch({bus, zidane, bus}, options);
  ASSERT_EQ(grouped.size(), 3u);
  ExpectSameDetections(grouped[0], bus_alone, 1e-3f);
  ExpectSameDetections(grouped[1], zidane_alone, 1e-3f);
  ExpectSameDetections(grouped[2], bus_alone, 1e-3f);
  // Prepare of a mixed batch pads every image to the largest rect sides (640x640 here).
  Batch padded = dynamic_->Prepare({bus, zidane}, options);
  EXPECT_EQ(padded.input().shape(), (std::vector<int64_t>{2, 3, 640, 640}));
  EXPECT_EQ(padded.letterboxes()[0].pad_left, 80);
  EXPECT_EQ(padded.letterboxes()[1].pad_top, 140);  // 360 rows centred in 640
  const std::vector<Result> decoded = dynamic_->Decode(dynamic_->Run(padded), padded, options);
  const auto [total, matched] = Matched(decoded[1], zidane_alone, 0.5f);
  EXPECT_GT(total, 0);
  EXPECT_EQ(matched, total);
}

TEST_F(PredictorRectTest, FixedSizeModelKeepsTheSquareSilently) {
  ASSERT_FALSE(fixed_->meta().dynamic);
  const cv::Mat bus = cv::imread(Asset("images/bus.jpg"));
  PredictOptions options;  // rect = true by default
  Batch batch = fixed_->Prepare({bus}, options);
  EXPECT_EQ(batch.input().shape(), (std::vector<int64_t>{1, 3, 640, 640}));
  options.rect = false;
  ExpectSameDetections(fixed_->Predict(bus, PredictOptions{}), fixed_->Predict(bus, options), 0.f);
}

}  // namespace
}  // namespace cvdeploy::testing
