// SPDX-License-Identifier: Apache-2.0
// The public Predictor on synthetic models whose outputs are known constants, so every
// expected detection is computed by hand here. All models take a 64x64 input; the source
// images are 128x64 ("wide": letterbox scale 0.5, 16 px padding on top and bottom, so an
// input pixel (x, y) maps to (2x, 2y - 32)) and 64x128 ("tall": (2x - 32, 2y)).
#include <cmath>
#include <filesystem>
#include <map>
#include <numbers>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cvdeploy/error.h"
#include "cvdeploy/predictor.h"
#include "support/assets.h"
#include "support/onnx_builder.h"

namespace cvdeploy {
namespace {

using testing::SyntheticModel;

constexpr int kAnchors = 84;  // 8x8 + 4x4 + 2x2 anchors of a 64x64 input at strides 8/16/32

cv::Mat WideImage() { return cv::Mat(64, 128, CV_8UC3, cv::Scalar(40, 80, 120)); }
cv::Mat TallImage() { return cv::Mat(128, 64, CV_8UC3, cv::Scalar(120, 80, 40)); }

// [channels, anchors] channel-major values; `columns` maps an anchor to its channel values.
std::vector<float> ChannelsFirst(int channels, const std::map<int, std::vector<float>>& columns) {
  std::vector<float> v(static_cast<size_t>(channels) * kAnchors, 0.f);
  for (const auto& [anchor, column] : columns) {
    for (size_t c = 0; c < column.size(); ++c) v[c * kAnchors + anchor] = column[c];
  }
  return v;
}

// [rows, channels] row-major values; `filled` maps a row to its values.
std::vector<float> RowMajor(int rows, int channels,
                            const std::map<int, std::vector<float>>& filled) {
  std::vector<float> v(static_cast<size_t>(rows) * channels, 0.f);
  for (const auto& [row, values] : filled) {
    for (size_t c = 0; c < values.size(); ++c) v[row * channels + c] = values[c];
  }
  return v;
}

// Two classes; anchor 10: cx 32 cy 32 w 16 h 8, class 0 at 0.9; anchor 50: cx 36 cy 20 w 4
// h 4, class 1 at 0.6; anchor 70 stays under the default conf 0.25.
SyntheticModel DetectModel(bool with_metadata, int64_t batch = 1) {
  SyntheticModel m;
  m.input_shape = {batch, 3, 64, 64};
  m.outputs.push_back({"output0",
                       {1, 6, kAnchors},
                       ChannelsFirst(6, {{10, {32, 32, 16, 8, 0.9f, 0.1f}},
                                         {50, {36, 20, 4, 4, 0.05f, 0.6f}},
                                         {70, {50, 50, 10, 10, 0.2f, 0.24f}}})});
  if (with_metadata) m.metadata = testing::UltralyticsMetadata("detect", {"person", "car"});
  return m;
}

std::unique_ptr<Predictor> LoadBuilt(const SyntheticModel& m, const SessionOptions& o = {}) {
  return Predictor::LoadFromMemory(testing::BuildModel(m), "synthetic.onnx", o);
}

void ExpectBox(const BoxXYXY& b, float x1, float y1, float x2, float y2) {
  EXPECT_NEAR(b.x1, x1, 1e-3f);
  EXPECT_NEAR(b.y1, y1, 1e-3f);
  EXPECT_NEAR(b.x2, x2, 1e-3f);
  EXPECT_NEAR(b.y2, y2, 1e-3f);
}

// The two detections of DetectModel on the wide image.
void ExpectWideDetections(const Result& r, const std::string& name0, const std::string& name1) {
  EXPECT_EQ(r.width, 128);
  EXPECT_EQ(r.height, 64);
  EXPECT_EQ(r.task, Task::kDetect);
  ASSERT_EQ(r.detections.size(), 2u);
  const Detection& a = r.detections[0];
  EXPECT_EQ(a.class_id, 0);
  EXPECT_EQ(a.class_name, name0);
  EXPECT_FLOAT_EQ(a.confidence, 0.9f);
  ExpectBox(a.box, 48, 24, 80, 40);  // input (24, 28, 40, 36)
  const Detection& b = r.detections[1];
  EXPECT_EQ(b.class_id, 1);
  EXPECT_EQ(b.class_name, name1);
  EXPECT_FLOAT_EQ(b.confidence, 0.6f);
  ExpectBox(b.box, 68, 4, 76, 12);  // input (34, 18, 38, 22)
}

TEST(SyntheticModelsTest, DetectWithoutMetadataFallsBackToDetect) {
  auto p = LoadBuilt(DetectModel(false));
  EXPECT_EQ(p->meta().task, Task::kDetect);
  EXPECT_EQ(p->meta().layout, OutputLayout::kChannelsFirst);
  ASSERT_EQ(p->meta().names.size(), 2u);
  EXPECT_EQ(p->meta().imgsz_h, 64);
  EXPECT_EQ(p->meta().imgsz_w, 64);
  const Result r = p->Predict(WideImage());
  ExpectWideDetections(r, p->meta().names[0], p->meta().names[1]);
  EXPECT_FALSE(r.detections[0].class_name.empty());
}

TEST(SyntheticModelsTest, DetectWithMetadataNames) {
  auto p = LoadBuilt(DetectModel(true));
  EXPECT_EQ(p->meta().names, (std::vector<std::string>{"person", "car"}));
  ExpectWideDetections(p->Predict(WideImage()), "person", "car");
}

TEST(SyntheticModelsTest, NamesOverrideFromSessionOptions) {
  SessionOptions o;
  o.names = std::vector<std::string>{"cat", "dog"};
  auto p = LoadBuilt(DetectModel(true), o);
  EXPECT_EQ(p->meta().names, (std::vector<std::string>{"cat", "dog"}));
  ExpectWideDetections(p->Predict(WideImage()), "cat", "dog");
}

TEST(SyntheticModelsTest, ConfidenceAndClassFilters) {
  auto p = LoadBuilt(DetectModel(true));
  PredictOptions o;
  o.conf = 0.7f;
  Result r = p->Predict(WideImage(), o);
  ASSERT_EQ(r.detections.size(), 1u);
  EXPECT_EQ(r.detections[0].class_id, 0);
  o.conf = 0.1f;  // anchor 70 (0.24 class 1, 0.2 class 0) now passes too
  o.classes = {1};
  r = p->Predict(WideImage(), o);
  ASSERT_EQ(r.detections.size(), 2u);
  EXPECT_FLOAT_EQ(r.detections[0].confidence, 0.6f);
  EXPECT_FLOAT_EQ(r.detections[1].confidence, 0.24f);
  for (const auto& d : r.detections) EXPECT_EQ(d.class_id, 1);
}

TEST(SyntheticModelsTest, ClassifyProbabilitiesAreUsedAsIs) {
  SyntheticModel m;
  const std::vector<float> probs = {0.02f, 0.5f, 0.13f, 0.2f, 0.1f, 0.05f};  // sums to 1
  m.outputs.push_back({"output0", {1, 6}, probs});
  const std::vector<std::string> names = {"n0", "n1", "n2", "n3", "n4", "n5"};
  m.metadata = testing::UltralyticsMetadata("classify", names);
  auto p = LoadBuilt(m);
  EXPECT_EQ(p->meta().task, Task::kClassify);
  EXPECT_EQ(p->meta().layout, OutputLayout::kClassify);
  const Result r = p->Predict(WideImage());
  EXPECT_EQ(r.task, Task::kClassify);
  ASSERT_EQ(r.detections.size(), 1u);
  const Detection& d = r.detections[0];
  EXPECT_EQ(d.class_id, 1);
  EXPECT_EQ(d.class_name, "n1");
  EXPECT_FLOAT_EQ(d.confidence, 0.5f);
  const std::vector<int> order = {1, 3, 2, 4, 5};
  ASSERT_EQ(d.top5.size(), 5u);
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(d.top5[i].class_id, order[i]) << "rank " << i;
    EXPECT_EQ(d.top5[i].class_name, names[order[i]]);
    EXPECT_FLOAT_EQ(d.top5[i].score, probs[order[i]]);
  }
}

TEST(SyntheticModelsTest, ClassifyLogitsGetSoftmax) {
  SyntheticModel m;
  const std::vector<float> logits = {1.f, 3.f, 0.5f, 2.f, -1.f, 0.f};
  m.outputs.push_back({"output0", {1, 6}, logits});
  m.metadata = testing::UltralyticsMetadata("classify", {"a", "b", "c", "d", "e", "f"});
  double z = 0;
  for (float v : logits) z += std::exp(static_cast<double>(v));
  auto p = LoadBuilt(m);
  const Result r = p->Predict(WideImage());
  ASSERT_EQ(r.detections.size(), 1u);
  const Detection& d = r.detections[0];
  EXPECT_EQ(d.class_id, 1);
  EXPECT_NEAR(d.confidence, std::exp(3.0) / z, 1e-6);
  const std::vector<int> order = {1, 3, 0, 2, 5};
  ASSERT_EQ(d.top5.size(), 5u);
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(d.top5[i].class_id, order[i]) << "rank " << i;
    EXPECT_NEAR(d.top5[i].score, std::exp(static_cast<double>(logits[order[i]])) / z, 1e-6);
  }
}

