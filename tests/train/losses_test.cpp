// SPDX-License-Identifier: Apache-2.0
// Training losses: distillation behaviour and gradients, IoU/CIoU against hand-computed values,
// the task-aligned assigner against a naive loop reference, and the detection loss ordering.
#include "train/losses.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <vector>

#include "cvdeploy/error.h"

namespace cvdeploy::train {
namespace {

HeadOut RandomHead(int64_t b, int64_t nc, int64_t a, uint64_t seed, double cls_shift = -2.0) {
  torch::manual_seed(seed);
  return {torch::randn({b, nc, a}) * 2 + cls_shift, torch::randn({b, 4, 16, a}) * 2};
}

// Sum of the teacher's Bernoulli entropies / the weight sum: BCE's floor (naive loops).
double TeacherEntropyTerm(const torch::Tensor& logits) {
  torch::Tensor p = torch::sigmoid(logits).contiguous();
  auto acc = p.accessor<float, 3>();
  double entropy = 0, weights = 0;
  for (int64_t b = 0; b < p.size(0); ++b) {
    for (int64_t a = 0; a < p.size(2); ++a) {
      double best = 0;
      for (int64_t c = 0; c < p.size(1); ++c) {
        const double q = acc[b][c][a];
        entropy -= q * std::log(q) + (1 - q) * std::log(1 - q);
        best = std::max(best, q);
      }
      weights += best;
    }
  }
  return entropy / std::max(weights, 1.0);
}

TEST(DistillLoss, ZeroOrEntropyAtTheTeacherAndPositiveElsewhere) {
  HeadOut teacher = RandomHead(2, 5, 30, 1);
  HeadOut same{teacher.cls.clone(), teacher.box.clone()};
  DistillLossOptions kl;
  kl.cls_loss = "kl";
  LossParts at_teacher = DistillLoss(same, teacher, kl);
  EXPECT_NEAR(at_teacher.cls, 0.0, 1e-5);
  EXPECT_NEAR(at_teacher.box, 0.0, 1e-6);
  EXPECT_NEAR(at_teacher.total.item<double>(), 0.0, 1e-5);

  // BCE with soft targets bottoms out at the teacher's own entropy, not at 0.
  LossParts bce = DistillLoss(same, teacher, {});
  const double entropy = TeacherEntropyTerm(teacher.cls);
  EXPECT_GT(entropy, 0.1);
  EXPECT_NEAR(bce.cls, entropy, 1e-4 * entropy);
  EXPECT_NEAR(bce.box, 0.0, 1e-6);

  DistillLossOptions l1;
  l1.box_loss = "l1";
  EXPECT_NEAR(DistillLoss(same, teacher, l1).box, 0.0, 1e-6);
  DistillLossOptions iou;
  iou.box_loss = "iou";
  EXPECT_NEAR(DistillLoss(same, teacher, iou).box, 0.0, 1e-5);

  HeadOut other = RandomHead(2, 5, 30, 2);
  LossParts off_kl = DistillLoss(other, teacher, kl);
  EXPECT_GT(off_kl.cls, 0.05);
  EXPECT_GT(off_kl.box, 0.05);
  EXPECT_GT(DistillLoss(other, teacher, {}).cls, entropy + 0.05);
  EXPECT_GT(DistillLoss(other, teacher, l1).box, 0.05);
  EXPECT_GT(DistillLoss(other, teacher, iou).box, 0.01);
  // KL and BCE differ by the constant entropy only.
  EXPECT_NEAR(DistillLoss(other, teacher, {}).cls - off_kl.cls, entropy, 1e-4 * entropy);
}

TEST(DistillLoss, BackgroundAnchorsBarelyCount) {
  HeadOut teacher = RandomHead(1, 3, 4, 3);
  teacher.cls.index_put_({0, torch::indexing::Slice(), 0}, 8.0);   // confident anchor
  teacher.cls.index_put_({0, torch::indexing::Slice(), 1}, -8.0);  // background anchor
  HeadOut fg{teacher.cls.clone(), teacher.box.clone()};
  HeadOut bg{teacher.cls.clone(), teacher.box.clone()};
  torch::Tensor change = torch::randn({4, 16}) * 3;
  fg.box.index_put_(
      {0, torch::indexing::Slice(), torch::indexing::Slice(), 0},
      teacher.box.index({0, torch::indexing::Slice(), torch::indexing::Slice(), 0}) + change);
  bg.box.index_put_(
      {0, torch::indexing::Slice(), torch::indexing::Slice(), 1},
      teacher.box.index({0, torch::indexing::Slice(), torch::indexing::Slice(), 1}) + change);
  const double fg_loss = DistillLoss(fg, teacher).box;
  const double bg_loss = DistillLoss(bg, teacher).box;
  EXPECT_GT(fg_loss, 100 * bg_loss);
}

void ExpectDescends(const DistillLossOptions& options) {
  HeadOut teacher = RandomHead(2, 4, 24, 5, 0.0);
  HeadOut init = RandomHead(2, 4, 24, 6, 0.0);
  torch::Tensor cls = init.cls.clone().requires_grad_(true);
  torch::Tensor box = init.box.clone().requires_grad_(true);
  // The loss is normalised by the teacher's weight sum (~40 here): a per-element step of a
  // useful size needs a learning rate of that order.
  torch::optim::SGD sgd({cls, box}, torch::optim::SGDOptions(20));
  std::vector<double> losses;
  for (int step = 0; step < 8; ++step) {
    sgd.zero_grad();
    LossParts parts = DistillLoss({cls, box}, teacher, options);
    parts.total.backward();
    ASSERT_TRUE(torch::isfinite(cls.grad()).all().item<bool>());
    ASSERT_TRUE(torch::isfinite(box.grad()).all().item<bool>());
    ASSERT_GT(cls.grad().abs().sum().item<double>(), 0);
    ASSERT_GT(box.grad().abs().sum().item<double>(), 0);
    losses.push_back(parts.total.item<double>());
    sgd.step();
  }
  for (size_t i = 1; i < losses.size(); ++i) EXPECT_LT(losses[i], losses[i - 1]) << "step " << i;
  EXPECT_LT(losses.back(), 0.7 * losses.front());
}

TEST(DistillLoss, DescendsUnderSgdWithFiniteGradients) {
  DistillLossOptions options;
  ExpectDescends(options);
  options.cls_loss = "kl";
  options.box_loss = "l1";
  ExpectDescends(options);
  options.box_loss = "iou";
  ExpectDescends(options);
}

TEST(DistillLoss, IouBoxLossIsOneMinusCiouOfTheDecodedBoxes) {
  // One anchor, one class: the teacher's sides are all 2 bins, the student's 1, 1, 3, 3 (one-hot
  // enough that the expected distances are those bins), so the boxes are (-2, -2, 2, 2) and
  // (-1, -1, 3, 3): IoU 9 / 23, equal aspect, centre distance^2 2, enclosing diagonal^2 50.
  auto one_hot = [](std::vector<int64_t> bins) {
    torch::Tensor box = torch::full({1, 4, 16, 1}, -40.0);
    for (int64_t side = 0; side < 4; ++side) box.index_put_({0, side, bins[side], 0}, 40.0);
    return box;
  };
  torch::Tensor cls = torch::full({1, 1, 1}, 40.0);  // teacher weight 1
  HeadOut teacher{cls, one_hot({2, 2, 2, 2})};
  HeadOut student{cls.clone(), one_hot({1, 1, 3, 3})};
  DistillLossOptions iou;
  iou.box_loss = "iou";
  const double expected = 1.0 - (9.0 / 23.0 - 2.0 / 50.0);
  EXPECT_NEAR(DistillLoss(student, teacher, iou).box, expected, 1e-4);
  // Another aspect ratio adds CIoU's v * alpha term: the student (-1, -1, 3, 1) is 4x2 against
  // the teacher's 4x4: IoU 6 / 18, centre distance^2 1, enclosing diagonal^2 5^2 + 4^2.
  HeadOut flat{cls.clone(), one_hot({1, 1, 3, 1})};
  const double iou_value = 6.0 / 18.0;
  const double v = 4.0 / (std::numbers::pi * std::numbers::pi) *
                   std::pow(std::atan(4.0 / 4.0) - std::atan(4.0 / 2.0), 2);
  const double alpha = v / (v - iou_value + 1.0);
  const double flat_expected = 1.0 - (iou_value - (1.0 / 41.0 + v * alpha));
  EXPECT_GT(v * alpha, 20 * 1e-4);  // the aspect term is well above the tolerance
  EXPECT_NEAR(DistillLoss(flat, teacher, iou).box, flat_expected, 1e-4);
}

TEST(DistillLoss, RefusesMismatchedHeadsAndUnknownLosses) {
  HeadOut a = RandomHead(1, 3, 10, 1), b = RandomHead(1, 3, 12, 1);
  EXPECT_THROW(DistillLoss(a, b), Error);
  DistillLossOptions bad;
  bad.box_loss = "giou";
  try {
    DistillLoss(a, a, bad);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("giou"), std::string::npos);
  }
}

torch::Tensor Box(float x1, float y1, float x2, float y2) {
  return torch::tensor({x1, y1, x2, y2});
}

TEST(BboxIoU, CiouAgainstHandComputedValues) {
  EXPECT_NEAR(BboxIoU(Box(1, 2, 5, 7), Box(1, 2, 5, 7), true).item<double>(), 1.0, 1e-6);
  EXPECT_LT(BboxIoU(Box(0, 0, 1, 1), Box(3, 3, 4, 4), true).item<double>(), 0.0);
  EXPECT_NEAR(BboxIoU(Box(0, 0, 1, 1), Box(3, 3, 4, 4)).item<double>(), 0.0, 1e-9);
  // Same aspect: IoU 1/7; centres (1,1)-(2,2): rho^2 = 2; enclosing 3x3: c^2 = 18; v = 0.
  EXPECT_NEAR(BboxIoU(Box(0, 0, 2, 2), Box(1, 1, 3, 3)).item<double>(), 1.0 / 7, 1e-6);
  EXPECT_NEAR(BboxIoU(Box(0, 0, 2, 2), Box(1, 1, 3, 3), true).item<double>(), 1.0 / 7 - 2.0 / 18,
              1e-6);
  // 4x2 against 2x2 at the origin: IoU 0.5, rho^2 = 1, c^2 = 20,
  // v = 4/pi^2 (atan(1) - atan(2))^2, alpha = v / (v + 0.5).
  const double v =
      4 / (std::numbers::pi * std::numbers::pi) * std::pow(std::atan(1.0) - std::atan(2.0), 2);
  const double expected = 0.5 - (1.0 / 20 + v * v / (v + 0.5));
  EXPECT_NEAR(expected, 0.44675, 1e-4);
  EXPECT_NEAR(BboxIoU(Box(0, 0, 4, 2), Box(0, 0, 2, 2), true).item<double>(), expected, 1e-5);
  // Broadcast: [2, 1, 4] against [1, 3, 4] -> [2, 3, 1].
  torch::Tensor many =
      BboxIoU(torch::stack({Box(0, 0, 2, 2), Box(1, 1, 3, 3)}).unsqueeze(1),
              torch::stack({Box(0, 0, 2, 2), Box(1, 1, 3, 3), Box(5, 5, 6, 6)}).unsqueeze(0));
  EXPECT_EQ(many.sizes(), (std::vector<int64_t>{2, 3, 1}));
  EXPECT_NEAR(many[1][0][0].item<double>(), 1.0 / 7, 1e-6);
}

TEST(BoxHelpers, DistancesRoundTripAndDecode) {
  torch::Tensor anchors = torch::tensor({{2.5f, 3.5f}, {0.5f, 0.5f}});
  torch::Tensor boxes = torch::tensor({{1.f, 1.f, 4.f, 6.f}, {0.f, 0.f, 3.f, 2.f}});
  torch::Tensor dist = Bbox2Dist(anchors, boxes, 15);
  EXPECT_TRUE(
      torch::allclose(dist, torch::tensor({{1.5f, 2.5f, 1.5f, 2.5f}, {0.5f, 0.5f, 2.5f, 1.5f}})));
  EXPECT_TRUE(torch::allclose(Dist2Bbox(dist, anchors), boxes));
  EXPECT_TRUE(torch::allclose(Dist2Bbox(dist, anchors, true),
                              torch::tensor({{2.5f, 3.5f, 3.f, 5.f}, {1.5f, 1.f, 3.f, 2.f}})));
  // Clamped below reg_max - 1 (DFL's last bin pair) and at 0.
  EXPECT_NEAR(Bbox2Dist(torch::tensor({{0.5f, 0.5f}}), torch::tensor({{1.f, 1.f, 40.f, 2.f}}), 15)
                  .max()
                  .item<double>(),
              14.99, 1e-5);
  // A peaked distribution decodes to its bin.
  torch::Tensor logits = torch::full({1, 4, 16, 1}, -30.0);
  for (int side = 0; side < 4; ++side) logits[0][side][side * 3][0] = 30.0;
  EXPECT_TRUE(torch::allclose(DecodeDistances(logits), torch::tensor({{{0.f, 3.f, 6.f, 9.f}}}),
                              1e-4, 1e-4));
}

// ---------------------------------------------------------------------------------------------
// The assigner against straightforward loops.

double NaiveCiou(const float* a, const float* b) {
  const double eps = 1e-7;
  const double w1 = a[2] - a[0], h1 = a[3] - a[1] + eps, w2 = b[2] - b[0], h2 = b[3] - b[1] + eps;
  const double iw = std::max(0.0, double(std::min(a[2], b[2]) - std::max(a[0], b[0])));
  const double ih = std::max(0.0, double(std::min(a[3], b[3]) - std::max(a[1], b[1])));
  const double inter = iw * ih;
  const double iou = inter / (w1 * h1 + w2 * h2 - inter + eps);
  const double cw = std::max(a[2], b[2]) - std::min(a[0], b[0]);
  const double ch = std::max(a[3], b[3]) - std::min(a[1], b[1]);
  const double dx = (b[0] + b[2] - a[0] - a[2]) / 2.0, dy = (b[1] + b[3] - a[1] - a[3]) / 2.0;
  const double v = 4 / (std::numbers::pi * std::numbers::pi) *
                   std::pow(std::atan(w2 / h2) - std::atan(w1 / h1), 2);
  const double alpha = v / (v - iou + 1 + eps);
  return iou - ((dx * dx + dy * dy) / (cw * cw + ch * ch + eps) + v * alpha);
}

struct NaiveAssignment {
  std::vector<bool> fg;
  std::vector<int64_t> gt;
  std::vector<double> score;  // of the assigned class
  int multi = 0;              // anchors in the top k of several gts
  int multi_not_first = 0;    // ... given to another gt than the first claimant
};

// One image: scores [A][nc], boxes [A][4] and anchors [A][2] (pixels), gts [M] (class, box).
NaiveAssignment NaiveAssign(const torch::Tensor& scores, const torch::Tensor& boxes,
                            const torch::Tensor& anchors,
                            const std::vector<std::vector<float>>& gts, int topk) {
  const int64_t na = anchors.size(0);
  const size_t m = gts.size();
  auto sc = scores.accessor<float, 2>();
  auto bx = boxes.accessor<float, 2>();
  auto an = anchors.accessor<float, 2>();
  std::vector<std::vector<double>> metric(m, std::vector<double>(na, 0));
  std::vector<std::vector<double>> overlap = metric;
  std::vector<std::vector<bool>> inside(m, std::vector<bool>(na, false)), pos = inside;
  for (size_t j = 0; j < m; ++j) {
    const float* g = gts[j].data() + 1;
    int positive = 0;
    for (int64_t a = 0; a < na; ++a) {
      const double d =
          std::min({an[a][0] - g[0], an[a][1] - g[1], g[2] - an[a][0], g[3] - an[a][1]});
      if (d <= 1e-9) continue;
      inside[j][a] = true;
      const float pb[4] = {bx[a][0], bx[a][1], bx[a][2], bx[a][3]};
      overlap[j][a] = std::max(0.0, NaiveCiou(g, pb));
      metric[j][a] = std::pow(sc[a][int(gts[j][0])], 0.5) * std::pow(overlap[j][a], 6.0);
      positive += metric[j][a] > 0;
    }
    // The case is built so that ties at 0 never reach the top k.
    EXPECT_GE(positive, topk) << "gt " << j << " has too few positive candidates";
    std::vector<int64_t> order(na);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t x, int64_t y) { return metric[j][x] > metric[j][y]; });
    for (int k = 0; k < topk; ++k) pos[j][order[k]] = inside[j][order[k]];
  }
  NaiveAssignment out{std::vector<bool>(na, false), std::vector<int64_t>(na, 0),
                      std::vector<double>(na, 0)};
  for (int64_t a = 0; a < na; ++a) {
    std::vector<size_t> claims;
    for (size_t j = 0; j < m; ++j) {
      if (pos[j][a]) claims.push_back(j);
    }
    if (claims.empty()) continue;
    size_t chosen = claims[0];
    if (claims.size() > 1) {  // the gt with the highest overlap among all gts
      chosen = 0;
      for (size_t j = 1; j < m; ++j) {
        if (overlap[j][a] > overlap[chosen][a]) chosen = j;
      }
      for (size_t j = 0; j < m; ++j) pos[j][a] = j == chosen;
      ++out.multi;
      out.multi_not_first += chosen != claims[0];
    }
    out.fg[a] = true;
    out.gt[a] = static_cast<int64_t>(chosen);
  }
  for (int64_t a = 0; a < na; ++a) {
    if (!out.fg[a]) continue;
    const size_t j = static_cast<size_t>(out.gt[a]);
    double max_metric = 0, max_overlap = 0;
    for (int64_t b = 0; b < na; ++b) {
      if (!pos[j][b]) continue;
      max_metric = std::max(max_metric, metric[j][b]);
      max_overlap = std::max(max_overlap, overlap[j][b]);
    }
    out.score[a] = metric[j][a] * max_overlap / (max_metric + 1e-9);
  }
  return out;
}

