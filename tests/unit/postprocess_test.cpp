// SPDX-License-Identifier: Apache-2.0
// Postprocess on hand-built output tensors for every layout and task. The detect paths are
// also compared with a naive decoder that materializes the whole transposed output.
#include "vision/postprocess.h"

#include <random>
#include <string>

#include <gtest/gtest.h>

#include "cvdeploy/error.h"
#include "unit/naive_nms.h"
#include "unit/postprocess_fixtures.h"

namespace cvdeploy::vision {
namespace {

struct RefDet {
  int cls;
  float score;
  BoxXYXY box;
};

// Slow reference: transposes the whole output into rows, then follows Ultralytics'
// non_max_suppression literally.
std::vector<RefDet> NaiveDetect(const Tensor& t, int nc, bool v5, const PredictOptions& o,
                                const LetterboxInfo& lb) {
  const int64_t n = v5 ? t.rows : t.cols, ch = v5 ? t.cols : t.rows;
  std::vector<std::vector<float>> rows(n, std::vector<float>(ch));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t c = 0; c < ch; ++c) rows[i][c] = v5 ? t.data[i * ch + c] : t.data[c * n + i];
  }
  std::vector<BoxXYXY> boxes;
  std::vector<float> scores;
  std::vector<int> classes;
  for (const auto& r : rows) {
    if (v5 && !(r[4] > o.conf)) continue;
    std::vector<float> s(nc);
    for (int c = 0; c < nc; ++c) s[c] = v5 ? r[4] * r[5 + c] : r[4 + c];
    const BoxXYXY box{r[0] - r[2] / 2, r[1] - r[3] / 2, r[0] + r[2] / 2, r[1] + r[3] / 2};
    for (int c = 0; c < nc; ++c) {
      const bool take =
          o.multi_label ? s[c] > o.conf
                        : (c == std::max_element(s.begin(), s.end()) - s.begin() && s[c] > o.conf);
      if (!take) continue;
      if (!o.classes.empty() &&
          std::find(o.classes.begin(), o.classes.end(), c) == o.classes.end()) {
        continue;
      }
      boxes.push_back(box);
      scores.push_back(s[c]);
      classes.push_back(c);
    }
  }
  std::vector<RefDet> out;
  for (int k : testing::NaiveNms(boxes, scores, classes, o.iou, o.agnostic, o.max_det)) {
    const BoxXYXY& b = boxes[k];
    auto cx = [&](float x) { return std::clamp((x - lb.pad_left) / lb.scale, 0.f, 1280.f); };
    auto cy = [&](float y) { return std::clamp((y - lb.pad_top) / lb.scale, 0.f, 720.f); };
    out.push_back({classes[k], scores[k], {cx(b.x1), cy(b.y1), cx(b.x2), cy(b.y2)}});
  }
  return out;
}

void ExpectSame(const std::vector<Detection>& got, const std::vector<RefDet>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    EXPECT_EQ(got[k].class_id, want[k].cls) << k;
    EXPECT_EQ(got[k].class_name, ClassName(want[k].cls));
    EXPECT_FLOAT_EQ(got[k].confidence, want[k].score) << k;
    EXPECT_NEAR(got[k].box.x1, want[k].box.x1, 1e-3) << k;
    EXPECT_NEAR(got[k].box.y1, want[k].box.y1, 1e-3) << k;
    EXPECT_NEAR(got[k].box.x2, want[k].box.x2, 1e-3) << k;
    EXPECT_NEAR(got[k].box.y2, want[k].box.y2, 1e-3) << k;
  }
}

// Random head: boxes spill over the letterboxed area (clipping), scores skewed low.
Tensor RandomHead(bool v5, int nc, int n, uint32_t seed) {
  const int ch = (v5 ? 5 : 4) + nc;
  Tensor t = v5 ? Tensor(1, n, ch) : Tensor(1, ch, n);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pos(-20.f, 660.f), size(5.f, 150.f), u(0.f, 1.f);
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < ch; ++c) {
      const float v = c == 0 || c == 1 ? pos(rng) : c < 4 ? size(rng) : std::pow(u(rng), 6.f);
      (v5 ? t.At(i, c) : t.At(c, i)) = (v5 && c == 4) ? std::sqrt(v) : v;
    }
  }
  return t;
}