// Axis-aligned bounds of a rotated box.
BoxXYXY Bounds(float cx, float cy, float w, float h, float angle) {
  const float ex = w / 2 * std::abs(std::cos(angle)) + h / 2 * std::abs(std::sin(angle));
  const float ey = w / 2 * std::abs(std::sin(angle)) + h / 2 * std::abs(std::cos(angle));
  return {cx - ex, cy - ey, cx + ex, cy + ey};
}

TEST(SyntheticModelsTest, ObbWithAngleLast) {
  SyntheticModel m;
  const float pi = std::numbers::pi_v<float>;
  // [1, 4 + 2 + 1, N]: cx, cy, w, h, 2 class scores, angle (radians).
  m.outputs.push_back({"output0",
                       {1, 7, kAnchors},
                       ChannelsFirst(7, {{20, {32, 32, 20, 10, 0.1f, 0.8f, 0.3f}},
                                         {60, {16, 40, 8, 4, 0.7f, 0.05f, pi / 2 + 0.2f}}})});
  m.metadata = testing::UltralyticsMetadata("obb", {"plane", "ship"});
  auto p = LoadBuilt(m);
  EXPECT_EQ(p->meta().task, Task::kObb);
  const Result r = p->Predict(WideImage());
  EXPECT_EQ(r.task, Task::kObb);
  ASSERT_EQ(r.detections.size(), 2u);

  const Detection& a = r.detections[0];
  EXPECT_EQ(a.class_name, "ship");
  EXPECT_FLOAT_EQ(a.confidence, 0.8f);
  ASSERT_TRUE(a.rotated.has_value());
  EXPECT_NEAR(a.rotated->cx, 64, 1e-3);
  EXPECT_NEAR(a.rotated->cy, 32, 1e-3);
  EXPECT_NEAR(a.rotated->w, 40, 1e-3);
  EXPECT_NEAR(a.rotated->h, 20, 1e-3);
  EXPECT_NEAR(a.rotated->angle, 0.3, 1e-5);
  const BoxXYXY ab = Bounds(64, 32, 40, 20, 0.3f);
  ExpectBox(a.box, ab.x1, ab.y1, ab.x2, ab.y2);

  // Angle in [pi/2, pi): normalized to angle - pi/2 with width and height swapped.
  const Detection& b = r.detections[1];
  EXPECT_EQ(b.class_name, "plane");
  EXPECT_FLOAT_EQ(b.confidence, 0.7f);
  ASSERT_TRUE(b.rotated.has_value());
  EXPECT_NEAR(b.rotated->cx, 32, 1e-3);
  EXPECT_NEAR(b.rotated->cy, 48, 1e-3);
  EXPECT_NEAR(b.rotated->w, 8, 1e-3);
  EXPECT_NEAR(b.rotated->h, 16, 1e-3);
  EXPECT_NEAR(b.rotated->angle, 0.2, 1e-5);
  const BoxXYXY bb = Bounds(32, 48, 8, 16, 0.2f);
  ExpectBox(b.box, bb.x1, bb.y1, bb.x2, bb.y2);
}

