// SPDX-License-Identifier: Apache-2.0
// `cvdeploy compare` with the real models on a few images: a model against itself agrees
// fully, a deliberately broken copy fails the gate (exit 6), two different models give
// sensible figures, mAP equals what `validate` prints, and the error paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/file_util.h"
#include "model/onnx_model.h"
#include "support/assets.h"
#include "support/process.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;
using cvdeploy::testing::Asset;
using cvdeploy::testing::CocoStems;
using cvdeploy::testing::DescribeRun;
using cvdeploy::testing::MakeTempDir;
using cvdeploy::testing::RunCli;

// The first `n` labelled coco128 images (sorted), as names without extension.
// bus.jpg, zidane.jpg and 4 coco128 images in one directory (built once per test binary).
const std::string& SourceDir() {
  static const std::string dir = [] {
    const std::string d = MakeTempDir("compare-src");
    fs::copy_file(Asset("images/bus.jpg"), d + "/bus.jpg");
    fs::copy_file(Asset("images/zidane.jpg"), d + "/zidane.jpg");
    for (const std::string& stem : CocoStems(4)) {
      fs::copy_file(Asset("datasets/coco128/images/" + stem + ".jpg"), d + "/" + stem + ".jpg");
    }
    return d;
  }();
  return dir;
}

// yolov8n-dq with the weights of its first Conv negated: a model that loads and runs but is
// broken, as a bad conversion would leave it.
const std::string& BrokenModel() {
  static const std::string path = [] {
    onnx::ModelProto model = optimize::LoadModel(Asset("models/yolov8n-dq.onnx"));
    onnx::GraphProto* graph = model.mutable_graph();
    std::string weight;
    for (const onnx::NodeProto& node : graph->node()) {
      if (node.op_type() == "Conv") {
        weight = node.input(1);
        break;
      }
    }
    bool changed = false;
    for (onnx::TensorProto& init : *graph->mutable_initializer()) {
      if (init.name() != weight) continue;
      std::vector<float> values = optimize::FloatData(init);
      for (float& v : values) v = -v;
      init = optimize::FloatTensor(init.name(), {init.dims().begin(), init.dims().end()}, values);
      changed = true;
    }
    if (!changed) throw std::runtime_error("no Conv weight initializer found in yolov8n-dq");
    const std::string out = MakeTempDir("compare-broken") + "/yolov8n-broken.onnx";
    core::WriteFileAtomically(out, optimize::SerializeModel(model));
    return out;
  }();
  return path;
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

size_t Lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }

TEST(CliCompareTest, ModelAgainstItselfAgreesFully) {
  const std::string json = MakeTempDir("compare-self") + "/report.json";
  const std::vector<std::string> args = {"compare",
                                         "--model",
                                         Asset("models/yolov8n-dq.onnx"),
                                         "--model",
                                         Asset("models/yolov8n-dq.onnx"),
                                         "--source",
                                         SourceDir(),
                                         "--json",
                                         json};
  const auto run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  EXPECT_NE(run.out.find("PASS"), std::string::npos) << run.out;
  const nlohmann::json j = ReadJson(json);
  EXPECT_EQ(j["images"], 6);
  EXPECT_EQ(j["models"].size(), 2u);
  EXPECT_TRUE(j["passed"].get<bool>());
  EXPECT_DOUBLE_EQ(j["min_agreement"].get<double>(), 0.95);
  ASSERT_EQ(j["outputs"].size(), 1u);
  const auto& out = j["outputs"][0];
  EXPECT_EQ(out["name"], "output0");
  ASSERT_TRUE(out["compared"].get<bool>()) << out.dump();
  EXPECT_EQ(out["max_abs_error"].get<double>(), 0.0);
  EXPECT_EQ(out["mean_abs_error"].get<double>(), 0.0);
  EXPECT_GT(out["max_abs_a"].get<double>(), 100.0);  // box coordinates in 640-pixel units
  EXPECT_EQ(out["elements"], 84 * 8400 * 6);
  const auto& det = j["detections"];
  EXPECT_GT(det["a_total"].get<int>(), 10);
  EXPECT_EQ(det["a_total"], det["b_total"]);
  EXPECT_EQ(det["matched"], det["a_total"]);
  EXPECT_DOUBLE_EQ(det["agreement"].get<double>(), 1.0);
  EXPECT_EQ(det["conf_delta_max"].get<double>(), 0.0);
  EXPECT_EQ(det["images_all_matched"], 6);
  EXPECT_FALSE(j.contains("map"));  // no labels with --source
  for (const char* side : {"a", "b"}) {
    EXPECT_GT(j["speed"][side]["inference_ms"]["mean"].get<double>(), 0.0);
    EXPECT_GE(j["speed"][side]["end_to_end_ms"]["p50"].get<double>(),
              j["speed"][side]["inference_ms"]["p50"].get<double>());
  }

  // The detections counted are the ones `predict` gives at the band's upper edge (conf 0.25 +
  // the default --conf-band 0.05; they are decoded from the same raw outputs with the same
  // postprocessing, and a detection below 0.3 never suppresses one above it in NMS).
  const auto predict = RunCli({"predict", "--model", Asset("models/yolov8n-dq.onnx"), "--source",
                               SourceDir(), "--conf", "0.3", "--json", "-"});
  ASSERT_EQ(predict.exit_code, 0) << predict.err;
  std::istringstream lines(predict.out);
  size_t detections = 0;
  for (std::string line; std::getline(lines, line);) {
    detections += nlohmann::json::parse(line)["detections"].size();
  }
  EXPECT_EQ(det["a_total"].get<size_t>(), detections);
}

