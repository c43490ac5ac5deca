// SPDX-License-Identifier: Apache-2.0
// Greedy per-threshold matching: hand cases and a brute-force reference.
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

TEST(EvalMatching, DuplicateOfAMatchedLabelIsFalsePositive) {
  // One label; two predictions of it with IoU 0.92 and 0.80 (columns are predictions).
  const std::vector<double> iou = {0.92, 0.80};
  const auto tp = MatchGreedy(iou, std::vector<int>{0}, std::vector<int>{0, 0});
  EXPECT_EQ(tp[0], UpTo(8));  // 0.50 .. 0.90 (0.92 < 0.95)
  EXPECT_EQ(tp[1], 0);        // the label is taken at every threshold it could match
}

TEST(EvalMatching, HigherIouWinsEvenForALaterPrediction) {
  // Prediction 0 (higher confidence) overlaps 0.6, prediction 1 overlaps 0.9: greedy by
  // IoU gives the label to prediction 1 everywhere; prediction 0 never matches.
  const std::vector<double> iou = {0.6, 0.9};
  const auto tp = MatchGreedy(iou, std::vector<int>{0}, std::vector<int>{0, 0});
  EXPECT_EQ(tp[0], 0);
  EXPECT_EQ(tp[1], UpTo(8));
}

TEST(EvalMatching, WrongClassNeverMatches) {
  const std::vector<double> iou = {1.0};
  const auto tp = MatchGreedy(iou, std::vector<int>{0}, std::vector<int>{1});
  EXPECT_EQ(tp[0], 0);
}

TEST(EvalMatching, SecondChoiceLabelIsUsedWhenTheBestIsTaken) {
  // labels x predictions:      p0    p1
  //                      l0  [0.90, 0.85]
  //                      l1  [0.00, 0.70]
  // Greedy: (l0,p0) 0.90, (l0,p1) blocked, (l1,p1) 0.70 -> both predictions are TPs at
  // 0.50..0.70. Above 0.70 only p0 remains a TP (up to 0.90).
  const std::vector<double> iou = {0.90, 0.85, 0.00, 0.70};
  const auto tp = MatchGreedy(iou, std::vector<int>{0, 0}, std::vector<int>{0, 0});
  EXPECT_EQ(tp[0], UpTo(8));
  EXPECT_EQ(tp[1], UpTo(4));  // 0.50, 0.55, 0.60, 0.65, 0.70
}

TEST(EvalMatching, ExactThresholdCounts) {
  // IoU >= threshold, so exactly 0.75 is a TP at 0.75 and not at 0.80.
  const std::vector<double> iou = {0.75};
  EXPECT_EQ(MatchGreedy(iou, std::vector<int>{2}, std::vector<int>{2})[0], UpTo(5));
  const std::vector<double> perfect = {1.0};
  EXPECT_EQ(MatchGreedy(perfect, std::vector<int>{2}, std::vector<int>{2})[0], kAll);
}

TEST(EvalMatching, EmptyInputs) {
  EXPECT_TRUE(MatchGreedy({}, std::vector<int>{}, std::vector<int>{}).empty());
  const auto tp = MatchGreedy({}, std::vector<int>{}, std::vector<int>{0, 1});
  EXPECT_EQ(tp, (std::vector<uint16_t>{0, 0}));
}

// Brute force: at each threshold repeatedly pick the best free same-class pair.
std::vector<uint16_t> NaiveMatch(const std::vector<double>& iou, const std::vector<int>& lc,
                                 const std::vector<int>& pc) {
  const size_t nl = lc.size(), np = pc.size();
  std::vector<uint16_t> tp(np, 0);
  for (int t = 0; t < kNumThresholds; ++t) {
    std::vector<bool> lu(nl, false), pu(np, false);
    while (true) {
      double best = -1;
      size_t bl = 0, bp = 0;
      for (size_t p = 0; p < np; ++p) {
        for (size_t l = 0; l < nl; ++l) {
          const double s = iou[l * np + p];
          if (!lu[l] && !pu[p] && lc[l] == pc[p] && s >= kThresholds[t] && s > best) {
            best = s;
            bl = l;
            bp = p;
          }
        }
      }
      if (best < 0) break;
      lu[bl] = pu[bp] = true;
      tp[bp] |= static_cast<uint16_t>(1u << t);
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
    ASSERT_EQ(MatchGreedy(iou, lc, pc), NaiveMatch(iou, lc, pc)) << trial;
  }
}

}  // namespace
}  // namespace cvdeploy::eval