TEST(SyntheticModelsTest, PoseKeypointsMapToTheImage) {
  SyntheticModel m;
  // [1, 4 + 1 + 2 * 3, N]: box, person score, then (x, y, visibility) per keypoint.
  m.outputs.push_back(
      {"output0",
       {1, 11, kAnchors},
       ChannelsFirst(11, {{30, {32, 32, 16, 8, 0.85f, 30, 30, 0.9f, 34, 34, 0.4f}}})});
  m.metadata = testing::UltralyticsMetadata("pose", {"person"});
  m.metadata["kpt_shape"] = "[2, 3]";
  auto p = LoadBuilt(m);
  EXPECT_EQ(p->meta().task, Task::kPose);
  ASSERT_TRUE(p->meta().kpt_shape.has_value());
  EXPECT_EQ(*p->meta().kpt_shape, std::make_pair(2, 3));
  const Result r = p->Predict(WideImage());
  ASSERT_EQ(r.detections.size(), 1u);
  const Detection& d = r.detections[0];
  EXPECT_FLOAT_EQ(d.confidence, 0.85f);
  ExpectBox(d.box, 48, 24, 80, 40);
  ASSERT_EQ(d.keypoints.size(), 2u);
  EXPECT_NEAR(d.keypoints[0].x, 60, 1e-3);
  EXPECT_NEAR(d.keypoints[0].y, 28, 1e-3);
  EXPECT_FLOAT_EQ(d.keypoints[0].visibility, 0.9f);
  EXPECT_NEAR(d.keypoints[1].x, 68, 1e-3);
  EXPECT_NEAR(d.keypoints[1].y, 36, 1e-3);
  EXPECT_FLOAT_EQ(d.keypoints[1].visibility, 0.4f);
}

