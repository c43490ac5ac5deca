// SPDX-License-Identifier: Apache-2.0
// COCO-style per-threshold matching: hand cases and a brute-force reference.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "eval/average_precision.h"
#include "eval/matching.h"

namespace cvdeploy::eval {
namespace {

constexpr uint16_t kAll = (1u << kNumThresholds) - 1;

// Bits for thresholds 0.50 .. kThresholds[last].
uint16_t UpTo(int last) { return static_cast<uint16_t>((1u << (last + 1)) - 1); }

// Confidences n-1, n-2, ..., 0: input order is confidence order.
std::vector<float> Descending(size_t n) {
  std::vector<float> c(n);
  for (size_t i = 0; i < n; ++i) c[i] = static_cast<float>(n - i);
  return c;
}

TEST(EvalMatching, DuplicateOfAMatchedLabelIsFalsePositive) {
  // One label; two predictions of it with IoU 0.92 and 0.80 (columns are predictions).
  const std::vector<double> iou = {0.92, 0.80};
  const auto tp = MatchCocoStyle(iou, std::vector<int>{0}, std::vector<int>{0, 0}, Descending(2));
  EXPECT_EQ(tp[0], UpTo(8));  // 0.50 .. 0.90 (0.92 < 0.95)
  EXPECT_EQ(tp[1], 0);        // the label is taken at every threshold it could match
}

TEST(EvalMatching, HigherConfidenceWinsOverHigherIou) {
  // Prediction 0 (confidence 0.9) overlaps 0.6, prediction 1 (confidence 0.1) overlaps 0.9.
  // COCO visits prediction 0 first: it takes the label at 0.50..0.60; above 0.60 it cannot,
  // so prediction 1 takes the label at 0.65..0.90.
  const std::vector<double> iou = {0.6, 0.9};
  const auto tp = MatchCocoStyle(iou, std::vector<int>{0}, std::vector<int>{0, 0},
                                 std::vector<float>{0.9f, 0.1f});
  EXPECT_EQ(tp[0], UpTo(2));
  EXPECT_EQ(tp[1], UpTo(8) & ~UpTo(2));
}

TEST(EvalMatching, ConfidenceOrderNotInputOrder) {
  // Same as above with the columns swapped: the input order must not matter.
  const std::vector<double> iou = {0.9, 0.6};
  const auto tp = MatchCocoStyle(iou, std::vector<int>{0}, std::vector<int>{0, 0},
                                 std::vector<float>{0.1f, 0.9f});
  EXPECT_EQ(tp[1], UpTo(2));
  EXPECT_EQ(tp[0], UpTo(8) & ~UpTo(2));
}

TEST(EvalMatching, WrongClassNeverMatches) {
  const std::vector<double> iou = {1.0};
  const auto tp = MatchCocoStyle(iou, std::vector<int>{0}, std::vector<int>{1}, Descending(1));
  EXPECT_EQ(tp[0], 0);
}

TEST(EvalMatching, SecondChoiceLabelIsUsedWhenTheBestIsTaken) {
  // labels x predictions:      p0    p1
  //                      l0  [0.90, 0.85]
  //                      l1  [0.00, 0.70]
  // p0 first takes l0 (0.90); p1 finds l0 taken and takes l1 (0.70) -> both are TPs at
  // 0.50..0.70. Above 0.70 only p0 remains a TP (up to 0.90).
  const std::vector<double> iou = {0.90, 0.85, 0.00, 0.70};
  const auto tp =
      MatchCocoStyle(iou, std::vector<int>{0, 0}, std::vector<int>{0, 0}, Descending(2));
  EXPECT_EQ(tp[0], UpTo(8));
  EXPECT_EQ(tp[1], UpTo(4));  // 0.50, 0.55, 0.60, 0.65, 0.70
}

TEST(EvalMatching, ExactThresholdCounts) {
  // IoU >= threshold, so exactly 0.75 is a TP at 0.75 and not at 0.80.
  const std::vector<double> iou = {0.75};
  EXPECT_EQ(MatchCocoStyle(iou, std::vector<int>{2}, std::vector<int>{2}, Descending(1))[0],
            UpTo(5));
  const std::vector<double> perfect = {1.0};
  EXPECT_EQ(MatchCocoStyle(perfect, std::vector<int>{2}, std::vector<int>{2}, Descending(1))[0],
            kAll);
}

TEST(EvalMatching, EmptyInputs) {
  EXPECT_TRUE(MatchCocoStyle({}, std::vector<int>{}, std::vector<int>{}, Descending(0)).empty());
  const auto tp = MatchCocoStyle({}, std::vector<int>{}, std::vector<int>{0, 1}, Descending(2));
  EXPECT_EQ(tp, (std::vector<uint16_t>{0, 0}));
}

// Brute force: at each threshold, repeatedly take the most confident unvisited prediction
// and give it the best free same-class label (a different formulation of the same rule).
std::vector<uint16_t> NaiveMatch(const std::vector<double>& iou, const std::vector<int>& lc,
                                 const std::vector<int>& pc, const std::vector<float>& conf) {
  const size_t nl = lc.size(), np = pc.size();
  std::vector<uint16_t> tp(np, 0);
  for (int t = 0; t < kNumThresholds; ++t) {
    std::vector<bool> lu(nl, false), visited(np, false);
    for (size_t step = 0; step < np; ++step) {
      size_t p = np;
      for (size_t q = 0; q < np; ++q) {
        if (!visited[q] && (p == np || conf[q] > conf[p])) p = q;
      }
      visited[p] = true;
      double best = -1;
      size_t bl = nl;
      for (size_t l = 0; l < nl; ++l) {
        const double s = iou[l * np + p];
        if (!lu[l] && lc[l] == pc[p] && s >= kThresholds[t] && s > best) {
          best = s;
          bl = l;
        }
      }
      if (bl == nl) continue;
      lu[bl] = true;
      tp[p] |= static_cast<uint16_t>(1u << t);
    }
  }
  return tp;
}

TEST(EvalMatching, MatchesBruteForceOnRandomMatrices) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 500; ++trial) {
    const size_t nl = rng() % 8, np = rng() % 12;
    std::vector<int> lc(nl), pc(np);
    for (auto& c : lc) c = static_cast<int>(rng() % 3);
    for (auto& c : pc) c = static_cast<int>(rng() % 3);
    std::vector<double> iou(nl * np);
    // Distinct values: with ties the two pick different (equally valid) pairs.
    for (auto& v : iou) v = static_cast<double>(rng() % 1000000) / 1000000.0;
    std::vector<float> conf(np);
    for (auto& c : conf) c = static_cast<float>(rng() % 1000000) / 1000000.0f;
    ASSERT_EQ(MatchCocoStyle(iou, lc, pc, conf), NaiveMatch(iou, lc, pc, conf)) << trial;
  }
}

}  // namespace
}  // namespace cvdeploy::eval