TEST(TaskAlignedAssign, MatchesNaiveLoops) {
  // An 8x8 grid of stride 8 (64x64 pixels), 3 classes, two images: two overlapping gts, then
  // one gt and a padding row.
  const int64_t grid = 8, na = grid * grid, nc = 3;
  torch::Tensor anchors = torch::empty({na, 2});
  for (int64_t y = 0; y < grid; ++y) {
    for (int64_t x = 0; x < grid; ++x) {
      anchors[y * grid + x][0] = (x + 0.5f) * 8;
      anchors[y * grid + x][1] = (y + 0.5f) * 8;
    }
  }
  torch::manual_seed(11);
  torch::Tensor scores = torch::rand({2, na, nc}) * 0.9 + 0.05;
  // Predicted boxes around each anchor, 28..44 px: they overlap the gts their centre is in.
  torch::Tensor half = (torch::rand({2, na, 2}) * 16 + 28) / 2;
  torch::Tensor shift = (torch::rand({2, na, 2}) - 0.5) * 4;
  torch::Tensor centre = anchors.unsqueeze(0) + shift;
  torch::Tensor boxes = torch::cat({centre - half, centre + half}, -1);
  std::vector<std::vector<std::vector<float>>> gts = {
      {{1, 4, 4, 44, 40}, {2, 10, 8, 50, 46}},  // overlapping: shared top-k anchors
      {{0, 10, 30, 50, 60}},
  };
  torch::Tensor gt_labels = torch::zeros({2, 2, 1}), gt_boxes = torch::zeros({2, 2, 4});
  torch::Tensor mask = torch::zeros({2, 2, 1});
  for (int64_t b = 0; b < 2; ++b) {
    for (size_t j = 0; j < gts[b].size(); ++j) {
      gt_labels[b][j][0] = gts[b][j][0];
      for (int c = 0; c < 4; ++c) gt_boxes[b][j][c] = gts[b][j][c + 1];
      mask[b][j][0] = 1;
    }
  }
  Assignment got = TaskAlignedAssign(scores, boxes, anchors, gt_labels, gt_boxes, mask);
  ASSERT_EQ(got.scores.sizes(), (std::vector<int64_t>{2, na, nc}));
  int multi = 0, multi_not_first = 0;
  for (int64_t b = 0; b < 2; ++b) {
    NaiveAssignment want = NaiveAssign(scores[b], boxes[b], anchors, gts[b], 10);
    multi += want.multi;
    multi_not_first += want.multi_not_first;
    for (int64_t a = 0; a < na; ++a) {
      SCOPED_TRACE("image " + std::to_string(b) + " anchor " + std::to_string(a));
      ASSERT_EQ(got.fg_mask[b][a].item<bool>(), want.fg[a]);
      if (!want.fg[a]) {
        EXPECT_EQ(got.scores[b][a].abs().sum().item<double>(), 0.0);
        continue;
      }
      const int64_t j = want.gt[a];
      EXPECT_EQ(got.gt_idx[b][a].item<int64_t>(), j);
      const int64_t cls = static_cast<int64_t>(gts[b][j][0]);
      EXPECT_EQ(got.labels[b][a].item<int64_t>(), cls);
      for (int c = 0; c < 4; ++c) EXPECT_EQ(got.bboxes[b][a][c].item<float>(), gts[b][j][c + 1]);
      for (int64_t c = 0; c < nc; ++c) {
        const double expected = c == cls ? want.score[a] : 0.0;
        EXPECT_NEAR(got.scores[b][a][c].item<double>(), expected, 1e-5 + 1e-4 * expected);
      }
    }
  }
  // The case exercises the highest-overlap rule, both ways.
  EXPECT_GT(multi, 0);
  EXPECT_GT(multi_not_first, 0);
  EXPECT_GT(got.fg_mask.sum().item<int64_t>(), 20);
}

