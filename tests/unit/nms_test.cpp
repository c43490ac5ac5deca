// SPDX-License-Identifier: Apache-2.0
// Axis-aligned NMS against the naive O(n^2) greedy reference.
#include "vision/nms.h"

#include <random>

#include <gtest/gtest.h>

#include "unit/naive_nms.h"

namespace cvdeploy::vision {
namespace {

struct RandomBoxes {
  std::vector<BoxXYXY> boxes;
  std::vector<float> scores;
  std::vector<int> classes;
};

// Boxes clustered around a few centres so that plenty of them overlap.
RandomBoxes MakeRandomBoxes(int n, int num_classes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> centre(0.f, 640.f), jitter(-25.f, 25.f), size(10.f, 120.f),
      score(0.f, 1.f);
  std::uniform_int_distribution<int> cls(0, num_classes - 1);
  std::vector<std::pair<float, float>> clusters(12);
  for (auto& c : clusters) c = {centre(rng), centre(rng)};
  RandomBoxes r;
  for (int i = 0; i < n; ++i) {
    const auto& c = clusters[i % clusters.size()];
    const float cx = c.first + jitter(rng), cy = c.second + jitter(rng);
    const float w = size(rng), h = size(rng);
    r.boxes.push_back({cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2});
    r.scores.push_back(score(rng));
    r.classes.push_back(cls(rng));
  }
  return r;
}

TEST(AxisAlignedIouTest, BasicValues) {
  const BoxXYXY a{0, 0, 10, 10}, b{5, 0, 15, 10}, far{100, 100, 110, 110};
  EXPECT_FLOAT_EQ(AxisAlignedIou(a, a), 1.f);
  EXPECT_NEAR(AxisAlignedIou(a, b), 50.0 / 150.0, 1e-6);
  EXPECT_FLOAT_EQ(AxisAlignedIou(a, b), AxisAlignedIou(b, a));
  EXPECT_EQ(AxisAlignedIou(a, far), 0.f);
  EXPECT_EQ(AxisAlignedIou(a, BoxXYXY{3, 3, 3, 8}), 0.f);  // empty box
  EXPECT_EQ(AxisAlignedIou(BoxXYXY{}, BoxXYXY{}), 0.f);
}

TEST(NmsTest, EmptyInput) { EXPECT_TRUE(Nms({}, {}, {}, 0.5f, false, 300).empty()); }

TEST(NmsTest, MatchesNaiveReferenceOnRandomBoxes) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    const RandomBoxes r = MakeRandomBoxes(300, 4, seed);
    for (float iou : {0.3f, 0.5f, 0.7f}) {
      for (bool agnostic : {false, true}) {
        SCOPED_TRACE(::testing::Message()
                     << "seed " << seed << " iou " << iou << " agnostic " << agnostic);
        const auto expected = testing::NaiveNms(r.boxes, r.scores, r.classes, iou, agnostic, 0);
        const auto got = Nms(r.boxes, r.scores, r.classes, iou, agnostic, 0);
        EXPECT_EQ(got, expected);
      }
    }
  }
}

TEST(NmsTest, ClassAwareKeepsMoreThanAgnostic) {
  const RandomBoxes r = MakeRandomBoxes(400, 5, 42);
  const auto aware = Nms(r.boxes, r.scores, r.classes, 0.5f, false, 0);
  const auto agnostic = Nms(r.boxes, r.scores, r.classes, 0.5f, true, 0);
  EXPECT_GT(aware.size(), agnostic.size());
  // Within one class, class-aware NMS is plain NMS on that class alone.
  for (int c = 0; c < 5; ++c) {
    RandomBoxes one;
    std::vector<int> original;
    for (size_t i = 0; i < r.boxes.size(); ++i) {
      if (r.classes[i] != c) continue;
      one.boxes.push_back(r.boxes[i]);
      one.scores.push_back(r.scores[i]);
      original.push_back(static_cast<int>(i));
    }
    std::vector<int> expected;
    for (int k : Nms(one.boxes, one.scores, {}, 0.5f, true, 0)) expected.push_back(original[k]);
    std::vector<int> got;
    for (int k : aware) {
      if (r.classes[k] == c) got.push_back(k);
    }
    EXPECT_EQ(got, expected) << "class " << c;
  }
}

TEST(NmsTest, OverlappingBoxesOfDifferentClasses) {
  const std::vector<BoxXYXY> boxes = {{0, 0, 100, 100}, {2, 2, 102, 102}};
  const std::vector<float> scores = {0.9f, 0.8f};
  const std::vector<int> classes = {0, 1};
  EXPECT_EQ(Nms(boxes, scores, classes, 0.5f, false, 300), (std::vector<int>{0, 1}));
  EXPECT_EQ(Nms(boxes, scores, classes, 0.5f, true, 300), (std::vector<int>{0}));
  // Same class: suppressed regardless of agnostic.
  EXPECT_EQ(Nms(boxes, scores, std::vector<int>{3, 3}, 0.5f, false, 300), (std::vector<int>{0}));
}

TEST(NmsTest, ThresholdIsStrict) {
  // IoU exactly 0.5: {0,0,30,10} vs {10,0,40,10}: inter 200, union 400.
  const std::vector<BoxXYXY> boxes = {{0, 0, 30, 10}, {10, 0, 40, 10}};
  const std::vector<float> scores = {0.9f, 0.8f};
  EXPECT_EQ(Nms(boxes, scores, {}, 0.5f, true, 0).size(), 2u);
  EXPECT_EQ(Nms(boxes, scores, {}, 0.49f, true, 0).size(), 1u);
}

TEST(NmsTest, MaxDetIsAPrefixOfTheFullResult) {
  const RandomBoxes r = MakeRandomBoxes(500, 3, 7);
  const auto full = Nms(r.boxes, r.scores, r.classes, 0.6f, false, 0);
  ASSERT_GT(full.size(), 20u);
  for (int max_det : {1, 5, 20}) {
    const auto limited = Nms(r.boxes, r.scores, r.classes, 0.6f, false, max_det);
    ASSERT_EQ(limited.size(), static_cast<size_t>(max_det));
    EXPECT_TRUE(std::equal(limited.begin(), limited.end(), full.begin()));
    EXPECT_EQ(limited, testing::NaiveNms(r.boxes, r.scores, r.classes, 0.6, false, max_det));
  }
}

TEST(NmsTest, ResultIsSortedByScoreWithStableTies) {
  const std::vector<BoxXYXY> boxes = {{0, 0, 1, 1}, {10, 10, 11, 11}, {20, 20, 21, 21}};
  const std::vector<float> scores = {0.5f, 0.9f, 0.5f};
  EXPECT_EQ(Nms(boxes, scores, {}, 0.5f, true, 0), (std::vector<int>{1, 0, 2}));
  EXPECT_EQ(OrderByScore(scores), (std::vector<int>{1, 0, 2}));
}

}  // namespace
}  // namespace cvdeploy::vision
