// SPDX-License-Identifier: Apache-2.0
// The matching and statistics of `cvdeploy compare` (src/eval/compare.h) on hand-made
// detections and tensors, with the expected values worked out by hand.
#include "eval/compare.h"

#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <limits>

namespace cvdeploy::eval {
namespace {

Detection Det(int class_id, float conf, float x1, float y1, float x2, float y2) {
  Detection d;
  d.class_id = class_id;
  d.confidence = conf;
  d.box = {x1, y1, x2, y2};
  return d;
}

Result MakeResult(std::vector<Detection> detections) {
  Result r;
  r.width = 640;
  r.height = 480;
  r.detections = std::move(detections);
  return r;
}

TEST(CompareMatchTest, BoxIouByHand) {
  EXPECT_FLOAT_EQ(ExactBoxIou({0, 0, 10, 10}, {0, 0, 10, 10}), 1.f);
  EXPECT_FLOAT_EQ(ExactBoxIou({0, 0, 10, 10}, {5, 0, 15, 10}), 50.f / 150.f);
  EXPECT_FLOAT_EQ(ExactBoxIou({0, 0, 10, 10}, {10, 0, 20, 10}), 0.f);  // touching edges
  EXPECT_FLOAT_EQ(ExactBoxIou({0, 0, 10, 10}, {20, 20, 30, 30}), 0.f);
  // A degenerate (clipped to a line) box still matches itself, so self-comparison is 100%.
  EXPECT_FLOAT_EQ(ExactBoxIou({5, 5, 5, 9}, {5, 5, 5, 9}), 1.f);
  EXPECT_FLOAT_EQ(ExactBoxIou({5, 5, 5, 9}, {5, 5, 5, 8}), 0.f);
}

TEST(CompareMatchTest, IdenticalListsMatchOneToOne) {
  const std::vector<Detection> a = {Det(0, 0.9f, 0, 0, 10, 10), Det(0, 0.8f, 100, 100, 150, 150),
                                    Det(2, 0.5f, 0, 0, 10, 10)};
  const DetectionMatching m = MatchDetections(a, a, 0.9f);
  ASSERT_EQ(m.pairs.size(), 3u);
  for (const MatchedPair& p : m.pairs) {
    EXPECT_EQ(p.a, p.b);
    EXPECT_FLOAT_EQ(p.iou, 1.f);
  }
  EXPECT_TRUE(m.a_unmatched.empty());
  EXPECT_TRUE(m.b_unmatched.empty());
}

TEST(CompareMatchTest, ClassMismatchNeverMatches) {
  const std::vector<Detection> a = {Det(0, 0.9f, 0, 0, 10, 10)};
  const std::vector<Detection> b = {Det(1, 0.9f, 0, 0, 10, 10)};
  const DetectionMatching m = MatchDetections(a, b, 0.5f);
  EXPECT_TRUE(m.pairs.empty());
  EXPECT_EQ(m.a_unmatched, std::vector<int>{0});
  EXPECT_EQ(m.b_unmatched, std::vector<int>{0});
}

TEST(CompareMatchTest, IouThresholdIsInclusive) {
  // Intersection 90, union 100: IoU is exactly 0.9f (90.f / 100.f rounds to the float 0.9f).
  const std::vector<Detection> a = {Det(3, 0.9f, 0, 0, 10, 10)};
  const std::vector<Detection> b = {Det(3, 0.9f, 0, 0, 10, 9)};
  ASSERT_EQ(DetectionIou(a[0], b[0]), 0.9f);
  EXPECT_EQ(MatchDetections(a, b, 0.9f).pairs.size(), 1u);
  EXPECT_TRUE(MatchDetections(a, b, std::nextafter(0.9f, 1.f)).pairs.empty());
  // Just under the threshold.
  const std::vector<Detection> lower = {Det(3, 0.9f, 0, 0, 10, 8.9f)};
  EXPECT_LT(DetectionIou(a[0], lower[0]), 0.9f);
  EXPECT_TRUE(MatchDetections(a, lower, 0.9f).pairs.empty());
  // Threshold 0 pairs any same-class boxes, even disjoint ones; threshold 1 only exact ones.
  const std::vector<Detection> far = {Det(3, 0.9f, 500, 500, 510, 510)};
  EXPECT_EQ(MatchDetections(a, far, 0.f).pairs.size(), 1u);
  EXPECT_TRUE(MatchDetections(a, b, 1.f).pairs.empty());
  EXPECT_EQ(MatchDetections(a, a, 1.f).pairs.size(), 1u);
}

TEST(CompareMatchTest, GreedyTakesTheBestIouFirstNotTheMostConfident) {
  // a0 prefers b0 (IoU 0.95) to b1 (0.92); a1 overlaps only b0 enough (0.99; 0.86 with b1).
  // Best-IoU-first takes (a1, b0) then (a0, b1): everything matched. A confidence-first
  // greedy would give b0 to a0 and leave a1 unmatched.
  const std::vector<Detection> a = {Det(0, 0.9f, 0, 0, 100, 100), Det(0, 0.8f, 0, 5, 100, 101)};
  const std::vector<Detection> b = {Det(0, 0.7f, 0, 5, 100, 100), Det(0, 0.7f, 0, 0, 100, 92)};
  EXPECT_GT(DetectionIou(a[1], b[0]), DetectionIou(a[0], b[0]));
  EXPECT_GT(DetectionIou(a[0], b[0]), DetectionIou(a[0], b[1]));
  EXPECT_GE(DetectionIou(a[0], b[1]), 0.9f);
  EXPECT_LT(DetectionIou(a[1], b[1]), 0.9f);
  const DetectionMatching m = MatchDetections(a, b, 0.9f);
  ASSERT_EQ(m.pairs.size(), 2u);
  EXPECT_EQ(m.pairs[0].a, 1);
  EXPECT_EQ(m.pairs[0].b, 0);
  EXPECT_EQ(m.pairs[1].a, 0);
  EXPECT_EQ(m.pairs[1].b, 1);
}

TEST(CompareMatchTest, TiesGoToTheLowerIndices) {
  // Two identical B boxes for one A box: the first B is taken; the second stays unmatched.
  const std::vector<Detection> a = {Det(0, 0.9f, 0, 0, 10, 10)};
  const std::vector<Detection> b = {Det(0, 0.6f, 0, 0, 10, 10), Det(0, 0.5f, 0, 0, 10, 10)};
  const DetectionMatching m = MatchDetections(a, b, 0.9f);
  ASSERT_EQ(m.pairs.size(), 1u);
  EXPECT_EQ(m.pairs[0].b, 0);
  EXPECT_EQ(m.b_unmatched, std::vector<int>{1});
  // Two identical A boxes for one B box: the first (more confident) A is taken.
  const DetectionMatching r = MatchDetections(b, a, 0.9f);
  ASSERT_EQ(r.pairs.size(), 1u);
  EXPECT_EQ(r.pairs[0].a, 0);
  EXPECT_EQ(r.a_unmatched, std::vector<int>{1});
}

TEST(CompareMatchTest, EmptySets) {
  const std::vector<Detection> none;
  const std::vector<Detection> two = {Det(0, 0.9f, 0, 0, 10, 10), Det(1, 0.9f, 0, 0, 10, 10)};
  EXPECT_TRUE(MatchDetections(none, none, 0.9f).pairs.empty());
  const DetectionMatching a_only = MatchDetections(two, none, 0.9f);
  EXPECT_EQ(a_only.a_unmatched, (std::vector<int>{0, 1}));
  EXPECT_TRUE(a_only.b_unmatched.empty());
  const DetectionMatching b_only = MatchDetections(none, two, 0.9f);
  EXPECT_EQ(b_only.b_unmatched, (std::vector<int>{0, 1}));

  EXPECT_DOUBLE_EQ(AgreementValue(0, 0, 0), 1.0);  // both see nothing: they agree
  EXPECT_DOUBLE_EQ(AgreementValue(0, 0, 3), 0.0);  // A sees nothing, B sees things
  EXPECT_DOUBLE_EQ(AgreementValue(0, 4, 0), 0.0);
  EXPECT_DOUBLE_EQ(AgreementValue(3, 4, 3), 0.75);
}

TEST(CompareMatchTest, RotatedBoxesUseProbIou) {
  Detection a = Det(0, 0.9f, 0, 0, 100, 100), b = a;
  a.rotated = RotatedBox{50, 50, 100, 20, 0.f};
  b.rotated = RotatedBox{50, 50, 20, 100, 0.f};  // a cross: same bounds, little overlap
  EXPECT_FLOAT_EQ(ExactBoxIou(a.box, b.box), 1.f);
  EXPECT_LT(DetectionIou(a, b), 0.5f);
  EXPECT_GT(DetectionIou(a, a), 0.99f);
}

TEST(CompareAgreementTest, CountsConfidenceDeltasAndWorstClasses) {
  AgreementAccumulator acc(0.9f);
  // Image 1: person matched (conf 0.9 vs 0.8), car matched (0.6 vs 0.6), dog only in A.
  acc.Add(MakeResult({Det(0, 0.9f, 0, 0, 10, 10), Det(2, 0.6f, 50, 50, 60, 60),
                      Det(16, 0.5f, 100, 100, 120, 120)}),
          MakeResult({Det(0, 0.8f, 0, 0, 10, 10), Det(2, 0.6f, 50, 50, 60, 60)}));
  // Image 2: nothing in either.
  acc.Add(MakeResult({}), MakeResult({}));
  // Image 3: a person only in B.
  acc.Add(MakeResult({}), MakeResult({Det(0, 0.3f, 0, 0, 10, 10)}));
  const Agreement s = acc.Summary({"person", "bicycle", "car"});
  EXPECT_EQ(s.a_total, 3);
  EXPECT_EQ(s.b_total, 3);
  EXPECT_EQ(s.matched, 2);
  EXPECT_DOUBLE_EQ(s.agreement, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.b_agreement, 2.0 / 3.0);
  EXPECT_EQ(s.images_all_matched, 1);
  EXPECT_NEAR(s.conf_delta_mean, 0.05, 1e-6);
  EXPECT_NEAR(s.conf_delta_max, 0.1, 1e-6);
  EXPECT_DOUBLE_EQ(s.iou_mean, 1.0);
  ASSERT_EQ(s.per_class.size(), 3u);
  // Worst first: dog (0 of 1), then person (1 of 1 in A, but B has an extra: agreement 1),
  // car. Class 16 has no name in the list given: its id stands in.
  EXPECT_EQ(s.per_class[0].class_id, 16);
  EXPECT_EQ(s.per_class[0].name, "16");
  EXPECT_DOUBLE_EQ(s.per_class[0].agreement, 0.0);
  EXPECT_EQ(s.per_class[1].name, "person");  // 1.0, but 3 detections in all
  EXPECT_EQ(s.per_class[1].b_total, 2);
  EXPECT_EQ(s.per_class[2].name, "car");
}

// Issue 18: a detection near the threshold in one model and just below it (or absent) in the
// other is no disagreement; one the other model found at any confidence is an agreement.
TEST(CompareAgreementTest, ConfidenceBandCountsOnlyDetectionsAboveIt) {
  // conf 0.25, band 0.05: decoded from 0.20, counted from 0.30.
  AgreementAccumulator acc(0.5f, 0.30f);
  ImageAgreement image;
  acc.Add(MakeResult({Det(0, 0.26f, 0, 0, 10, 10),          // in the band, B lacks it: ignored
                      Det(0, 0.90f, 50, 50, 60, 60),        // counted, B has it at 0.22: matched
                      Det(1, 0.40f, 100, 100, 110, 110)}),  // counted, B lacks it: a miss
          MakeResult({Det(0, 0.22f, 50, 50, 60, 60),        // in the band, matched: not counted
                      Det(2, 0.35f, 200, 200, 210, 210)}),  // counted, A lacks it: a miss
          &image);
  EXPECT_EQ(image.a_total, 2);
  EXPECT_EQ(image.matched, 1);
  EXPECT_EQ(image.b_total, 1);
  EXPECT_EQ(image.b_matched, 0);
  // The same detections one notch apart across the threshold: full agreement.
  acc.Add(MakeResult({Det(0, 0.26f, 0, 0, 10, 10)}), MakeResult({Det(0, 0.24f, 0, 0, 10, 10)}));
  const Agreement s = acc.Summary({"a", "b", "c"});
  EXPECT_EQ(s.a_total, 2);
  EXPECT_EQ(s.matched, 1);
  EXPECT_DOUBLE_EQ(s.agreement, 0.5);
  EXPECT_EQ(s.b_total, 1);
  EXPECT_EQ(s.b_matched, 0);
  EXPECT_DOUBLE_EQ(s.b_agreement, 0.0);
  EXPECT_EQ(s.images_all_matched, 1);  // the second image: nothing counted, nothing missed
  // Without the band (min_conf 0) the first image is 3 vs 2 detections, 2 of A's matched.
  AgreementAccumulator plain(0.5f);
  plain.Add(MakeResult({Det(0, 0.26f, 0, 0, 10, 10), Det(0, 0.90f, 50, 50, 60, 60)}),
            MakeResult({Det(0, 0.22f, 50, 50, 60, 60)}));
  EXPECT_EQ(plain.Summary({}).a_total, 2);
  EXPECT_EQ(plain.Summary({}).matched, 1);
}

TEST(CompareAgreementTest, NoDetectionsAnywhereIsFullAgreement) {
  AgreementAccumulator acc(0.9f);
  acc.Add(MakeResult({}), MakeResult({}));
  const Agreement s = acc.Summary({});
  EXPECT_DOUBLE_EQ(s.agreement, 1.0);
  EXPECT_EQ(s.matched, 0);
  EXPECT_DOUBLE_EQ(s.conf_delta_max, 0.0);
  EXPECT_TRUE(s.per_class.empty());
}

TEST(CompareAgreementTest, KeypointDistancesOfMatchedPairs) {
  Detection a = Det(0, 0.9f, 0, 0, 100, 100), b = a;
  a.keypoints = {{10, 10, 0.9f}, {20, 20, 0.9f}};
  b.keypoints = {{13, 14, 0.9f}, {20, 20, 0.1f}};  // 5 px and 0 px
  AgreementAccumulator acc(0.9f);
  acc.Add(MakeResult({a}), MakeResult({b}));
  const Agreement s = acc.Summary({"person"});
  EXPECT_EQ(s.keypoints_compared, 2);
  EXPECT_DOUBLE_EQ(s.keypoint_distance_mean, 2.5);
  EXPECT_DOUBLE_EQ(s.keypoint_distance_max, 5.0);
}

TEST(CompareAgreementTest, MaskIouOfMatchedPairs) {
  Detection a = Det(0, 0.9f, 0, 0, 10, 10), b = a;
  a.mask_roi = b.mask_roi = cv::Rect(0, 0, 10, 10);
  a.mask = cv::Mat(10, 10, CV_8U, cv::Scalar(255));
  b.mask = cv::Mat::zeros(10, 10, CV_8U);
  b.mask(cv::Rect(0, 0, 10, 5)).setTo(255);  // half of A's mask
  AgreementAccumulator acc(0.9f);
  acc.Add(MakeResult({a}), MakeResult({b}));
  const Agreement s = acc.Summary({"person"});
  EXPECT_EQ(s.masks_compared, 1);
  EXPECT_NEAR(s.mask_iou_mean, 0.5, 1e-6);
  EXPECT_NEAR(s.mask_iou_min, 0.5, 1e-6);
}

// A named float32 view; its data lives until the end of the test program (the accumulator
// reads views during Add/Skip only).
NamedTensorView Out(const std::string& name, std::vector<int64_t> shape, std::vector<float> data) {
  static std::deque<std::vector<float>> storage;
  storage.push_back(std::move(data));
  return {name, TensorView(DataType::kFloat32, std::move(shape), storage.back().data())};
}

TEST(CompareOutputsTest, ErrorsByHand) {
  OutputDiffAccumulator acc;
  acc.Add({Out("out", {1, 4}, {1, -2, 3, 4})}, {Out("out", {1, 4}, {1, -2.5f, 3, 5})});
  acc.Add({Out("out", {1, 4}, {0, 0, -8, 0})}, {Out("out", {1, 4}, {0, 0, -8, 0})});
  const auto s = acc.Summary();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_TRUE(s[0].compared);
  EXPECT_EQ(s[0].total.elements, 8);
  EXPECT_DOUBLE_EQ(s[0].total.max_abs_error, 1.0);
  EXPECT_DOUBLE_EQ(s[0].total.MeanAbsError(), 1.5 / 8);
  EXPECT_DOUBLE_EQ(s[0].total.max_abs_a, 8.0);
  EXPECT_DOUBLE_EQ(s[0].total.MaxRelativeError(), 1.0 / 8);
}

TEST(CompareOutputsTest, IdenticalOutputsHaveZeroError) {
  OutputDiffAccumulator acc;
  const std::vector<NamedTensorView> t = {Out("a", {1, 3}, {1, 2, 3}), Out("b", {1, 1}, {7})};
  acc.Add(t, t);
  for (const OutputDiff& d : acc.Summary()) {
    EXPECT_TRUE(d.compared) << d.name;
    EXPECT_EQ(d.total.max_abs_error, 0.0) << d.name;
    EXPECT_EQ(d.total.MeanAbsError(), 0.0) << d.name;
  }
}

TEST(CompareOutputsTest, ShapeMismatchAndMissingOutputsAreSkippedWithAReason) {
  OutputDiffAccumulator acc;
  acc.Add({Out("out", {1, 4}, {1, 2, 3, 4}), Out("only_a", {1, 1}, {1})},
          {Out("out", {1, 2}, {1, 2}), Out("only_b", {1, 1}, {1})});
  const auto s = acc.Summary();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].name, "out");
  EXPECT_FALSE(s[0].compared);
  EXPECT_EQ(s[0].skipped, "shapes differ: [1,4] vs [1,2]");
  EXPECT_EQ(s[1].name, "only_a");
  EXPECT_FALSE(s[1].compared);
  EXPECT_NE(s[1].skipped.find("model B has no output named 'only_a'"), std::string::npos);
  EXPECT_EQ(s[2].name, "only_b");
  EXPECT_NE(s[2].skipped.find("model A has no output named 'only_b'"), std::string::npos);