std::vector<PredictOptions> OptionVariants() {
  std::vector<PredictOptions> v(7);
  v[1].multi_label = true;
  v[2].classes = {1, 3};
  v[3].agnostic = true;
  v[4].iou = 0.45f;
  v[4].max_det = 10;
  v[5].conf = 0.6f;
  v[6].multi_label = v[6].agnostic = true;
  v[6].conf = 0.01f;
  return v;
}

TEST(PostprocessTest, ChannelsFirstAndV5MatchNaiveDecoder) {
  for (bool v5 : {false, true}) {
    const Tensor t = RandomHead(v5, 6, 3000, v5 ? 11 : 12);
    const ModelMeta meta =
        Meta(Task::kDetect, v5 ? OutputLayout::kYoloV5 : OutputLayout::kChannelsFirst, 6);
    int variant = 0;
    for (const PredictOptions& o : OptionVariants()) {
      SCOPED_TRACE(::testing::Message() << "v5 " << v5 << " variant " << variant++);
      const auto got = Postprocess({t.View()}, 0, meta, Wide(), o);
      EXPECT_FALSE(got.empty());
      ExpectSame(got, NaiveDetect(t, 6, v5, o, Wide()));
    }
  }
}

TEST(PostprocessTest, LetterboxMappingAndClipping) {
  Tensor t(1, 4 + 2, 3);
  SetAnchor(t, 0, {320, 320, 100, 50, 0.9f, 0.1f});  // input 270..370 x 295..345
  SetAnchor(t, 1, {20, 480, 60, 80, 0.1f, 0.8f});    // x from -10, y to 520 (> image)
  SetAnchor(t, 2, {500, 100, 50, 50, 0.25f, 0.f});   // == conf: not a candidate
  const auto d = Postprocess({t.View()}, 0, Meta(Task::kDetect, OutputLayout::kChannelsFirst, 2),
                             Wide(), PredictOptions{});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].class_id, 0);
  EXPECT_EQ(d[0].class_name, "c0");
  EXPECT_FLOAT_EQ(d[0].box.x1, 540);
  EXPECT_FLOAT_EQ(d[0].box.x2, 740);
  EXPECT_FLOAT_EQ(d[0].box.y1, 310);
  EXPECT_FLOAT_EQ(d[0].box.y2, 410);
  EXPECT_EQ(d[1].class_id, 1);
  EXPECT_FLOAT_EQ(d[1].box.x1, 0);    // clipped
  EXPECT_FLOAT_EQ(d[1].box.x2, 100);  // (50 - 0) / 0.5
  EXPECT_FLOAT_EQ(d[1].box.y1, 600);  // (440 - 140) / 0.5
  EXPECT_FLOAT_EQ(d[1].box.y2, 720);  // clipped
}

TEST(PostprocessTest, MultiLabelClassFilterAgnosticMaxDet) {
  Tensor t(1, 4 + 3, 2);
  SetAnchor(t, 0, {100, 100, 50, 50, 0.9f, 0.6f, 0.f});
  SetAnchor(t, 1, {102, 100, 50, 50, 0.f, 0.f, 0.7f});  // overlaps anchor 0, class 2
  const ModelMeta meta = Meta(Task::kDetect, OutputLayout::kChannelsFirst, 3);
  PredictOptions o;
  EXPECT_EQ(Postprocess({t.View()}, 0, meta, Identity(), o).size(), 2u);  // class-aware
  o.multi_label = true;  // anchor 0 class 1 is an extra candidate, same box as class 0 but
  auto d = Postprocess({t.View()}, 0, meta, Identity(), o);  // another class
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].class_id, 0);
  EXPECT_EQ(d[1].class_id, 2);
  EXPECT_EQ(d[2].class_id, 1);
  o.classes = {1};
  d = Postprocess({t.View()}, 0, meta, Identity(), o);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_FLOAT_EQ(d[0].confidence, 0.6f);
  o = {};
  o.classes = {1};  // best class of anchor 0 is 0, so nothing is left without multi_label
  EXPECT_TRUE(Postprocess({t.View()}, 0, meta, Identity(), o).empty());
  o = {};
  o.agnostic = true;
  EXPECT_EQ(Postprocess({t.View()}, 0, meta, Identity(), o).size(), 1u);
  o = {};
  o.max_det = 1;
  EXPECT_EQ(Postprocess({t.View()}, 0, meta, Identity(), o).size(), 1u);
}

