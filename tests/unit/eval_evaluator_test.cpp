// SPDX-License-Identifier: Apache-2.0
// End-to-end Evaluator cases with hand-computed mAP, P and R.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"

namespace cvdeploy {
namespace {

// Images are 100 x 100, so normalized label coordinates are pixels / 100.
constexpr int kSize = 100;

GroundTruth Label(int class_id, float x1, float y1, float x2, float y2) {
  GroundTruth gt;
  gt.class_id = class_id;
  gt.box = {x1 / kSize, y1 / kSize, x2 / kSize, y2 / kSize};
  return gt;
}

Detection Pred(int class_id, float conf, float x1, float y1, float x2, float y2) {
  Detection d;
  d.class_id = class_id;
  d.confidence = conf;
  d.box = {x1, y1, x2, y2};
  return d;
}

Result Image(std::vector<Detection> detections, Task task = Task::kDetect) {
  Result r;
  r.width = r.height = kSize;
  r.task = task;
  r.detections = std::move(detections);
  return r;
}

TEST(EvalEvaluator, PerfectPrediction) {
  Evaluator ev({"a"});
  ev.Add(Image({Pred(0, 0.9f, 10, 10, 50, 50)}), {Label(0, 10, 10, 50, 50)}, kSize, kSize);
  const EvalReport r = ev.Compute();
  EXPECT_EQ(r.images, 1);
  EXPECT_EQ(r.instances, 1);
  // 0.995, not 1: Ultralytics' sentinel at recall 1 (see EvalComputeAp.PerfectCurveIs0995).
  EXPECT_NEAR(r.box.map50, 0.995, 1e-9);
  EXPECT_NEAR(r.box.map50_95, 0.995, 1e-9);
  EXPECT_DOUBLE_EQ(r.box.precision, 1.0);
  EXPECT_DOUBLE_EQ(r.box.recall, 1.0);
  ASSERT_EQ(r.box.per_class.size(), 1u);
  EXPECT_EQ(r.box.per_class[0].name, "a");
  EXPECT_FALSE(r.mask.has_value());
  EXPECT_FALSE(r.pose.has_value());
}

TEST(EvalEvaluator, OneOfTwoLabelsFound) {
  // recall 0.5 at precision 1 -> AP 0.75 at every threshold (EvalComputeAp.HalfRecall...).
  Evaluator ev({"a"});
  ev.Add(Image({Pred(0, 0.9f, 10, 10, 50, 50)}),
         {Label(0, 10, 10, 50, 50), Label(0, 60, 60, 90, 90)}, kSize, kSize);
  const EvalReport r = ev.Compute();
  EXPECT_NEAR(r.box.map50, 0.75, 1e-9);
  EXPECT_NEAR(r.box.map50_95, 0.75, 1e-9);
  EXPECT_DOUBLE_EQ(r.box.precision, 1.0);
  EXPECT_DOUBLE_EQ(r.box.recall, 0.5);
}

TEST(EvalEvaluator, LooseBoxCountsOnlyAtLowThresholds) {
  // Label [0,100]x[0,100], prediction [0,100]x[0,57]: IoU 5700 / 10000 = 0.57 -> TP at
  // 0.50 and 0.55 only. AP 0.995 at those two, 0 at the other eight:
  // map50 = 0.995, map50_95 = 2 * 0.995 / 10 = 0.199.
  Evaluator ev({"a"});
  ev.Add(Image({Pred(0, 0.8f, 0, 0, 100, 57)}), {Label(0, 0, 0, 100, 100)}, kSize, kSize);
  const EvalReport r = ev.Compute();
  EXPECT_NEAR(r.box.map50, 0.995, 1e-9);
  EXPECT_NEAR(r.box.map50_95, 0.199, 1e-9);
}

TEST(EvalEvaluator, DuplicateIsFalsePositive) {
  // Labels A, B. Predictions: A (0.9), A again (0.8), B (0.7) -> TP, FP, TP.
  // recall [.5, .5, 1], precision [1, .5, 2/3]; envelope over mrec [0, .5, .5, 1, 1] is
  // [1, 1, 2/3, 2/3, 0]. Curve: 1 on [0, .49], 2/3 from x = .5 to .99, 0 at 1:
  // AP = .49 + (1 + 2/3) / 2 * .01 + .49 * 2/3 + (2/3) / 2 * .01 = 0.8283333...
  // (0.995 without the duplicate).
  Evaluator ev({"a"});
  ev.Add(Image({Pred(0, 0.9f, 10, 10, 50, 50), Pred(0, 0.8f, 10, 10, 50, 50),
                Pred(0, 0.7f, 60, 60, 90, 90)}),
         {Label(0, 10, 10, 50, 50), Label(0, 60, 60, 90, 90)}, kSize, kSize);
  const double expected = 0.49 + (5.0 / 3) / 2 * 0.01 + 0.49 * 2.0 / 3 + (2.0 / 3) / 2 * 0.01;
  EXPECT_NEAR(ev.Compute().box.map50, expected, 1e-9);
  EXPECT_NEAR(expected, 0.828333333, 1e-8);
}

TEST(EvalEvaluator, WrongClassNeverMatches) {
  Evaluator ev({"a", "b"});
  ev.Add(Image({Pred(1, 0.9f, 10, 10, 50, 50)}), {Label(0, 10, 10, 50, 50)}, kSize, kSize);
  const EvalReport r = ev.Compute();
  ASSERT_EQ(r.box.per_class.size(), 1u);  // only classes present in the labels
  EXPECT_EQ(r.box.per_class[0].class_id, 0);
  EXPECT_EQ(r.box.map50, 0.0);
  EXPECT_EQ(r.box.precision, 0.0);
}

TEST(EvalEvaluator, BackgroundImagePredictionsAreFalsePositives) {
  // Image 1: label + exact prediction at 0.5. Image 2 (background): a 0.9 prediction.
  // Order FP(0.9), TP(0.5): recall [0, 1], precision [0, .5] -> AP 0.4975
  // (EvalComputeAp.FalsePositiveThenTruePositive). On the confidence grid F1 peaks at 2/3
  // for every px <= 0.5 (P = .5, R = 1), a plateau the smoothing keeps at its start.
  Evaluator ev({"a"});
  ev.Add(Image({Pred(0, 0.5f, 10, 10, 50, 50)}), {Label(0, 10, 10, 50, 50)}, kSize, kSize);
  ev.Add(Image({Pred(0, 0.9f, 10, 10, 50, 50)}), {}, kSize, kSize);
  const EvalReport r = ev.Compute();
  EXPECT_EQ(r.images, 2);
  EXPECT_EQ(r.instances, 1);
  EXPECT_NEAR(r.box.map50, 0.4975, 1e-9);
  EXPECT_NEAR(r.box.precision, 0.5, 1e-9);
  EXPECT_NEAR(r.box.recall, 1.0, 1e-9);
  ASSERT_EQ(r.box.per_class.size(), 1u);
  EXPECT_EQ(r.box.per_class[0].images, 1);  // the background image holds no instance
}

TEST(EvalEvaluator, LabelledClassWithoutPredictionsCountsAsZero) {
  // Class 0 perfect (0.995), class 1 labelled but never predicted (0): mean 0.4975.
  // P: class 0 is 1, class 1 is 0 -> 0.5. Counts: class 0 in both images, 3 instances.
  Evaluator ev({"a", "b"});
  ev.Add(Image({Pred(0, 0.9f, 10, 10, 50, 50)}),
         {Label(0, 10, 10, 50, 50), Label(1, 60, 60, 90, 90)}, kSize, kSize);
  ev.Add(Image({Pred(0, 0.9f, 10, 10, 30, 30), Pred(0, 0.8f, 60, 60, 90, 90)}),
         {Label(0, 10, 10, 30, 30), Label(0, 60, 60, 90, 90)}, kSize, kSize);
  const EvalReport r = ev.Compute();
  EXPECT_EQ(r.instances, 4);
  ASSERT_EQ(r.box.per_class.size(), 2u);
  EXPECT_EQ(r.box.per_class[0].instances, 3);
  EXPECT_EQ(r.box.per_class[0].images, 2);
  EXPECT_EQ(r.box.per_class[1].instances, 1);
  EXPECT_EQ(r.box.per_class[1].images, 1);
  EXPECT_NEAR(r.box.per_class[0].map50, 0.995, 1e-9);
  EXPECT_EQ(r.box.per_class[1].map50, 0.0);
  EXPECT_EQ(r.box.per_class[1].precision, 0.0);
  EXPECT_NEAR(r.box.map50, 0.4975, 1e-9);
  EXPECT_NEAR(r.box.precision, 0.5, 1e-9);
  EXPECT_NEAR(r.box.recall, 0.5, 1e-9);
}

TEST(EvalEvaluator, SegmentReportsMaskMetrics) {
  // Label polygon [10,20)x[10,20). Prediction 1: exact box and mask -> mask IoU 1.
  // Image 2: exact box but mask shifted by 5 px -> mask IoU 1/3 < 0.5: the box is a TP,
  // the mask a miss. Box AP 0.995; mask: TP, FN -> recall .5 at precision 1 -> 0.75.
  GroundTruth label = Label(0, 10, 10, 20, 20);
  label.polygons = {{{0.1f, 0.1f}, {0.2f, 0.1f}, {0.2f, 0.2f}, {0.1f, 0.2f}}};
  auto with_mask = [](float conf, cv::Rect roi) {
    Detection d = Pred(0, conf, 10, 10, 20, 20);
    d.mask_roi = roi;
    d.mask = cv::Mat(roi.size(), CV_8U, cv::Scalar(255));
    return d;
  };
  Evaluator ev({"a"}, Task::kSegment);
  ev.Add(Image({with_mask(0.9f, {10, 10, 10, 10})}, Task::kSegment), {label}, kSize, kSize);
  ev.Add(Image({with_mask(0.8f, {15, 10, 10, 10})}, Task::kSegment), {label}, kSize, kSize);
  const EvalReport r = ev.Compute();
  EXPECT_NEAR(r.box.map50, 0.995, 1e-9);
  ASSERT_TRUE(r.mask.has_value());
  // TP (0.9), FP (0.8): recall [.5, .5], precision [1, .5] -> 0.6225.
  EXPECT_NEAR(r.mask->map50, 0.6225, 1e-9);
  EXPECT_FALSE(r.pose.has_value());
}

TEST(EvalEvaluator, PoseReportsOksMetrics) {
  // Two keypoints (sigma 1/2 each), label box 40 x 40 -> area 1600 * 0.53 = 848.
  // Exact keypoints -> OKS 1. A second image with points 60 px off:
  // e = 3600 / (1 * 848 * 2) = 2.12 -> OKS = exp(-2.12) = 0.12 < 0.5: box TP, pose FP.
  GroundTruth label = Label(0, 10, 10, 50, 50);
  label.keypoints = {{0.2f, 0.2f, 2}, {0.4f, 0.4f, 1}};
  Detection exact = Pred(0, 0.9f, 10, 10, 50, 50);
  exact.keypoints = {{20, 20, 0.9f}, {40, 40, 0.9f}};
  Detection off = Pred(0, 0.8f, 10, 10, 50, 50);
  off.keypoints = {{80, 20, 0.9f}, {100, 40, 0.9f}};
  Evaluator ev({"person"}, Task::kPose);
  ev.Add(Image({exact}, Task::kPose), {label}, kSize, kSize);
  ev.Add(Image({off}, Task::kPose), {label}, kSize, kSize);
  const EvalReport r = ev.Compute();
  EXPECT_NEAR(r.box.map50, 0.995, 1e-9);
  ASSERT_TRUE(r.pose.has_value());
  EXPECT_NEAR(r.pose->map50, 0.6225, 1e-9);
  EXPECT_FALSE(r.mask.has_value());
}

TEST(EvalEvaluator, SizeFallsBackToTheResult) {
  Evaluator ev({"a"});
  ev.Add(Image({Pred(0, 0.9f, 10, 10, 50, 50)}), {Label(0, 10, 10, 50, 50)}, 0, 0);
  EXPECT_NEAR(ev.Compute().box.map50, 0.995, 1e-9);
  Result unsized;
  EXPECT_THROW(ev.Add(unsized, {}, 0, 0), Error);
}

// Value semantics (eval.h): a copy is an independent snapshot; a move carries the records.
TEST(EvalEvaluator, CopyIsAnIndependentSnapshot) {
  Evaluator ev({"a"});
  ev.Add(Image({Pred(0, 0.9f, 10, 10, 50, 50)}), {Label(0, 10, 10, 50, 50)}, kSize, kSize);
  Evaluator snapshot = ev;  // one perfect image
  // A second image whose label is missed: recall 0.5 for `ev` only.
  ev.Add(Image({}), {Label(0, 60, 60, 90, 90)}, kSize, kSize);
  EXPECT_EQ(ev.Compute().images, 2);
  EXPECT_NEAR(ev.Compute().box.recall, 0.5, 1e-9);
  EXPECT_EQ(snapshot.Compute().images, 1);
  EXPECT_NEAR(snapshot.Compute().box.recall, 1.0, 1e-9);

  // Adding to the copy leaves the original unchanged too; assignment copies the same way.
  snapshot.Add(Image({Pred(0, 0.9f, 10, 10, 50, 50)}), {Label(0, 10, 10, 50, 50)}, kSize, kSize);
  EXPECT_EQ(snapshot.Compute().images, 2);
  EXPECT_EQ(ev.Compute().images, 2);
  EXPECT_NEAR(ev.Compute().box.recall, 0.5, 1e-9);
  Evaluator assigned({"other"}, Task::kSegment);
  assigned = ev;
  ev.Add(Image({}), {Label(0, 60, 60, 90, 90)}, kSize, kSize);
  EXPECT_EQ(assigned.Compute().images, 2);
  ASSERT_EQ(assigned.Compute().box.per_class.size(), 1u);
  EXPECT_EQ(assigned.Compute().box.per_class[0].name, "a");
  EXPECT_FALSE(assigned.Compute().mask.has_value());  // task copied as well
}

TEST(EvalEvaluator, MoveCarriesTheRecords) {
  Evaluator ev({"a"});
  ev.Add(Image({Pred(0, 0.9f, 10, 10, 50, 50)}), {Label(0, 10, 10, 50, 50)}, kSize, kSize);
  Evaluator moved = std::move(ev);
  EXPECT_EQ(moved.Compute().images, 1);
  EXPECT_NEAR(moved.Compute().box.map50, 0.995, 1e-9);
  Evaluator assigned({"b"});
  assigned = std::move(moved);
  assigned.Add(Image({}), {Label(0, 60, 60, 90, 90)}, kSize, kSize);
  EXPECT_EQ(assigned.Compute().images, 2);
  EXPECT_NEAR(assigned.Compute().box.recall, 0.5, 1e-9);
  moved = assigned;  // a moved-from Evaluator may be assigned to, and is then whole again
  EXPECT_EQ(moved.Compute().images, 2);
}

}  // namespace
}  // namespace cvdeploy