// ---------------------------------------------------------------------------------------------
// Detection loss.

// Anchors of a 64x64 input at strides 8 and 16 (80 anchors), grid units, as MakeAnchors.
void MakeTestAnchors(torch::Tensor& anchors, torch::Tensor& strides) {
  std::vector<float> points, values;
  for (int stride : {8, 16}) {
    const int n = 64 / stride;
    for (int y = 0; y < n; ++y) {
      for (int x = 0; x < n; ++x) {
        points.insert(points.end(), {x + 0.5f, y + 0.5f});
        values.push_back(static_cast<float>(stride));
      }
    }
  }
  anchors = torch::tensor(points).view({-1, 2});
  strides = torch::tensor(values);
}

// A head that predicts each target at the anchors inside it (class logit +8, DFL bins set to the
// exact distances) and background elsewhere.
HeadOut MatchingHead(const torch::Tensor& targets, const torch::Tensor& anchors,
                     const torch::Tensor& strides, int64_t batch, int64_t nc) {
  const int64_t na = anchors.size(0);
  torch::Tensor cls = torch::full({batch, nc, na}, -8.0);
  torch::Tensor box = torch::full({batch, 4, 16, na}, -20.0);
  for (int64_t r = 0; r < targets.size(0); ++r) {
    const auto b = targets[r][0].item<int64_t>(), c = targets[r][1].item<int64_t>();
    for (int64_t a = 0; a < na; ++a) {
      const float s = strides[a].item<float>();
      const float ax = anchors[a][0].item<float>() * s, ay = anchors[a][1].item<float>() * s;
      const float x1 = targets[r][2].item<float>(), y1 = targets[r][3].item<float>();
      const float x2 = targets[r][4].item<float>(), y2 = targets[r][5].item<float>();
      if (ax <= x1 || ax >= x2 || ay <= y1 || ay >= y2) continue;
      cls[b][c][a] = 8.0;
      const float d[4] = {(ax - x1) / s, (ay - y1) / s, (x2 - ax) / s, (y2 - ay) / s};
      for (int side = 0; side < 4; ++side) {
        const float t = std::min(d[side], 14.99f);
        const int lo = static_cast<int>(t);
        box[b][side][lo][a] = std::log(lo + 1 - t + 1e-6f);
        box[b][side][lo + 1][a] = std::log(t - lo + 1e-6f);
      }
    }
  }
  return {cls, box};
}