TEST(PostprocessTest, AtMost30000BoxesEnterNms) {
  // 30000 identical boxes outscore 10 disjoint ones; only the top 30000 candidates are
  // considered, so the disjoint ones never get in.
  const int n = 30010;
  Tensor t(1, 5, n);
  for (int i = 0; i < n; ++i) {
    const bool disjoint = i >= 30000;
    SetAnchor(t, i,
              {disjoint ? 20.f + 60 * (i - 30000) : 300.f, disjoint ? 20.f : 300.f, 10, 10,
               disjoint ? 0.3f : 0.5f + 0.4f * i / n});
  }
  const auto d = Postprocess({t.View()}, 0, Meta(Task::kDetect, OutputLayout::kChannelsFirst, 1),
                             Identity(), PredictOptions{});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_FLOAT_EQ(d[0].confidence, 0.5f + 0.4f * 29999 / n);
}

TEST(PostprocessTest, BatchItemSelection) {
  Tensor t(2, 5, 4);
  t.At(0, 1, 1) = 100;
  t.At(1, 1, 1) = 100;
  t.At(2, 1, 1) = 20;
  t.At(3, 1, 1) = 20;
  t.At(4, 1, 1) = 0.8f;
  const auto meta = Meta(Task::kDetect, OutputLayout::kChannelsFirst, 1);
  EXPECT_TRUE(Postprocess({t.View()}, 0, meta, Identity(), {}).empty());
  const auto d = Postprocess({t.View()}, 1, meta, Identity(), {});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_FLOAT_EQ(d[0].box.x1, 90);
  EXPECT_THROW(Postprocess({t.View()}, 2, meta, Identity(), {}), Error);
}

TEST(PostprocessTest, BadShapesThrow) {
  Tensor t(1, 5, 4);  // 1 class fits, 3 do not
  EXPECT_THROW(Postprocess({t.View()}, 0, Meta(Task::kDetect, OutputLayout::kChannelsFirst, 3),
                           Identity(), {}),
               Error);
  TensorView rank2(DataType::kFloat32, {1, 20}, t.data.data());
  EXPECT_THROW(
      Postprocess({rank2}, 0, Meta(Task::kDetect, OutputLayout::kChannelsFirst, 1), Identity(), {}),
      Error);
  EXPECT_THROW(
      Postprocess({}, 0, Meta(Task::kDetect, OutputLayout::kChannelsFirst, 1), Identity(), {}),
      Error);
}

TEST(PostprocessTest, YoloV5ObjectnessTimesClass) {
  Tensor t(1, 4, 5 + 2);
  SetRow(t, 0, {100, 100, 40, 40, 0.9f, 0.5f, 0.1f});   // 0.45, class 0
  SetRow(t, 1, {300, 300, 40, 40, 0.2f, 1.f, 1.f});     // objectness below conf
  SetRow(t, 2, {500, 500, 40, 40, 0.6f, 0.3f, 0.35f});  // 0.18 / 0.21: below conf
  SetRow(t, 3, {300, 100, 40, 40, 1.f, 0.3f, 0.9f});    // class 1 (0.9), class 0 (0.3)
  const auto meta = Meta(Task::kDetect, OutputLayout::kYoloV5, 2);
  auto d = Postprocess({t.View()}, 0, meta, Identity(), {});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].class_id, 1);
  EXPECT_FLOAT_EQ(d[0].confidence, 0.9f);
  EXPECT_FLOAT_EQ(d[1].confidence, 0.9f * 0.5f);
  PredictOptions o;
  o.multi_label = true;
  EXPECT_EQ(Postprocess({t.View()}, 0, meta, Identity(), o).size(), 3u);
}