TEST(SyntheticModelsTest, YoloV5ScoreIsObjectnessTimesClass) {
  SyntheticModel m;
  constexpr int kRows = 3 * kAnchors;
  // [1, N, 5 + 2]: cx, cy, w, h, objectness, 2 class scores.
  m.outputs.push_back({"output0",
                       {1, kRows, 7},
                       RowMajor(kRows, 7,
                                {{3, {32, 32, 16, 8, 0.9f, 0.8f, 0.1f}},
                                 {100, {36, 20, 4, 4, 0.5f, 0.2f, 0.9f}},
                                 {200, {40, 40, 8, 8, 0.2f, 0.9f, 0.f}},
                                 {201, {50, 10, 8, 8, 0.9f, 0.2f, 0.1f}}})});
  // What YOLOv5's own export writes: stride and names only.
  m.metadata = {{"stride", "32"}, {"names", testing::NamesDict({"person", "car"})}};
  auto p = LoadBuilt(m);
  EXPECT_EQ(p->meta().task, Task::kDetect);
  EXPECT_EQ(p->meta().layout, OutputLayout::kYoloV5);
  const Result r = p->Predict(WideImage());
  ASSERT_EQ(r.detections.size(), 2u);  // rows 200 and 201 score 0.18 < 0.25
  EXPECT_EQ(r.detections[0].class_name, "person");
  EXPECT_FLOAT_EQ(r.detections[0].confidence, 0.9f * 0.8f);
  ExpectBox(r.detections[0].box, 48, 24, 80, 40);
  EXPECT_EQ(r.detections[1].class_name, "car");
  EXPECT_FLOAT_EQ(r.detections[1].confidence, 0.5f * 0.9f);
  ExpectBox(r.detections[1].box, 68, 4, 76, 12);
}

// Rows x1, y1, x2, y2, score, class: rows 0 and 1 overlap heavily (IoU ~0.82).
const std::map<int, std::vector<float>> kEndToEndRows = {{0, {10, 20, 30, 40, 0.9f, 0}},
                                                         {1, {11, 21, 31, 41, 0.8f, 0}},
                                                         {2, {40, 30, 60, 50, 0.5f, 1}},
                                                         {3, {0, 0, 10, 10, 0.1f, 1}}};

TEST(SyntheticModelsTest, EndToEndKeepsOverlappingBoxes) {
  SyntheticModel m;
  m.outputs.push_back({"output0", {1, 300, 6}, RowMajor(300, 6, kEndToEndRows)});
  m.metadata = testing::UltralyticsMetadata("detect", {"person", "car"});
  m.metadata["end2end"] = "True";
  auto p = LoadBuilt(m);
  EXPECT_TRUE(p->meta().end2end);
  EXPECT_EQ(p->meta().layout, OutputLayout::kEndToEnd);
  const Result r = p->Predict(WideImage());
  ASSERT_EQ(r.detections.size(), 3u);  // no NMS; row 3 is under conf
  EXPECT_FLOAT_EQ(r.detections[0].confidence, 0.9f);
  ExpectBox(r.detections[0].box, 20, 8, 60, 48);
  EXPECT_FLOAT_EQ(r.detections[1].confidence, 0.8f);
  EXPECT_EQ(r.detections[1].class_name, "person");
  ExpectBox(r.detections[1].box, 22, 10, 62, 50);
  EXPECT_EQ(r.detections[2].class_name, "car");
  ExpectBox(r.detections[2].box, 80, 28, 120, 64);  // y2 68 clipped to the image
}