TEST(DetectionLoss, LowerForAMatchingPredictionThanForARandomOne) {
  torch::Tensor anchors, strides;
  MakeTestAnchors(anchors, strides);
  torch::Tensor targets = torch::tensor({{0.f, 1.f, 4.f, 6.f, 30.f, 40.f},
                                         {0.f, 3.f, 34.f, 20.f, 60.f, 58.f},
                                         {1.f, 0.f, 10.f, 12.f, 50.f, 44.f}});
  HeadOut matching = MatchingHead(targets, anchors, strides, 2, 4);
  torch::manual_seed(3);
  HeadOut random{torch::randn({2, 4, 80}).requires_grad_(true),
                 torch::randn({2, 4, 16, 80}).requires_grad_(true)};
  LossParts good = DetectionLoss(matching, anchors, strides, targets, 2);
  LossParts bad = DetectionLoss(random, anchors, strides, targets, 2);
  EXPECT_GT(bad.box, 0.1);
  EXPECT_GT(bad.cls, 0.1);
  EXPECT_GT(bad.dfl, 0.1);
  EXPECT_LT(good.box, 0.2 * bad.box);
  EXPECT_LT(good.cls, 0.5 * bad.cls);
  EXPECT_LT(good.dfl, 0.5 * bad.dfl);
  EXPECT_LT(good.total.item<double>(), 0.3 * bad.total.item<double>());
  // total = gained parts * batch size.
  EXPECT_NEAR(bad.total.item<double>(), 2 * (bad.box + bad.cls + bad.dfl),
              1e-4 * bad.total.item<double>());
  bad.total.backward();
  EXPECT_TRUE(torch::isfinite(random.cls.grad()).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(random.box.grad()).all().item<bool>());
  EXPECT_GT(random.box.grad().abs().sum().item<double>(), 0);
}