  // Skipped once stays skipped, with the first reason.
  OutputDiffAccumulator skip;
  skip.Skip({Out("out", {1, 1}, {1})}, {Out("out", {1, 1}, {1})}, "inputs differ");
  skip.Add({Out("out", {1, 1}, {1})}, {Out("out", {1, 1}, {2})});
  ASSERT_EQ(skip.Summary().size(), 1u);
  EXPECT_FALSE(skip.Summary()[0].compared);
  EXPECT_EQ(skip.Summary()[0].skipped, "inputs differ");
}

TEST(CompareOutputsTest, OnlyBatchItemZeroOfAFixedBatchIsCompared) {
  OutputDiffAccumulator acc;
  // Batch 2 against batch 1: the second item of A is padding and differs wildly.
  acc.Add({Out("out", {2, 2}, {1, 2, 100, 100})}, {Out("out", {1, 2}, {1, 2.5f})});
  const auto s = acc.Summary();
  ASSERT_TRUE(s[0].compared);
  EXPECT_EQ(s[0].total.elements, 2);
  EXPECT_DOUBLE_EQ(s[0].total.max_abs_error, 0.5);
}

TEST(CompareOutputsTest, PartsSplitTheRowsOfAHead) {
  OutputDiffAccumulator acc;
  acc.SetParts("head", {{"boxes", 0, 1}, {"scores", 1, 2}, {"extra", 2, -1}});
  // [1, 3 rows, 2 columns]: row 0 boxes (error 2), row 1 scores (error 0.25), row 2 extra.
  acc.Add({Out("head", {1, 3, 2}, {100, 200, 0.5f, 0.5f, 1, 1})},
          {Out("head", {1, 3, 2}, {102, 200, 0.25f, 0.5f, 1, 1})});
  const auto s = acc.Summary();
  ASSERT_EQ(s[0].parts.size(), 3u);
  EXPECT_DOUBLE_EQ(s[0].total.max_abs_error, 2.0);
  EXPECT_EQ(s[0].parts[0].first.name, "boxes");
  EXPECT_DOUBLE_EQ(s[0].parts[0].second.max_abs_error, 2.0);
  EXPECT_DOUBLE_EQ(s[0].parts[0].second.max_abs_a, 200.0);
  EXPECT_DOUBLE_EQ(s[0].parts[1].second.max_abs_error, 0.25);
  EXPECT_DOUBLE_EQ(s[0].parts[1].second.MaxRelativeError(), 0.5);
  EXPECT_EQ(s[0].parts[1].second.elements, 2);
  EXPECT_DOUBLE_EQ(s[0].parts[2].second.max_abs_error, 0.0);
  EXPECT_EQ(s[0].parts[2].second.elements, 2);
}

