// SPDX-License-Identifier: Apache-2.0
// PSI (hand-computed examples, identical histograms, smoothing), levels, the class collapse,
// Compare, the sliding window (ring semantics, concurrent adds), the baseline JSON (round trip,
// malformed documents refused with clear messages), the server's config.json "drift" object,
// the drift route's group and the CLI's exit code 8.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli/exit_codes.h"
#include "cvdeploy/drift.h"
#include "cvdeploy/error.h"
#include "server/model_config.h"
#include "server/route_groups.h"

namespace cvdeploy::drift {
namespace {

constexpr PsiOptions kRaw{0, 0, 1e-4};

Observation Obs(double brightness, int detections = 0, int class_id = 0) {
  Observation o;
  o.image.values[kBrightness] = brightness;
  o.image.values[kJpegQuality] = 90;
  o.detections = detections;
  for (int i = 0; i < detections; ++i) o.boxes.push_back({class_id, 0.9, 0.05, 0.5, 0.5});
  return o;
}

TEST(DriftPsi, IdenticalHistogramsGiveZero) {
  const std::vector<uint64_t> h = {5, 0, 7, 1};
  EXPECT_EQ(Psi(h, h, kRaw), 0);
  EXPECT_NEAR(Psi(h, h), 0, 1e-15);
  EXPECT_NEAR(Psi(h, {10, 0, 14, 2}, kRaw), 0, 1e-15);  // same proportions
  EXPECT_EQ(Psi(h, {0, 0, 0, 0}), 0);                   // empty window
}

TEST(DriftPsi, HandComputedTextbookValue) {
  // p = (0.9, 0.1), q = (0.5, 0.5): 0.4 ln 1.8 + (-0.4) ln 0.2.
  EXPECT_NEAR(Psi({50, 50}, {90, 10}, kRaw), 0.4 * std::log(1.8) - 0.4 * std::log(0.2), 1e-12);
  EXPECT_NEAR(Psi({50, 50}, {90, 10}, kRaw), 0.878890, 1e-6);
}

TEST(DriftPsi, EmptyBinsUseTheEpsilonFloor) {
  // q = (1, 0 -> 1e-4), p = (0.5, 0.5).
  const double expected = -0.5 * std::log(0.5) + (0.5 - 1e-4) * std::log(0.5 / 1e-4);
  EXPECT_NEAR(Psi({100, 0}, {50, 50}, kRaw), expected, 1e-12);
  EXPECT_NEAR(Psi({100, 0}, {50, 50}, kRaw), 4.604318, 1e-6);
}

TEST(DriftPsi, SmoothingIsTheDocumentedFormula) {
  // m = n = 10, 2 bins, a = 0.5: lambda = 1 / 11; q = (10/11 * 1 + 1/22, 1/22);
  // window c = (1/22, 10/11 + 1/22); p = (10 c + 20 q) / 30.
  const double lambda = 1.0 / 11;
  const double q0 = (1 - lambda) + lambda / 2, q1 = lambda / 2;
  const double c0 = lambda / 2, c1 = (1 - lambda) + lambda / 2;
  const double p0 = (10 * c0 + 20 * q0) / 30, p1 = (10 * c1 + 20 * q1) / 30;
  const double expected = (p0 - q0) * std::log(p0 / q0) + (p1 - q1) * std::log(p1 / q1);
  EXPECT_NEAR(Psi({10, 0}, {0, 10}, PsiOptions{0.5, 20, 1e-4}), expected, 1e-12);
  EXPECT_NEAR(expected, 0.732975, 1e-6);
  // The prior scales with the values per image.
  EXPECT_LT(Psi({10, 0}, {0, 10}, PsiOptions{0.5, 20, 1e-4}, 3),
            Psi({10, 0}, {0, 10}, PsiOptions{0.5, 20, 1e-4}, 1));
  // A larger window of the same shift reads as more drift than a small one.
  EXPECT_GT(Psi({10, 0}, {0, 1000}), Psi({10, 0}, {0, 10}));
}

TEST(DriftPsi, MismatchedHistogramsAreRefused) {
  EXPECT_THROW(Psi({1, 2}, {1, 2, 3}), Error);
  EXPECT_THROW(Psi({}, {}), Error);
}

TEST(DriftPsi, LevelsAndNames) {
  const Thresholds t;
  EXPECT_EQ(LevelOf(0.0999, t), Level::kOk);
  EXPECT_EQ(LevelOf(0.1, t), Level::kWarn);
  EXPECT_EQ(LevelOf(0.25, t), Level::kAlert);
  EXPECT_EQ(LevelName(Level::kWarn), "warn");
  EXPECT_EQ(LevelName(Level::kAlert), "alert");
}

TEST(DriftPsi, ClassesAreComparedOverTheBaselinesTopClasses) {
  const std::vector<uint64_t> counts = {5, 9, 0, 9, 1, 2, 3, 4};  // 7 classes + other
  const std::vector<int> top = TopClasses(counts, 3);
  EXPECT_EQ(top, (std::vector<int>{1, 3, 0}));  // ties: the lower id first
  EXPECT_EQ(CollapseClasses(counts, top), (std::vector<uint64_t>{9, 9, 5, 10}));
  EXPECT_EQ(TopClasses({0, 0, 7}, 5), std::vector<int>{});  // "other" is never a top class
}

TEST(DriftCompare, ReportsEveryFeatureAndRefusesOtherClassCounts) {
  Baseline b;
  b.histograms = Histograms(3);
  for (int i = 0; i < 50; ++i) b.histograms.Add(Obs(120, 2, 1));
  Histograms same(3), dark(3);
  for (int i = 0; i < 50; ++i) same.Add(Obs(120, 2, 1));
  for (int i = 0; i < 50; ++i) dark.Add(Obs(10, 2, 1));
  const DriftReport quiet = Compare(b, same, {});
  ASSERT_EQ(quiet.features.size(), static_cast<size_t>(kFeatureCount));
  EXPECT_FALSE(quiet.alert);
  for (const FeatureDrift& f : quiet.features) EXPECT_NEAR(f.psi, 0, 1e-12) << f.name;
  const DriftReport loud = Compare(b, dark, {});
  EXPECT_TRUE(loud.alert);
  EXPECT_EQ(loud.features[kBrightness].level, Level::kAlert);
  EXPECT_EQ(loud.features[kContrast].level, Level::kOk);
  EXPECT_EQ(loud.images, 50u);
  EXPECT_THROW(Compare(b, Histograms(4), {}), Error);
}

TEST(DriftWindowTest, KeepsTheLastNObservations) {
  DriftWindow w(3, 2);
  EXPECT_EQ(w.size(), 0u);
  for (double v : {10.0, 10.0, 200.0, 200.0, 200.0}) w.Add(Obs(v, 1, 1));
  EXPECT_EQ(w.size(), 3u);
  Histograms expected(2);
  for (int i = 0; i < 3; ++i) expected.Add(Obs(200, 1, 1));
  const Histograms got = w.Snapshot();
  EXPECT_EQ(got.images, 3u);
  EXPECT_EQ(got.boxes, 3u);
  for (int f = 0; f < kFeatureCount; ++f) EXPECT_EQ(got.counts[f], expected.counts[f]) << f;
  EXPECT_THROW(DriftWindow(0, 2), Error);
  EXPECT_THROW(DriftWindow(5, 0), Error);
}

TEST(DriftWindowTest, ConcurrentAddsKeepConsistentCounts) {
  DriftWindow w(100, 5);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&w, t] {
      for (int i = 0; i < 2000; ++i) w.Add(Obs(16.0 * t + i % 200, i % 4, t));
    });
  }
  for (auto& th : threads) th.join();
  const Histograms h = w.Snapshot();
  EXPECT_EQ(h.images, 100u);
  for (int f = 0; f < kFeatureCount; ++f) {
    uint64_t total = 0;
    for (uint64_t c : h.counts[f]) total += c;
    EXPECT_EQ(total, Spec(f).per_box ? h.boxes : h.images) << Spec(f).name;
  }
}

