// SPDX-License-Identifier: Apache-2.0
// Golden sets without a model: the JSON form (round trip, strict rejection of malformed
// documents), input names, raw-output summaries and the matching of recorded and new results.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cvdeploy/error.h"
#include "cvdeploy/golden.h"
#include "eval/golden_internal.h"
#include "support/assets.h"

namespace cvdeploy {
namespace {

Detection Det(int cls, float conf, BoxXYXY box) {
  Detection d;
  d.class_id = cls;
  d.class_name = cls == 0 ? "person" : "class" + std::to_string(cls);
  d.confidence = conf;
  d.box = box;
  return d;
}

GoldenSet SampleSet() {
  GoldenSet set;
  set.model_sha256 = std::string(64, 'a');
  set.predict.conf = 0.3f;
  set.predict.classes = {0, 2};
  set.predict.agnostic = true;
  set.imgsz_h = 640;
  set.imgsz_w = 480;
  set.task = "pose";
  set.num_classes = 80;
  set.tolerance = DefaultGoldenTolerance();
  GoldenRecord rec;
  rec.input = "bus.jpg";
  rec.sha256 = std::string(64, '0');
  rec.result.width = 810;
  rec.result.height = 1080;
  rec.result.task = Task::kPose;
  Detection d = Det(0, 0.875f, {1.5f, 2.25f, 100.f, 200.f});
  d.keypoints = {{10.f, 20.f, 0.5f}, {30.f, 40.f, 0.25f}};
  d.rotated = RotatedBox{50.f, 60.f, 10.f, 20.f, 0.5f};
  d.top5 = {{3, "cat", 0.75f}};
  rec.result.detections = {d};
  rec.outputs = {{"output0", {1, 56, 8400}, 0.5, 1.5, 2.5, {1.f, -2.f, 3.5f}}};
  set.records = {rec};
  return set;
}

TEST(GoldenJson, RoundTripKeepsEveryField) {
  const GoldenSet a = SampleSet();
  const std::string text = GoldenSetToJson(a);
  const GoldenSet b = GoldenSetFromJson(text, "golden.json");
  EXPECT_EQ(b.format_version, kGoldenFormatVersion);
  EXPECT_EQ(b.model_sha256, a.model_sha256);
  EXPECT_FLOAT_EQ(b.predict.conf, 0.3f);
  EXPECT_EQ(b.predict.classes, (std::vector<int>{0, 2}));
  EXPECT_TRUE(b.predict.agnostic);
  EXPECT_EQ(b.imgsz_h, 640);
  EXPECT_EQ(b.imgsz_w, 480);
  EXPECT_EQ(b.task, "pose");
  EXPECT_EQ(b.num_classes, 80);
  EXPECT_DOUBLE_EQ(b.tolerance.min_iou, a.tolerance.min_iou);
  EXPECT_DOUBLE_EQ(b.tolerance.max_kpt_error, a.tolerance.max_kpt_error);
  ASSERT_EQ(b.records.size(), 1u);
  const GoldenRecord& r = b.records[0];
  EXPECT_EQ(r.input, "bus.jpg");
  EXPECT_EQ(r.result.width, 810);
  EXPECT_EQ(r.result.task, Task::kPose);
  ASSERT_EQ(r.result.detections.size(), 1u);
  const Detection& d = r.result.detections[0];
  EXPECT_EQ(d.class_name, "person");
  EXPECT_FLOAT_EQ(d.confidence, 0.875f);
  EXPECT_FLOAT_EQ(d.box.y1, 2.25f);
  ASSERT_EQ(d.keypoints.size(), 2u);
  EXPECT_FLOAT_EQ(d.keypoints[1].visibility, 0.25f);
  ASSERT_TRUE(d.rotated.has_value());
  EXPECT_FLOAT_EQ(d.rotated->angle, 0.5f);
  ASSERT_EQ(d.top5.size(), 1u);
  EXPECT_EQ(d.top5[0].class_name, "cat");
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_EQ(r.outputs[0].shape, (std::vector<int64_t>{1, 56, 8400}));
  EXPECT_EQ(r.outputs[0].samples, (std::vector<float>{1.f, -2.f, 3.5f}));
  EXPECT_EQ(GoldenSetToJson(b), text);  // stable
}

// Applies `edit` to the JSON of SampleSet() and expects GoldenSetFromJson to refuse it with
// a message containing `part`.
void ExpectRefused(const std::function<void(nlohmann::json&)>& edit, const std::string& part) {
  nlohmann::json j = nlohmann::json::parse(GoldenSetToJson(SampleSet()));
  edit(j);
  try {
    GoldenSetFromJson(j.dump(), "g.json");
    ADD_FAILURE() << "accepted: " << part;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind("g.json: ", 0), 0u) << e.what();
  }
}

TEST(GoldenJson, RefusesMalformedDocuments) {
  ExpectRefused([](auto& j) { j["format"] = "other"; }, "format");
  ExpectRefused([](auto& j) { j["format_version"] = 2; }, "unsupported version 2");
  ExpectRefused([](auto& j) { j.erase("tolerance"); }, "missing field 'tolerance'");
  ExpectRefused([](auto& j) { j["task"] = "segmentation"; }, "unknown task");
  ExpectRefused([](auto& j) { j["imgsz"] = {640}; }, "imgsz");
  ExpectRefused([](auto& j) { j["imgsz"] = {0, 640}; }, "imgsz[0]");
  ExpectRefused([](auto& j) { j["model_sha256"] = "xyz"; }, "sha256");
  ExpectRefused([](auto& j) { j["predict"]["conf"] = 1.5; }, "predict.conf");
  ExpectRefused([](auto& j) { j["predict"]["masks"] = 1; }, "expected true or false");
  ExpectRefused([](auto& j) { j["tolerance"]["min_iou"] = "0.9"; }, "expected a number");
  ExpectRefused([](auto& j) { j["records"] = nlohmann::json::array(); }, "at least one record");
  ExpectRefused([](auto& j) { j["records"][0]["input"] = "../etc/passwd"; }, "plain file name");
  ExpectRefused([](auto& j) { j["records"][0]["input"] = ".hidden"; }, "plain file name");
  ExpectRefused([](auto& j) { j["records"][0]["input"] = "a\nb"; }, "plain file name");
  ExpectRefused([](auto& j) { j["records"].push_back(j["records"][0]); }, "duplicate input");
  ExpectRefused(
      [](auto& j) {
        j["records"][0]["result"]["detections"][0]["box"] = {1, 2, 3};
      },
      "box");
  ExpectRefused([](auto& j) { j["records"][0]["result"]["detections"][0]["confidence"] = -0.1; },
                "confidence");
  ExpectRefused([](auto& j) { j["records"][0]["result"]["detections"][0]["class_id"] = 1.5; },
                "expected an integer");
  ExpectRefused([](auto& j) { j["records"][0]["outputs"][0]["shape"] = {1, -1}; }, "shape[1]");
  ExpectRefused([](auto& j) { j["records"][0]["outputs"][0]["rms"] = -1; }, "rms");
  ExpectRefused(
      [](auto& j) {
        j["records"][0]["outputs"][0]["samples"] = std::vector<float>(golden::kMaxSamples + 1);
      },
      "more than the limit");
  ExpectRefused(
      [](auto& j) {
        auto& d = j["records"][0]["result"]["detections"];
        d = nlohmann::json::array();
        for (size_t i = 0; i <= golden::kMaxDetections; ++i) d.push_back(nullptr);
      },
      "more than the limit");
  ExpectRefused([](auto& j) { j = nlohmann::json::array(); }, "expected an object");
}

TEST(GoldenJson, RefusesDeepNestingAndInvalidText) {
  EXPECT_THROW(GoldenSetFromJson(std::string(100, '[') + std::string(100, ']'), "g"), Error);
  EXPECT_THROW(GoldenSetFromJson("{\"format\": ", "g"), Error);
  EXPECT_THROW(GoldenSetFromJson("", "g"), Error);
}

TEST(GoldenNames, PlainFileNamesOnly) {
  EXPECT_TRUE(golden::IsPlainFileName("bus.jpg"));
  EXPECT_TRUE(golden::IsPlainFileName("a b-c_1.PNG"));
  for (const char* bad : {"", ".", "..", "a/b", "/abs", "..\\x", ".jpg"}) {
    EXPECT_FALSE(golden::IsPlainFileName(bad)) << bad;
  }
  EXPECT_FALSE(golden::IsPlainFileName(std::string(256, 'a')));
  EXPECT_FALSE(golden::IsPlainFileName(std::string("a\0b", 3)));
}

TEST(GoldenSummary, StatsAndEvenlySpacedSamples) {
  std::vector<float> v(200);
  for (size_t i = 0; i < v.size(); ++i) v[i] = (i % 2 ? -1.f : 1.f) * static_cast<float>(i);
  const GoldenOutputSummary s =
      golden::SummarizeOutput("out", TensorView(DataType::kFloat32, {2, 100}, v.data()));
  EXPECT_EQ(s.shape, (std::vector<int64_t>{1, 100}));  // row 0 only
  ASSERT_EQ(s.samples.size(), golden::kSamples);
  EXPECT_FLOAT_EQ(s.samples[0], 0.f);
  EXPECT_FLOAT_EQ(s.samples[1], v[1 * 100 / 64]);
  EXPECT_FLOAT_EQ(s.samples[63], v[63 * 100 / 64]);
  double sum = 0, abs = 0, sq = 0;
  for (size_t i = 0; i < 100; ++i) sum += v[i], abs += std::fabs(v[i]), sq += v[i] * v[i];
  EXPECT_NEAR(s.mean, sum / 100, 1e-9);
  EXPECT_NEAR(s.mean_abs, abs / 100, 1e-9);
  EXPECT_NEAR(s.rms, std::sqrt(sq / 100), 1e-9);
  std::vector<int32_t> ints(4);
  EXPECT_THROW(golden::SummarizeOutput("i", TensorView(DataType::kInt32, {4}, ints.data())), Error);
}

struct Compared {
  std::vector<std::string> reasons;
  golden::CompareStats stats;
};

Compared Compare(const Result& a, const Result& b, float conf = 0.25f) {
  Compared c;
  PredictOptions p;
  p.conf = conf;
  golden::CompareResults(a, b, p, DefaultGoldenTolerance(), &c.stats, &c.reasons);
  return c;
}

Result Image(std::vector<Detection> dets, Task task = Task::kDetect) {
  Result r;
  r.width = 640;
  r.height = 480;
  r.task = task;
  r.detections = std::move(dets);
  return r;
}

TEST(GoldenMatch, SameResultsPassAndSmallShiftsPass) {
  const Result a = Image({Det(0, 0.9f, {10, 10, 110, 210}), Det(5, 0.6f, {300, 100, 500, 300})});
  Result b = a;
  b.detections[0].box.x1 += 0.5f;
  b.detections[0].confidence += 0.005f;
  std::swap(b.detections[0], b.detections[1]);  // order does not matter
  const Compared c = Compare(a, b);
  EXPECT_TRUE(c.reasons.empty()) << c.reasons[0];
  EXPECT_EQ(c.stats.matched, 2u);
  EXPECT_EQ(c.stats.expected, 2u);
}

TEST(GoldenMatch, ClassConfidenceBoxAndExtraDetectionsFail) {
  const Result a = Image({Det(0, 0.9f, {10, 10, 110, 210})});
  EXPECT_EQ(Compare(a, Image({Det(1, 0.9f, {10, 10, 110, 210})})).reasons.size(), 2u);  // lost+new
  const Compared conf = Compare(a, Image({Det(0, 0.85f, {10, 10, 110, 210})}));
  ASSERT_EQ(conf.reasons.size(), 1u);
  EXPECT_NE(conf.reasons[0].find("confidence"), std::string::npos);
  EXPECT_EQ(Compare(a, Image({Det(0, 0.9f, {30, 10, 130, 210})})).reasons.size(), 2u);  // IoU 0.67
  const Compared extra =
      Compare(a, Image({Det(0, 0.9f, {10, 10, 110, 210}), Det(2, 0.5f, {0, 0, 5, 5})}));
  ASSERT_EQ(extra.reasons.size(), 1u);
  EXPECT_NE(extra.reasons[0].find("new detection"), std::string::npos);
  EXPECT_EQ(Compare(a, Image({})).reasons.size(), 1u);
  Result smaller = a;
  smaller.width = 320;
  EXPECT_EQ(Compare(a, smaller).reasons.size(), 1u);
}

TEST(GoldenMatch, DetectionsAtTheThresholdMayComeAndGo) {
  const Result a = Image({Det(0, 0.9f, {10, 10, 110, 210}), Det(3, 0.26f, {200, 200, 260, 260})});
  const Result b = Image({Det(0, 0.9f, {10, 10, 110, 210}), Det(4, 0.255f, {0, 0, 9, 9})});
  EXPECT_TRUE(Compare(a, b).reasons.empty());
  // The same detections far from the threshold fail.
  EXPECT_EQ(Compare(a, b, 0.1f).reasons.size(), 2u);
}

TEST(GoldenMatch, PoseKeypointsMustStayClose) {
  Detection d = Det(0, 0.9f, {0, 0, 300, 400});  // diagonal 500
  d.keypoints = {{100, 100, 0.9f}, {200, 200, 0.9f}};
  Detection near = d, far = d;
  near.keypoints[0].x += 2;  // mean 1 px = 0.002 of the diagonal
  far.keypoints[0].x += 40;  // mean 20 px = 0.04
  EXPECT_TRUE(Compare(Image({d}, Task::kPose), Image({near}, Task::kPose)).reasons.empty());
  const Compared c = Compare(Image({d}, Task::kPose), Image({far}, Task::kPose));
  ASSERT_EQ(c.reasons.size(), 1u);
  EXPECT_NE(c.reasons[0].find("keypoints"), std::string::npos);
}

TEST(GoldenMatch, ClassifyComparesTopOne) {
  Detection d;
  d.top5 = {{7, "dog", 0.8f}, {3, "cat", 0.1f}};
  Detection same = d, other = d, weaker = d;
  same.top5[0].score = 0.805f;
  std::swap(other.top5[0], other.top5[1]);
  weaker.top5[0].score = 0.7f;
  EXPECT_TRUE(Compare(Image({d}, Task::kClassify), Image({same}, Task::kClassify)).reasons.empty());
  EXPECT_EQ(Compare(Image({d}, Task::kClassify), Image({other}, Task::kClassify)).reasons.size(),
            1u);
  EXPECT_EQ(Compare(Image({d}, Task::kClassify), Image({weaker}, Task::kClassify)).reasons.size(),
            1u);
  EXPECT_EQ(Compare(Image({d}, Task::kClassify), Image({d}, Task::kDetect)).reasons.size(), 1u);
}

TEST(GoldenMatch, RawOutputs) {
  const GoldenTolerance t = DefaultGoldenTolerance();
  const GoldenOutputSummary a{"out", {1, 4}, 1.0, 2.0, 3.0, {100.f, -50.f, 1.f, 0.f}};
  auto check = [&](const GoldenOutputSummary& b) {
    std::vector<std::string> reasons;
    golden::CompareOutputs({a}, {b}, t, &reasons);
    return reasons;
  };
  GoldenOutputSummary same = a;
  same.samples[0] += 0.01f;
  EXPECT_TRUE(check(same).empty());
  GoldenOutputSummary off = a;
  off.samples[0] *= 1.05f;  // 5 / 111.8 = 4.5% relative
  EXPECT_EQ(check(off).size(), 1u);
  GoldenOutputSummary mean = a;
  mean.mean = 1.5;
  EXPECT_EQ(check(mean).size(), 1u);
  GoldenOutputSummary nan = a;
  nan.samples[1] = NAN;
  EXPECT_EQ(check(nan).size(), 1u);
  GoldenOutputSummary shape = a;
  shape.shape = {1, 5};
  EXPECT_EQ(check(shape).size(), 1u);
  GoldenOutputSummary renamed = a;
  renamed.name = "other";
  EXPECT_EQ(check(renamed).size(), 2u);  // missing + unknown
}

TEST(GoldenReport, SummaryLine) {
  GoldenReport r;
  r.passed = true;
  r.inputs = 2;
  r.detections_matched = r.detections_expected = 8;
  EXPECT_EQ(r.Summary(), "golden set: passed (2 inputs, 8/8 detections matched)");
  r.passed = false;
  r.failures = {{"bus.jpg", "input missing"}};
  EXPECT_NE(r.Summary().find("FAILED (1 findings"), std::string::npos);
  EXPECT_NE(r.Summary().find("bus.jpg: input missing"), std::string::npos);
}

TEST(GoldenDir, WriteThenReadKeepsSetAndInputs) {
  const std::string dir = testing::MakeTempDir("golden-dir") + "/g";
  const std::vector<GoldenInput> inputs = {{"bus.jpg", {1, 2, 3}}};
  WriteGoldenDir(dir, SampleSet(), inputs);
  const GoldenDir read = ReadGoldenDir(dir);
  EXPECT_EQ(GoldenSetToJson(read.set), GoldenSetToJson(SampleSet()));
  ASSERT_EQ(read.inputs.size(), 1u);
  EXPECT_EQ(read.inputs[0].name, "bus.jpg");
  EXPECT_EQ(read.inputs[0].bytes, (std::vector<uint8_t>{1, 2, 3}));
  // The same files as inputs of a new record: ReadGoldenInputs on the directory finds the
  // image, not golden.json.
  const std::vector<GoldenInput> again = ReadGoldenInputs(dir + "/bus.jpg");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].name, "bus.jpg");
  // A recorded input that is missing from the directory is a bad golden directory.
  std::filesystem::remove(dir + "/bus.jpg");
  EXPECT_THROW(ReadGoldenDir(dir), Error);
  EXPECT_THROW(ReadGoldenDir(dir + "/missing"), Error);
}

TEST(GoldenDir, RefusesUnsafeOrDuplicateInputNames) {
  const std::string dir = testing::MakeTempDir("golden-names") + "/g";
  for (const char* bad : {"../escape.jpg", "golden.json", ".hidden.jpg", "a/b.jpg"}) {
    try {
      WriteGoldenDir(dir, SampleSet(), {{bad, {1}}});
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kBadInput) << e.what();
    }
  }
  EXPECT_THROW(WriteGoldenDir(dir, SampleSet(), {{"a.jpg", {1}}, {"a.jpg", {2}}}), Error);
  EXPECT_THROW(WriteGoldenDir(dir, SampleSet(), {}), Error);
  EXPECT_FALSE(std::filesystem::exists(dir + "/golden.json"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/../escape.jpg"));
}

}  // namespace
}  // namespace cvdeploy