TEST(DetectionLoss, DescendsUnderSgd) {
  torch::Tensor anchors, strides;
  MakeTestAnchors(anchors, strides);
  torch::Tensor targets =
      torch::tensor({{0.f, 1.f, 4.f, 6.f, 30.f, 40.f}, {1.f, 0.f, 10.f, 12.f, 50.f, 44.f}});
  torch::manual_seed(8);
  torch::Tensor cls = torch::randn({2, 4, 80}).requires_grad_(true);
  torch::Tensor box = torch::randn({2, 4, 16, 80}).requires_grad_(true);
  torch::optim::SGD sgd({cls, box}, torch::optim::SGDOptions(0.5));
  std::vector<double> losses;
  for (int step = 0; step < 15; ++step) {
    sgd.zero_grad();
    LossParts parts = DetectionLoss({cls, box}, anchors, strides, targets, 2);
    parts.total.backward();
    ASSERT_TRUE(torch::isfinite(cls.grad()).all().item<bool>());
    ASSERT_TRUE(torch::isfinite(box.grad()).all().item<bool>());
    losses.push_back(parts.total.item<double>());
    sgd.step();
  }
  // The assignment changes with the prediction, so single steps may go up; the trend may not.
  EXPECT_LT(losses.back(), 0.7 * losses.front());
}