TEST(PostprocessTest, EndToEndHasNoNms) {
  Tensor t(1, 6, 6);
  SetRow(t, 0, {10, 150, 110, 250, 0.9f, 1});
  SetRow(t, 1, {10, 150, 110, 250, 0.8f, 1});   // duplicate box: kept, no NMS
  SetRow(t, 2, {10, 150, 110, 250, 0.2f, 0});   // below conf
  SetRow(t, 3, {10, 150, 110, 250, 0.95f, 7});  // class id out of range: skipped
  SetRow(t, 4, {0, 100, 700, 700, 0.5f, 2});    // clipped
  SetRow(t, 5, {300, 300, 400, 400, 0.95f, 0});
  const auto meta = Meta(Task::kDetect, OutputLayout::kEndToEnd, 3);
  auto d = Postprocess({t.View()}, 0, meta, Wide(), {});
  ASSERT_EQ(d.size(), 4u);
  EXPECT_FLOAT_EQ(d[0].confidence, 0.95f);
  EXPECT_EQ(d[0].class_id, 0);
  EXPECT_FLOAT_EQ(d[1].confidence, 0.9f);
  EXPECT_FLOAT_EQ(d[2].confidence, 0.8f);
  EXPECT_FLOAT_EQ(d[1].box.x1, 20);
  EXPECT_FLOAT_EQ(d[1].box.y1, 20);
  EXPECT_FLOAT_EQ(d[1].box.x2, 220);
  EXPECT_FLOAT_EQ(d[1].box.y2, 220);
  EXPECT_FLOAT_EQ(d[3].box.x2, 1280);
  EXPECT_FLOAT_EQ(d[3].box.y1, 0);
  EXPECT_FLOAT_EQ(d[3].box.y2, 720);
  PredictOptions o;
  o.classes = {1};
  EXPECT_EQ(Postprocess({t.View()}, 0, meta, Wide(), o).size(), 2u);
  o = {};
  o.max_det = 2;
  d = Postprocess({t.View()}, 0, meta, Wide(), o);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_FLOAT_EQ(d[1].confidence, 0.9f);
}

TEST(PostprocessTest, ClassifyProbabilitiesAndLogits) {
  const std::vector<float> probs = {0.1f, 0.7f, 0.2f};
  auto d = Postprocess({TensorView(DataType::kFloat32, {1, 3}, probs.data())}, 0,
                       Meta(Task::kClassify, OutputLayout::kClassify, 3), Wide(), {});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].class_id, 1);
  EXPECT_EQ(d[0].class_name, "c1");
  EXPECT_FLOAT_EQ(d[0].confidence, 0.7f);
  EXPECT_FLOAT_EQ(d[0].box.x2, 1280);
  EXPECT_FLOAT_EQ(d[0].box.y2, 720);
  ASSERT_EQ(d[0].top5.size(), 3u);
  EXPECT_EQ(d[0].top5[1].class_id, 2);
  EXPECT_EQ(d[0].top5[2].class_name, "c0");

  // Logits (batch item 1): softmax, top-5 of 6.
  std::vector<float> logits = {0, 0, 0, 0, 0, 0, 1, 2, 3, 0, -1, 5};
  d = Postprocess({TensorView(DataType::kFloat32, {2, 6}, logits.data())}, 1,
                  Meta(Task::kClassify, OutputLayout::kClassify, 6), Identity(), {});
  ASSERT_EQ(d.size(), 1u);
  double z = 0;
  for (int i = 6; i < 12; ++i) z += std::exp(logits[i]);
  EXPECT_EQ(d[0].class_id, 5);
  EXPECT_NEAR(d[0].confidence, std::exp(5.0) / z, 1e-6);
  ASSERT_EQ(d[0].top5.size(), 5u);
  EXPECT_EQ(d[0].top5[1].class_id, 2);
  EXPECT_NEAR(d[0].top5[4].score, std::exp(0.0) / z, 1e-6);

  // In range but not summing to one: treated as logits.
  const std::vector<float> odd = {0.5f, 0.6f};
  d = Postprocess({TensorView(DataType::kFloat32, {1, 2}, odd.data())}, 0,
                  Meta(Task::kClassify, OutputLayout::kClassify, 2), Identity(), {});
  EXPECT_NEAR(d[0].confidence, 1 / (1 + std::exp(-0.1)), 1e-6);
}

}  // namespace
}  // namespace cvdeploy::vision