TEST(SyntheticModelsTest, ChannelsFirstSuppressesTheSameOverlap) {
  SyntheticModel m;
  // The two overlapping end-to-end boxes as centre/size columns: NMS keeps one.
  m.outputs.push_back(
      {"output0",
       {1, 6, kAnchors},
       ChannelsFirst(6, {{0, {20, 30, 20, 20, 0.9f, 0}}, {1, {21, 31, 20, 20, 0.8f, 0}}})});
  m.metadata = testing::UltralyticsMetadata("detect", {"person", "car"});
  const Result r = LoadBuilt(m)->Predict(WideImage());
  ASSERT_EQ(r.detections.size(), 1u);
  EXPECT_FLOAT_EQ(r.detections[0].confidence, 0.9f);
}

TEST(SyntheticModelsTest, DynamicBatchPredictBatch) {
  SyntheticModel m = DetectModel(true, -1);
  auto p = LoadBuilt(m);
  EXPECT_EQ(p->meta().batch, -1);
  ASSERT_EQ(p->info().inputs.size(), 1u);
  EXPECT_EQ(p->info().inputs[0].shape, (std::vector<int64_t>{-1, 3, 64, 64}));
  const std::vector<Result> results = p->PredictBatch({WideImage(), TallImage()});
  ASSERT_EQ(results.size(), 2u);
  ExpectWideDetections(results[0], "person", "car");
  const Result& tall = results[1];
  EXPECT_EQ(tall.width, 64);
  EXPECT_EQ(tall.height, 128);
  ASSERT_EQ(tall.detections.size(), 2u);
  ExpectBox(tall.detections[0].box, 16, 56, 48, 72);
  ExpectBox(tall.detections[1].box, 36, 36, 44, 44);
}

TEST(SyntheticModelsTest, FixedBatchPredictBatchRunsEachImage) {
  auto p = LoadBuilt(DetectModel(true, 1));
  EXPECT_EQ(p->meta().batch, 1);
  const std::vector<Result> results = p->PredictBatch({TallImage(), WideImage(), TallImage()});
  ASSERT_EQ(results.size(), 3u);
  ExpectWideDetections(results[1], "person", "car");
  for (size_t i : {size_t{0}, size_t{2}}) {
    ASSERT_EQ(results[i].detections.size(), 2u);
    ExpectBox(results[i].detections[0].box, 16, 56, 48, 72);
  }
}

TEST(SyntheticModelsTest, LoadFromFileAndFromMemoryAgree) {
  const std::string dir = testing::MakeTempDir("synthetic");
  const std::string path = dir + "/detect.onnx";
  testing::WriteModel(DetectModel(true), path);
  auto from_file = Predictor::Load(path);
  auto from_memory =
      Predictor::LoadFromMemory(testing::BuildModel(DetectModel(true)), "memory-model.onnx");
  EXPECT_EQ(from_file->meta().names, from_memory->meta().names);
  EXPECT_EQ(from_file->info().meta.raw.at("task"), "detect");
  EXPECT_FALSE(from_file->provider().empty());
  ExpectWideDetections(from_file->Predict(WideImage()), "person", "car");
  ExpectWideDetections(from_memory->Predict(WideImage()), "person", "car");
  std::filesystem::remove_all(dir);
}

// Expects Load (from `path`) to throw Error(kBadInput) whose message names `path`.
void ExpectBadModel(const std::vector<uint8_t>& bytes, const std::string& file) {
  const std::string dir = testing::MakeTempDir("synthetic-bad");
  const std::string path = dir + "/" + file;
  testing::WriteBytes(bytes, path);
  try {
    Predictor::Load(path);
    ADD_FAILURE() << "Load(" << path << ") did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  try {
    Predictor::LoadFromMemory(bytes, "named-" + file);
    ADD_FAILURE() << "LoadFromMemory(" << file << ") did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput) << e.what();
    EXPECT_NE(std::string(e.what()).find("named-" + file), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(SyntheticModelsTest, NonYoloModelIsBadInput) {
  ExpectBadModel(testing::BuildNonYoloModel(), "relu.onnx");
}

TEST(SyntheticModelsTest, WrongInputRankIsBadInput) {
  ExpectBadModel(testing::BuildWrongRankModel(), "rank3.onnx");
}

}  // namespace
}  // namespace cvdeploy