TEST(DetectionLoss, BackgroundOnlyBatchesAndBadTargets) {
  torch::Tensor anchors, strides;
  MakeTestAnchors(anchors, strides);
  torch::manual_seed(4);
  HeadOut pred{torch::randn({2, 4, 80}).requires_grad_(true),
               torch::randn({2, 4, 16, 80}).requires_grad_(true)};
  LossParts empty = DetectionLoss(pred, anchors, strides, torch::zeros({0, 6}), 2);
  EXPECT_EQ(empty.box, 0.0);
  EXPECT_EQ(empty.dfl, 0.0);
  EXPECT_GT(empty.cls, 0.0);
  empty.total.backward();
  // Every class logit is pushed down when nothing is there.
  EXPECT_TRUE((pred.cls.grad() > 0).all().item<bool>());
  try {
    DetectionLoss(pred, anchors, strides, torch::tensor({{2.f, 0.f, 1.f, 1.f, 5.f, 5.f}}), 2);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("batch index"), std::string::npos) << e.what();
  }
  EXPECT_THROW(DetectionLoss(pred, anchors, strides, torch::zeros({1, 5}), 2), Error);
  EXPECT_THROW(
      DetectionLoss(pred, anchors, strides, torch::tensor({{0.f, 1.f, NAN, 1.f, 5.f, 5.f}}), 2),
      Error);
  try {  // a class the model does not have (4 classes here)
    DetectionLoss(pred, anchors, strides, torch::tensor({{0.f, 4.f, 1.f, 1.f, 5.f, 5.f}}), 2);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("class 4"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cvdeploy::train