TEST(CliCompareTest, BrokenModelFailsTheGateAndStillWritesTheReport) {
  const std::string json = MakeTempDir("compare-broken-run") + "/report.json";
  const std::vector<std::string> args = {
      "compare",   "--model",     Asset("models/yolov8n-dq.onnx"),
      "--model",   BrokenModel(), "--source",
      SourceDir(), "--json",      json};
  const auto run = RunCli(args);
  EXPECT_EQ(run.exit_code, 6) << DescribeRun(args, run);
  EXPECT_EQ(Lines(run.err), 1u) << run.err;
  EXPECT_NE(run.err.find("below --min-agreement 95.0%"), std::string::npos) << run.err;
  EXPECT_NE(run.out.find("FAIL"), std::string::npos) << run.out;
  const nlohmann::json j = ReadJson(json);
  EXPECT_FALSE(j["passed"].get<bool>());
  EXPECT_LT(j["detections"]["agreement"].get<double>(), 0.95);
  EXPECT_GT(j["outputs"][0]["max_abs_error"].get<double>(), 1.0);
  // A looser gate lets the same comparison pass.
  auto loose = args;
  loose.insert(loose.end(), {"--min-agreement", "0"});
  EXPECT_EQ(RunCli(loose).exit_code, 0);
}

TEST(CliCompareTest, DifferentModelsGiveSensibleFigures) {
  const std::vector<std::string> args = {"compare",
                                         "--model",
                                         Asset("models/yolov8n-dq.onnx"),
                                         "--model",
                                         Asset("models/yolo11n-dq.onnx"),
                                         "--source",
                                         SourceDir(),
                                         "--min-agreement",
                                         "0",
                                         "--match-iou",
                                         "0.9",
                                         "--json",
                                         "-"};
  const auto run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  const nlohmann::json j = nlohmann::json::parse(run.out);  // '-': stdout holds only the JSON
  const auto& out = j["outputs"][0];
  ASSERT_TRUE(out["compared"].get<bool>());
  const double max_err = out["max_abs_error"], mean_err = out["mean_abs_error"];
  EXPECT_GT(mean_err, 0.0);
  EXPECT_LT(mean_err, max_err);
  EXPECT_LE(max_err, 1000.0);  // boxes live in a 640-pixel input
  ASSERT_EQ(out["parts"].size(), 2u);
  EXPECT_EQ(out["parts"][0]["name"], "boxes");
  EXPECT_EQ(out["parts"][1]["name"], "scores");
  EXPECT_LE(out["parts"][1]["max_abs_error"].get<double>(), 1.0);  // sigmoid scores
  EXPECT_LE(out["parts"][1]["max_abs_a"].get<double>(), 1.0);
  const auto& det = j["detections"];
  // Two good detectors agree on the obvious objects but not box for box at IoU 0.9.
  EXPECT_GT(det["agreement"].get<double>(), 0.2);
  EXPECT_LT(det["agreement"].get<double>(), 1.0);
  EXPECT_GT(det["conf_delta_max"].get<double>(), 0.0);
  EXPECT_LE(det["conf_delta_max"].get<double>(), 1.0);
  EXPECT_GE(det["iou_min"].get<double>(), 0.9);
  EXPECT_TRUE(j["passed"].get<bool>());
}

TEST(CliCompareTest, DifferentInputSizesSkipTheRawComparison) {
  const std::vector<std::string> args = {"compare",
                                         "--model",
                                         Asset("models/yolov8n-dq.onnx"),
                                         "--model",
                                         Asset("models/yolo11n_int8_320.onnx"),
                                         "--source",
                                         Asset("images/bus.jpg"),
                                         "--min-agreement",
                                         "0",
                                         "--json",
                                         "-"};
  const auto run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  const nlohmann::json j = nlohmann::json::parse(run.out);
  ASSERT_EQ(j["outputs"].size(), 1u);
  EXPECT_FALSE(j["outputs"][0]["compared"].get<bool>());
  EXPECT_NE(j["outputs"][0]["skipped"].get<std::string>().find("inputs differ"), std::string::npos)
      << j["outputs"][0].dump();
  EXPECT_GT(j["detections"]["a_total"].get<int>(), 0);
  EXPECT_GT(j["detections"]["b_total"].get<int>(), 0);
}