TEST(CompareOutputsTest, NonFiniteValuesAreCountedApart) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  OutputDiffAccumulator acc;
  acc.Add({Out("out", {1, 3}, {1, 2, nan})}, {Out("out", {1, 3}, {1, inf, 3})});
  const auto s = acc.Summary();
  EXPECT_EQ(s[0].total.elements, 1);
  EXPECT_EQ(s[0].total.non_finite_a, 1);
  EXPECT_EQ(s[0].total.non_finite_b, 1);
  EXPECT_DOUBLE_EQ(s[0].total.max_abs_error, 0.0);
}

TEST(CompareJsonTest, ReportKeys) {
  CompareReport r;
  r.images = 2;
  OutputDiffAccumulator acc;
  acc.Add({Out("output0", {1, 2}, {1, 2})}, {Out("output0", {1, 2}, {1, 3})});
  r.outputs = acc.Summary();
  AgreementAccumulator agreement(0.9f);
  agreement.Add(MakeResult({Det(0, 0.9f, 0, 0, 10, 10)}), MakeResult({}));
  r.detections = agreement.Summary({"person"});
  r.per_image = {{"x.jpg", 1, 0, 0}, {"y.jpg", 0, 0, 0}};
  const auto j = CompareReportToJson(r);
  EXPECT_EQ(j["images"], 2);
  EXPECT_EQ(j["outputs"][0]["name"], "output0");
  EXPECT_DOUBLE_EQ(j["outputs"][0]["max_abs_error"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["outputs"][0]["mean_abs_error"].get<double>(), 0.5);
  EXPECT_EQ(j["detections"]["a_total"], 1);
  EXPECT_EQ(j["detections"]["matched"], 0);
  EXPECT_DOUBLE_EQ(j["detections"]["agreement"].get<double>(), 0.0);
  ASSERT_EQ(j["detections"]["worst_images"].size(), 1u);
  EXPECT_EQ(j["detections"]["worst_images"][0]["path"], "x.jpg");
  EXPECT_FALSE(j.contains("map"));
  EXPECT_TRUE(j["speed"].contains("throughput_ratio_b_over_a"));
}

}  // namespace
}  // namespace cvdeploy::eval
