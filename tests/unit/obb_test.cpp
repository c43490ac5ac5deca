// SPDX-License-Identifier: Apache-2.0
// Probabilistic IoU, rotated NMS and angle regularization against slow references.
#include "vision/obb.h"

#include <cmath>
#include <numbers>
#include <random>

#include <gtest/gtest.h>

#include "unit/naive_nms.h"

namespace cvdeploy::vision {
namespace {

constexpr double kPi = std::numbers::pi;

// Textbook Bhattacharyya coefficient route, with explicit 2x2 matrices:
// Sigma_i = R diag(w^2/12, h^2/12) R^T, Sigma = (Sigma_1 + Sigma_2) / 2,
// bd = 1/8 d^T Sigma^-1 d + 1/2 ln(det Sigma / sqrt(det Sigma_1 det Sigma_2)).
double NaiveProbIou(const RotatedBox& p, const RotatedBox& q, double shift_p = 0,
                    double shift_q = 0) {
  struct M {
    double xx, xy, yy;
  };
  auto cov = [](const RotatedBox& r) {
    const double c = std::cos(r.angle), s = std::sin(r.angle);
    const double l1 = double{r.w} * r.w / 12, l2 = double{r.h} * r.h / 12;
    // R = [[c, -s], [s, c]]; R diag(l1, l2) R^T.
    return M{c * c * l1 + s * s * l2, c * s * (l1 - l2), s * s * l1 + c * c * l2};
  };
  const M a = cov(p), b = cov(q);
  const M m{(a.xx + b.xx) / 2, (a.xy + b.xy) / 2, (a.yy + b.yy) / 2};
  const double det = m.xx * m.yy - m.xy * m.xy;
  const double dx = (p.cx + shift_p) - (q.cx + shift_q), dy = (p.cy + shift_p) - (q.cy + shift_q);
  // d^T Sigma^-1 d with the adjugate inverse.
  const double maha = (m.yy * dx * dx - 2 * m.xy * dx * dy + m.xx * dy * dy) / det;
  const double det_a = a.xx * a.yy - a.xy * a.xy, det_b = b.xx * b.yy - b.xy * b.xy;
  const double bd = maha / 8 + 0.5 * std::log(det / std::sqrt(det_a * det_b));
  const double eps = 1e-7;
  return 1 - std::sqrt(1 - std::exp(-std::clamp(bd, eps, 100.0)) + eps);
}

RotatedBox RandomBox(std::mt19937& rng) {
  std::uniform_real_distribution<float> pos(100.f, 300.f), size(8.f, 90.f), angle(-3.f, 3.f);
  return {pos(rng), pos(rng), size(rng), size(rng), angle(rng)};
}

TEST(ProbIouTest, IdenticalBoxesAreNearlyOne) {
  const RotatedBox b{50, 60, 40, 20, 0.4f};
  EXPECT_NEAR(ProbIou(b, b), 1.0, 1e-3);
}

TEST(ProbIouTest, DistantBoxesAreNearlyZero) {
  EXPECT_NEAR(ProbIou({0, 0, 10, 10, 0}, {500, 500, 10, 10, 0.3f}), 0.0, 1e-6);
}

TEST(ProbIouTest, SameRectangleInAnotherParameterizationIsOne) {
  // (w, h, a) and (h, w, a + pi/2) describe the same rectangle.
  const RotatedBox a{100, 100, 60, 20, 0.3f};
  const RotatedBox b{100, 100, 20, 60, 0.3f + static_cast<float>(kPi / 2)};
  EXPECT_NEAR(ProbIou(a, b), 1.0, 1e-3);
  // A square is unchanged by a quarter turn.
  EXPECT_NEAR(ProbIou({0, 0, 30, 30, 0}, {0, 0, 30, 30, static_cast<float>(kPi / 2)}), 1.0, 1e-3);
}

TEST(ProbIouTest, SymmetricAndMatchesNaiveReference) {
  std::mt19937 rng(3);
  for (int i = 0; i < 500; ++i) {
    const RotatedBox a = RandomBox(rng), b = RandomBox(rng);
    const float ab = ProbIou(a, b), ba = ProbIou(b, a);
    EXPECT_NEAR(ab, ba, 1e-6);
    EXPECT_NEAR(ab, NaiveProbIou(a, b), 1e-5);
    EXPECT_GE(ab, -1e-6f);  // the eps inside the sqrt can push 1 - hd just below 0
    EXPECT_LE(ab, 1.f);
  }
}

TEST(ProbIouTest, DecreasesWithDistance) {
  const RotatedBox a{0, 0, 40, 20, 0.2f};
  float previous = 2.f;
  for (float d = 0; d < 60; d += 5) {
    const float v = ProbIou(a, {d, 0, 40, 20, 0.2f});
    EXPECT_LT(v, previous);
    previous = v;
  }
}

TEST(NmsRotatedTest, MatchesNaiveReferenceOnRandomBoxes) {
  for (uint32_t seed = 1; seed <= 10; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> score(0.f, 1.f);
    std::uniform_int_distribution<int> cls(0, 2);
    std::vector<RotatedBox> boxes;
    std::vector<float> scores;
    std::vector<int> classes;
    for (int i = 0; i < 200; ++i) {
      boxes.push_back(RandomBox(rng));
      scores.push_back(score(rng));
      classes.push_back(cls(rng));
    }
    for (bool agnostic : {false, true}) {
      for (float iou : {0.3f, 0.7f}) {
        const auto overlap = [&](int a, int b) {
          const double sa = agnostic ? 0 : classes[a] * 7680.0;
          const double sb = agnostic ? 0 : classes[b] * 7680.0;
          return NaiveProbIou(boxes[a], boxes[b], sa, sb);
        };
        const auto expected = testing::NaiveGreedyNms(boxes.size(), scores, overlap, iou, 0);
        EXPECT_EQ(NmsRotated(boxes, scores, classes, iou, agnostic, 0), expected)
            << "seed " << seed << " agnostic " << agnostic << " iou " << iou;
        const auto limited = NmsRotated(boxes, scores, classes, iou, agnostic, 7);
        EXPECT_EQ(limited, std::vector<int>(expected.begin(), expected.begin() + 7));
      }
    }
  }
}

TEST(NmsRotatedTest, SuppressedOnlyByKeptBoxes) {
  // B overlaps A (suppressed); C overlaps B but not A: greedy keeps C.
  const std::vector<RotatedBox> boxes = {{0, 0, 40, 10, 0}, {12, 0, 40, 10, 0}, {24, 0, 40, 10, 0}};
  const std::vector<float> scores = {0.9f, 0.8f, 0.7f};
  ASSERT_GT(ProbIou(boxes[0], boxes[1]), 0.5f);
  ASSERT_GT(ProbIou(boxes[1], boxes[2]), 0.5f);
  ASSERT_LT(ProbIou(boxes[0], boxes[2]), 0.5f);
  EXPECT_EQ(NmsRotated(boxes, scores, {}, 0.5f, true, 0), (std::vector<int>{0, 2}));
}

TEST(NmsRotatedTest, ClassAware) {
  const std::vector<RotatedBox> boxes = {{50, 50, 40, 20, 0.1f}, {51, 50, 40, 20, 0.1f}};
  const std::vector<float> scores = {0.6f, 0.9f};
  const std::vector<int> classes = {0, 1};
  EXPECT_EQ(NmsRotated(boxes, scores, classes, 0.5f, false, 0), (std::vector<int>{1, 0}));
  EXPECT_EQ(NmsRotated(boxes, scores, classes, 0.5f, true, 0), (std::vector<int>{1}));
}

// Same rectangle: the corner sets coincide (in any order).
void ExpectSameRectangle(const RotatedBox& a, const RotatedBox& b) {
  const auto ca = RotatedCorners(a), cb = RotatedCorners(b);
  for (const auto& p : ca) {
    double best = 1e9;
    for (const auto& q : cb) best = std::min<double>(best, std::hypot(p.x - q.x, p.y - q.y));
    EXPECT_LT(best, 1e-3) << "corner " << p.x << "," << p.y;
  }
}

TEST(RegularizeTest, CanonicalRange) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> angle(-10.f, 10.f), size(1.f, 50.f);
  for (int i = 0; i < 200; ++i) {
    const RotatedBox in{10, 20, size(rng), size(rng), angle(rng)};
    const RotatedBox out = RegularizeRotatedBox(in);
    EXPECT_GE(out.angle, 0.f);
    EXPECT_LT(out.angle, static_cast<float>(kPi / 2) + 1e-6f);
    EXPECT_EQ(out.cx, in.cx);
    EXPECT_EQ(out.cy, in.cy);
    ExpectSameRectangle(in, out);
  }
}

TEST(RegularizeTest, KnownCases) {
  RotatedBox r = RegularizeRotatedBox({0, 0, 10, 5, 0.3f});
  EXPECT_FLOAT_EQ(r.w, 10);
  EXPECT_FLOAT_EQ(r.angle, 0.3f);
  // Angle in [pi/2, pi): sides swap, angle drops by pi/2.
  r = RegularizeRotatedBox({0, 0, 10, 5, 2.0f});
  EXPECT_FLOAT_EQ(r.w, 5);
  EXPECT_FLOAT_EQ(r.h, 10);
  EXPECT_NEAR(r.angle, 2.0 - kPi / 2, 1e-6);
  // Negative angles wrap like Python's %.
  r = RegularizeRotatedBox({0, 0, 10, 5, -0.3f});
  EXPECT_FLOAT_EQ(r.w, 5);
  EXPECT_NEAR(r.angle, kPi / 2 - 0.3, 1e-6);
  r = RegularizeRotatedBox({0, 0, 10, 5, static_cast<float>(kPi)});
  EXPECT_FLOAT_EQ(r.w, 10);
  EXPECT_NEAR(r.angle, 0.0, 1e-6);
}

TEST(CornersTest, AxisAlignedAndQuarterTurn) {
  const auto c = RotatedCorners({50, 40, 20, 10, 0});
  EXPECT_FLOAT_EQ(c[0].x, 60);
  EXPECT_FLOAT_EQ(c[0].y, 45);
  EXPECT_FLOAT_EQ(c[2].x, 40);
  EXPECT_FLOAT_EQ(c[2].y, 35);
  const BoxXYXY b = RotatedBounds({50, 40, 20, 10, static_cast<float>(kPi / 2)});
  EXPECT_NEAR(b.x1, 45, 1e-4);
  EXPECT_NEAR(b.x2, 55, 1e-4);
  EXPECT_NEAR(b.y1, 30, 1e-4);
  EXPECT_NEAR(b.y2, 50, 1e-4);
}

}  // namespace
}  // namespace cvdeploy::vision
