// SPDX-License-Identifier: Apache-2.0
// AP math against hand-computed values and against naive loop references on random data.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "eval/average_precision.h"

namespace cvdeploy::eval {
namespace {

TEST(EvalInterp, FollowsNumpySemantics) {
  const std::vector<double> xp = {0.0, 0.5, 0.5, 1.0};
  const std::vector<double> fp = {1.0, 1.0, 0.5, 0.0};
  EXPECT_DOUBLE_EQ(Interp(0.25, xp, fp, -1, -2), 1.0);
  // Repeated xp: numpy uses the last of the equal values, both at and right of it.
  EXPECT_DOUBLE_EQ(Interp(0.5, xp, fp, -1, -2), 0.5);
  EXPECT_DOUBLE_EQ(Interp(0.75, xp, fp, -1, -2), 0.25);
  EXPECT_DOUBLE_EQ(Interp(1.0, xp, fp, -1, -2), 0.0);  // at the end: fp.back(), not right
  EXPECT_DOUBLE_EQ(Interp(-0.1, xp, fp, -1, -2), -1.0);
  EXPECT_DOUBLE_EQ(Interp(1.1, xp, fp, -1, -2), -2.0);
  const std::vector<double> one = {0.3}, value = {7.0};
  EXPECT_DOUBLE_EQ(Interp(0.3, one, value, 0, 1), 7.0);
  EXPECT_DOUBLE_EQ(Interp(0.2, one, value, 0, 1), 0.0);
}

TEST(EvalComputeAp, PerfectCurveIs0995) {
  // mrec = [0, 1, 1], envelope [1, 1, 0]: the curve is 1 on [0, 1) and 0 at x = 1 (the
  // appended sentinel), so the last trapezoid is (1 + 0) / 2 * 0.01:
  // AP = 0.99 + 0.005 = 0.995. Ultralytics reports 0.995 for perfect predictions too.
  EXPECT_NEAR(ComputeAp(std::vector<double>{1.0}, std::vector<double>{1.0}), 0.995, 1e-12);
}

TEST(EvalComputeAp, HalfRecallAtFullPrecision) {
  // mrec = [0, 0.5, 1], envelope [1, 1, 0]: 1 on [0, 0.5], then the straight line
  // 2 (1 - x) down to 0 at x = 1. Trapezoids are exact on both pieces: 0.5 + 0.25 = 0.75
  // (not 0.5: np.interp joins (0.5, 1) to the sentinel (1, 0) linearly).
  EXPECT_NEAR(ComputeAp(std::vector<double>{0.5}, std::vector<double>{1.0}), 0.75, 1e-12);
}

TEST(EvalComputeAp, TruePositiveThenFalsePositive) {
  // recall [0.5, 0.5], precision [1, 0.5]: mrec [0, .5, .5, 1], envelope [1, 1, .5, 0].
  // y = 1 on [0, 0.49]; y(0.5) = 0.5 (last repeated xp); then 1 - x down to 0 at x = 1.
  // AP = 0.49 + (1 + 0.5) / 2 * 0.01 + 0.5 * 0.5 / 2 = 0.49 + 0.0075 + 0.125 = 0.6225.
  EXPECT_NEAR(ComputeAp(std::vector<double>{0.5, 0.5}, std::vector<double>{1.0, 0.5}), 0.6225,
              1e-12);
}

TEST(EvalComputeAp, FalsePositiveThenTruePositive) {
  // recall [0, 1], precision [0, 0.5]: mrec [0, 0, 1, 1], envelope [1, .5, .5, 0]; y(0)
  // already takes the repeated 0 -> 0.5. AP = 0.99 * 0.5 + (0.5 + 0) / 2 * 0.01 = 0.4975.
  EXPECT_NEAR(ComputeAp(std::vector<double>{0.0, 1.0}, std::vector<double>{0.0, 0.5}), 0.4975,
              1e-12);
}

TEST(EvalComputeAp, NoTruePositivesIsZero) {
  EXPECT_NEAR(ComputeAp(std::vector<double>{0.0, 0.0}, std::vector<double>{0.0, 0.0}), 0.0, 1e-15);
}

TEST(EvalSmooth, BoxFilterOf101OnThousandPoints) {
  // round(1000 * 0.1 * 2) // 2 + 1 = 101 taps, 50 of edge padding each side.
  std::vector<double> y(1000, 0.0);
  y[500] = 1.0;
  const std::vector<double> s = Smooth(y, 0.1);
  ASSERT_EQ(s.size(), 1000u);
  EXPECT_NEAR(s[500], 1.0 / 101, 1e-15);
  EXPECT_NEAR(s[450], 1.0 / 101, 1e-15);
  EXPECT_NEAR(s[550], 1.0 / 101, 1e-15);
  EXPECT_EQ(s[449], 0.0);
  EXPECT_EQ(s[551], 0.0);
  // Edge padding repeats y[0]: a step at the very start keeps its value there.
  std::vector<double> edge(1000, 0.0);
  edge[0] = 1.0;
  EXPECT_NEAR(Smooth(edge, 0.1)[0], 51.0 / 101, 1e-15);
}

// ---- naive references ---------------------------------------------------------------

// compute_ap written as plainly as possible: O(n^2) envelope, linear-scan interpolation.
double NaiveAp(const std::vector<double>& recall, const std::vector<double>& precision) {
  std::vector<double> mrec = {0.0}, mpre = {1.0};
  for (size_t i = 0; i < recall.size(); ++i) {
    mrec.push_back(recall[i]);
    mpre.push_back(precision[i]);
  }
  mrec.push_back(1.0);
  mpre.push_back(0.0);
  std::vector<double> env(mpre.size());
  for (size_t i = 0; i < mpre.size(); ++i) {
    env[i] = 0;
    for (size_t j = i; j < mpre.size(); ++j) env[i] = std::max(env[i], mpre[j]);
  }
  auto curve = [&](double x) {
    size_t j = 0;  // last index with mrec[j] <= x
    for (size_t k = 0; k < mrec.size(); ++k) {
      if (mrec[k] <= x) j = k;
    }
    if (j + 1 == mrec.size() || mrec[j] == x) return env[j];
    return env[j] + (env[j + 1] - env[j]) * (x - mrec[j]) / (mrec[j + 1] - mrec[j]);
  };
  double ap = 0;
  for (int i = 0; i < 100; ++i) {
    const double x0 = i * 0.01, x1 = i + 1 == 100 ? 1.0 : (i + 1) * 0.01;
    ap += (x1 - x0) * (curve(x0) + curve(x1)) / 2;
  }
  return ap;
}

TEST(EvalComputeAp, MatchesNaiveReferenceOnRandomCurves) {
  std::mt19937 rng(42);
  for (int trial = 0; trial < 300; ++trial) {
    const int n = 1 + static_cast<int>(rng() % 60);
    const int labels = 1 + static_cast<int>(rng() % 30);
    std::vector<double> recall, precision;
    int tp = 0;
    for (int i = 0; i < n; ++i) {
      if (tp < labels && rng() % 2) ++tp;
      recall.push_back(static_cast<double>(tp) / labels);
      precision.push_back(static_cast<double>(tp) / (i + 1));
    }
    ASSERT_NEAR(ComputeAp(recall, precision), NaiveAp(recall, precision), 1e-12) << trial;
  }
}

// ap_per_class with loops: per class, sort by confidence (stable), cumulate, integrate;
// P/R on the 1000-point confidence grid by linear scans, smoothed mean F1, argmax.
Metrics NaiveMetrics(const std::vector<PredictionRecord>& preds,
                     const std::map<int, LabelCount>& labels) {
  Metrics m;
  const int grid = 1000;
  std::vector<std::vector<double>> pc, rc;
  std::vector<ClassMetrics> out;
  for (const auto& [cls, count] : labels) {
    std::vector<PredictionRecord> mine;
    for (const auto& p : preds) {
      if (p.class_id == cls) mine.push_back(p);
    }
    std::stable_sort(mine.begin(), mine.end(),
                     [](const auto& a, const auto& b) { return a.confidence > b.confidence; });
    ClassMetrics cm;
    cm.class_id = cls;
    std::vector<double> p_curve(grid, 0.0), r_curve(grid, 0.0);
    if (!mine.empty()) {
      double sum = 0;
      for (int t = 0; t < kNumThresholds; ++t) {
        std::vector<double> recall, precision;
        int tp = 0;
        for (size_t i = 0; i < mine.size(); ++i) {
          tp += (mine[i].tp >> t) & 1;
          recall.push_back(static_cast<double>(tp) / count.instances);
          precision.push_back(static_cast<double>(tp) / (i + 1));
        }
        const double ap = NaiveAp(recall, precision);
        sum += ap;
        if (t == 0) cm.map50 = ap;
        if (t != 0) continue;
        for (int g = 0; g < grid; ++g) {
          const double px = g == grid - 1 ? 1.0 : g * (1.0 / (grid - 1));
          // np.interp(-px, -conf, y, left): conf is descending.
          auto at = [&](const std::vector<double>& y, double left) {
            if (px > mine.front().confidence) return left;
            size_t j = 0;
            for (size_t k = 0; k < mine.size(); ++k) {
              if (-static_cast<double>(mine[k].confidence) <= -px) j = k;
            }
            if (j + 1 == mine.size() || -static_cast<double>(mine[j].confidence) == -px) {
              return y[j];
            }
            const double x0 = -static_cast<double>(mine[j].confidence);
            const double x1 = -static_cast<double>(mine[j + 1].confidence);
            return y[j] + (y[j + 1] - y[j]) * (-px - x0) / (x1 - x0);
          };
          r_curve[g] = at(recall, 0.0);
          p_curve[g] = at(precision, 1.0);
        }
      }
      cm.map50_95 = sum / kNumThresholds;
    }
    pc.push_back(p_curve);
    rc.push_back(r_curve);
    out.push_back(cm);
  }
  std::vector<double> f1(grid, 0.0);
  for (int g = 0; g < grid; ++g) {
    for (size_t c = 0; c < pc.size(); ++c) {
      f1[g] += 2 * pc[c][g] * rc[c][g] / (pc[c][g] + rc[c][g] + 1e-16) / pc.size();
    }
  }
  std::vector<double> smooth(grid, 0.0);
  for (int g = 0; g < grid; ++g) {
    for (int k = g - 50; k <= g + 50; ++k) smooth[g] += f1[std::clamp(k, 0, grid - 1)] / 101;
  }
  int best = 0;
  for (int g = 1; g < grid; ++g) {
    if (smooth[g] > smooth[best] + 1e-12) best = g;
  }
  for (size_t c = 0; c < out.size(); ++c) {
    out[c].precision = pc[c][best];
    out[c].recall = rc[c][best];
    m.map50 += out[c].map50 / out.size();
    m.map50_95 += out[c].map50_95 / out.size();
  }
  m.per_class = out;
  return m;
}

TEST(EvalComputeMetrics, MatchesNaiveReferenceOnRandomPredictions) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    std::map<int, LabelCount> labels;
    const int classes = 1 + static_cast<int>(rng() % 5);
    for (int c = 0; c < classes; ++c) {
      if (rng() % 4 == 0) continue;  // some ids absent from the labels
      labels[c] = {1 + static_cast<int>(rng() % 20), 1};
    }
    std::vector<PredictionRecord> preds;
    const int n = static_cast<int>(rng() % 200);
    for (int i = 0; i < n; ++i) {
      PredictionRecord p;
      // Few distinct confidences so ties (and the stable order) are exercised.
      p.confidence = static_cast<float>(rng() % 50) / 50.0f;
      p.class_id = static_cast<int>(rng() % (classes + 1));
      // A TP at a strict threshold is a TP at every looser one.
      const int matched_up_to = static_cast<int>(rng() % (kNumThresholds + 1)) - 1;
      for (int t = 0; t <= matched_up_to; ++t) p.tp |= static_cast<uint16_t>(1u << t);
      preds.push_back(p);
    }
    // A class cannot have more true positives than instances: demote the excess.
    std::map<int, int> tps;
    for (PredictionRecord& p : preds) {
      const auto it = labels.find(p.class_id);
      if ((p.tp & 1) && (it == labels.end() || ++tps[p.class_id] > it->second.instances)) {
        p.tp = 0;
      }
    }
    const Metrics fast = ComputeMetrics(preds, labels, {});
    const Metrics slow = NaiveMetrics(preds, labels);
    ASSERT_EQ(fast.per_class.size(), slow.per_class.size());
    EXPECT_NEAR(fast.map50, slow.map50, 1e-9) << trial;
    EXPECT_NEAR(fast.map50_95, slow.map50_95, 1e-9) << trial;
    for (size_t c = 0; c < fast.per_class.size(); ++c) {
      EXPECT_EQ(fast.per_class[c].class_id, slow.per_class[c].class_id);
      EXPECT_NEAR(fast.per_class[c].map50, slow.per_class[c].map50, 1e-9) << trial;
      EXPECT_NEAR(fast.per_class[c].map50_95, slow.per_class[c].map50_95, 1e-9) << trial;
      EXPECT_NEAR(fast.per_class[c].precision, slow.per_class[c].precision, 1e-9) << trial;
      EXPECT_NEAR(fast.per_class[c].recall, slow.per_class[c].recall, 1e-9) << trial;
    }
  }
}

TEST(EvalComputeMetrics, NamesAndCountsCarriedThrough) {
  std::map<int, LabelCount> labels = {{0, {3, 2}}, {5, {1, 1}}};
  const Metrics m = ComputeMetrics({}, labels, {"person", "bicycle"});
  ASSERT_EQ(m.per_class.size(), 2u);
  EXPECT_EQ(m.per_class[0].name, "person");
  EXPECT_EQ(m.per_class[0].instances, 3);
  EXPECT_EQ(m.per_class[0].images, 2);
  EXPECT_EQ(m.per_class[1].name, "5");  // beyond the names list: its id
  EXPECT_EQ(m.map50, 0.0);
  EXPECT_EQ(m.precision, 0.0);
}

}  // namespace
}  // namespace cvdeploy::eval