TEST(CliCompareTest, OneModelOnTwoDevices) {
  const std::vector<std::string> args = {
      "compare", "--model",  Asset("models/yolov8n-dq.onnx"), "--device",  "cpu", "--device",
      "cpu",     "--source", Asset("images/zidane.jpg"),      "--threads", "1",   "--json",
      "-"};
  const auto run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  const nlohmann::json j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j["models"][0]["path"], j["models"][1]["path"]);
  EXPECT_EQ(j["models"][1]["device"], "cpu");
  EXPECT_EQ(j["models"][0]["threads"], 1);
  EXPECT_DOUBLE_EQ(j["detections"]["agreement"].get<double>(), 1.0);
}

TEST(CliCompareTest, MapEqualsWhatValidatePrints) {
  const std::string data = MakeTempDir("compare-data");
  fs::create_directories(data + "/images");
  fs::create_directories(data + "/labels");
  const std::string coco = Asset("datasets/coco128");
  for (const std::string& stem : CocoStems(5)) {
    fs::copy_file(coco + "/images/" + stem + ".jpg", data + "/images/" + stem + ".jpg");
    fs::copy_file(coco + "/labels/" + stem + ".txt", data + "/labels/" + stem + ".txt");
  }
  const std::string v8 = Asset("models/yolov8n-dq.onnx"), v11 = Asset("models/yolo11n-dq.onnx");
  const std::vector<std::string> args = {"compare", "--model", v8,   "--model",
                                         v11,       "--data",  data, "--min-agreement",
                                         "0",       "--json",  "-"};
  const auto run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  const nlohmann::json j = nlohmann::json::parse(run.out);
  ASSERT_TRUE(j.contains("map")) << run.out;
  EXPECT_EQ(j["images"], 5);
  for (const auto& [side, model] : {std::pair{"a", v8}, std::pair{"b", v11}}) {
    const auto validate = RunCli({"validate", "--model", model, "--data", data, "--json", "-"});
    ASSERT_EQ(validate.exit_code, 0) << validate.err;
    const nlohmann::json v = nlohmann::json::parse(validate.out);
    EXPECT_NEAR(j["map"][side]["map50"].get<double>(), v["map50"].get<double>(), 1e-9) << side;
    EXPECT_NEAR(j["map"][side]["map50_95"].get<double>(), v["map50_95"].get<double>(), 1e-9)
        << side;
    EXPECT_GT(v["map50_95"].get<double>(), 0.1) << side;
  }
  EXPECT_NE(j["map"]["a"]["map50_95"], j["map"]["b"]["map50_95"]);

  // The human table shows both mAPs.
  const auto text =
      RunCli({"compare", "--model", v8, "--model", v8, "--data", data, "--max-images", "2"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("mAP50-95"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("2 images"), std::string::npos) << text.out;
}

void ExpectError(const std::vector<std::string>& args, int code, const std::string& needle) {
  testing::ExpectCliError(args, code, needle);
}

TEST(CliCompareTest, ErrorPaths) {
  const std::string v8 = Asset("models/yolov8n-dq.onnx");
  const std::string bus = Asset("images/bus.jpg");
  // One model on one device: nothing to compare.
  ExpectError({"compare", "--model", v8, "--source", bus}, 2, "nothing to compare");
  ExpectError({"compare", "--model", v8, "--device", "cpu", "--source", bus}, 2,
              "nothing to compare");
  ExpectError({"compare", "--model", v8, "--model", v8, "--model", v8, "--source", bus}, 2,
              "one or two --model");
  ExpectError({"compare", "--model", v8, "--model", v8}, 2, "--data DIR");
  ExpectError({"compare", "--model", v8, "--model", v8, "--source", bus, "--data", bus}, 2,
              "excludes");
  // Missing model.
  ExpectError({"compare", "--model", v8, "--model", "/nonexistent/model.onnx", "--source", bus}, 3,
              "/nonexistent/model.onnx");
  // Not a model.
  ExpectError({"compare", "--model", v8, "--model", bus, "--source", bus}, 3, bus);
  // Unreadable image directory, and one with no images.
  ExpectError({"compare", "--model", v8, "--model", v8, "--source", "/nonexistent/images"}, 3,
              "/nonexistent/images");
  const std::string empty = MakeTempDir("compare-empty");
  ExpectError({"compare", "--model", v8, "--model", v8, "--source", empty}, 3, empty);
  ExpectError({"compare", "--model", v8, "--model", v8, "--data", empty}, 3, empty);
  // --min-agreement outside [0, 1].
  ExpectError({"compare", "--model", v8, "--model", v8, "--source", bus, "--min-agreement", "1.5"},
              2, "--min-agreement");
  ExpectError({"compare", "--model", v8, "--model", v8, "--source", bus, "--min-agreement", "-0.1"},
              2, "--min-agreement");
  ExpectError({"compare", "--model", v8, "--model", v8, "--source", bus, "--match-iou", "2"}, 2,
              "--match-iou");
  // Unknown device.
  ExpectError({"compare", "--model", v8, "--device", "cpu", "--device", "tpu", "--source", bus}, 2,
              "tpu");
  // --json where a directory cannot be created (a file is in the way); a missing directory
  // is created (cli_datasets_test).
  ExpectError({"compare", "--model", v8, "--model", v8, "--source", bus, "--json",
               bus + "/dir/report.json"},
              2, bus + "/dir/report.json");
}

}  // namespace
}  // namespace cvdeploy