Baseline Sample() {
  Baseline b;
  b.model = "m.onnx";
  b.conf = 0.3f;
  b.histograms = Histograms(4);
  for (int i = 0; i < 20; ++i) b.histograms.Add(Obs(10.0 * i, i % 5, i % 6));
  return b;
}

TEST(DriftBaseline, JsonRoundTrip) {
  const Baseline b = Sample();
  const std::string text = BaselineToJson(b);
  const Baseline back = BaselineFromJson(text, "b.json");
  EXPECT_EQ(back.model, "m.onnx");
  EXPECT_FLOAT_EQ(back.conf, 0.3f);
  EXPECT_EQ(back.histograms.images, 20u);
  EXPECT_EQ(back.histograms.boxes, b.histograms.boxes);
  for (int f = 0; f < kFeatureCount; ++f)
    EXPECT_EQ(back.histograms.counts[f], b.histograms.counts[f]);
  EXPECT_EQ(BaselineToJson(back), text);
  EXPECT_EQ(nlohmann::json::parse(text)["format"], 1);
}

// Applies `edit` to the sample's JSON and expects BaselineFromJson to refuse it with a
// message containing `reason` (and the name of the input).
template <typename Edit>
void ExpectRefused(Edit edit, const std::string& reason) {
  nlohmann::json doc = nlohmann::json::parse(BaselineToJson(Sample()));
  edit(doc);
  try {
    BaselineFromJson(doc.dump(), "b.json");
    ADD_FAILURE() << "accepted: " << reason;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("b.json: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
  }
}

TEST(DriftBaseline, MalformedDocumentsAreRefusedWithClearErrors) {
  using J = nlohmann::json;
  ExpectRefused([](J& d) { d["format"] = 2; }, "format");
  ExpectRefused([](J& d) { d.erase("format"); }, "missing \"format\"");
  ExpectRefused([](J& d) { d["extra"] = 1; }, "unknown key \"extra\"");
  ExpectRefused([](J& d) { d["classes"] = 0; }, "\"classes\"");
  ExpectRefused([](J& d) { d["images"] = 0; }, "0 images");
  ExpectRefused([](J& d) { d["images"] = -3; }, "non-negative integer");
  ExpectRefused([](J& d) { d["conf"] = 2; }, "\"conf\"");
  ExpectRefused([](J& d) { d["features"].erase("brightness"); }, "\"features\"");
  ExpectRefused([](J& d) { d["features"]["brightness"]["edges"][0] = 47; }, "bin edges differ");
  ExpectRefused([](J& d) { d["features"]["brightness"]["counts"].push_back(0); }, "array of 5");
  ExpectRefused([](J& d) { d["features"]["brightness"]["counts"][0] = 1.5; }, "non-negative");
  ExpectRefused([](J& d) { d["features"]["brightness"]["counts"][0] = 99; }, "expected 20");
  ExpectRefused([](J& d) { d["features"]["class"]["counts"][0] = 999; }, "\"boxes\" total");
  ExpectRefused([](J& d) { d["features"]["class"]["x"] = 1; }, "unknown key \"x\"");
  ExpectRefused([](J& d) { d = J::array(); }, "JSON object");
  EXPECT_THROW(BaselineFromJson("{", "b.json"), Error);
  EXPECT_THROW(BaselineFromJson(std::string(100, '[') + std::string(100, ']'), "b.json"), Error);
  EXPECT_THROW(ReadBaseline("/nonexistent/baseline.json"), Error);
}

TEST(DriftServerConfig, DriftObjectParsesAndValidates) {
  const auto parse = [](const std::string& text) {
    return server::ParseModelConfig(nlohmann::json::parse(text), "config.json");
  };
  const server::ModelConfig c =
      parse(R"({"drift": {"baseline": "b.json", "window": 50, "warn": 0.2, "alert": 0.5}})");
  EXPECT_EQ(c.drift.baseline, "b.json");
  EXPECT_EQ(c.drift.window, 50);
  EXPECT_EQ(c.drift.warn, 0.2);
  EXPECT_EQ(c.drift.alert, 0.5);
  EXPECT_EQ(parse("{}").drift.window, 1000);
  EXPECT_FALSE(c.LoadsAlike(parse("{}")));  // a changed drift object reloads the version
  for (const char* bad :
       {R"({"drift": 1})", R"({"drift": {"baseline": ""}})", R"({"drift": {"window": 0}})",
        R"({"drift": {"warn": 0.5, "alert": 0.2}})", R"({"drift": {"alert": -1}})",
        R"({"drift": {"thresholds": 1}})"}) {
    EXPECT_THROW(parse(bad), Error) << bad;
  }
}

TEST(DriftServerConfig, RelativeBaselineIsRelativeToTheModelDirectory) {
  const std::string dir = std::filesystem::temp_directory_path() / "cvdeploy-drift-config-test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << R"({"drift": {"baseline": "base/b.json"}})";
  EXPECT_EQ(server::ReadModelConfig(dir).drift.baseline, dir + "/base/b.json");
  std::ofstream(dir + "/config.json") << R"({"drift": {"baseline": "/abs/b.json"}})";
  EXPECT_EQ(server::ReadModelConfig(dir).drift.baseline, "/abs/b.json");
  std::filesystem::remove_all(dir);
}

TEST(DriftRoutes, DriftReportIsModelMonitoring) {
  const server::RouteClass r = server::ClassifyRoute("GET", "/v1/models/yolo/drift");
  ASSERT_TRUE(r.group.has_value());
  EXPECT_EQ(*r.group, security::RouteGroup::kMonitor);
  EXPECT_EQ(r.model, "yolo");
  EXPECT_FALSE(server::ClassifyRoute("GET", "/v1/models//drift").group.has_value());
  EXPECT_EQ(cli::ExitCodeOf(cli::Outcome::kDriftAlert), 8);
}

}  // namespace
}  // namespace cvdeploy::drift
