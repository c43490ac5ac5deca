// SPDX-License-Identifier: Apache-2.0
// Issue 16: --rect/--no-rect and --spin on predict, validate, bench and serve (usage errors:
// exit 2, one line naming the flag), the bench sweep's spin and rect axes, and the server's
// rect setting (--no-rect, config.json "rect", CVDEPLOY_NO_RECT) on a converted model.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/assets.h"
#include "support/process.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;

// The sample yolov8n-dq converted with --dynamic-shape, once per test binary.
const std::string& DynamicModel() {
  static const std::string path = [] {
    const std::string out = MakeTempDir("rect-spin") + "/v8-dynamic.onnx";
    const ProcessResult run = RunCli({"convert", "--model", Asset("models/yolov8n-dq.onnx"),
                                      "--output", out, "--dynamic-shape"});
    if (run.exit_code != 0) throw std::runtime_error("convert failed: " + run.err);
    return out;
  }();
  return path;
}

TEST(CliRectSpinTest, BadSpinValueIsAUsageErrorNamingTheFlag) {
  const std::string model = Asset("models/yolov8n-dq.onnx");
  const std::string bus = Asset("images/bus.jpg");
  ExpectCliError({"predict", "--model", model, "--source", bus, "--spin", "fast"}, 2, "--spin");
  ExpectCliError({"validate", "--model", model, "--data", Asset("datasets/coco128"), "--spin", "1"},
                 2, "--spin");
  ExpectCliError({"bench", "--model", model, "--iters", "1", "--spin", "yes"}, 2, "--spin");
  ExpectCliError({"serve", "--model", model, "--port", "0", "--spin", "maybe"}, 2, "--spin");
}

TEST(CliRectSpinTest, BadGraphOptValueIsAUsageErrorNamingTheFlag) {
  const std::string model = Asset("models/yolov8n-dq.onnx");
  const std::string bus = Asset("images/bus.jpg");
  ExpectCliError({"predict", "--model", model, "--source", bus, "--graph-opt", "max"}, 2,
                 "--graph-opt");
  ExpectCliError(
      {"validate", "--model", model, "--data", Asset("datasets/coco128"), "--graph-opt", "3"}, 2,
      "--graph-opt");
  ExpectCliError({"bench", "--model", model, "--iters", "1", "--graph-opt", "none"}, 2,
                 "--graph-opt");
  ExpectCliError({"serve", "--model", model, "--port", "0", "--graph-opt", "fast"}, 2,
                 "--graph-opt");
  ExpectCliError({"bench", "--model", model, "--iters", "1", "--sweep", "graph_opt=all,ludicrous"},
                 2, "graph_opt");
}

TEST(CliRectSpinTest, BenchSweepsGraphOptimizationLevels) {
  const std::string json = MakeTempDir("graph-opt-bench") + "/bench.json";
  const ProcessResult run = RunCli({"bench", "--model", Asset("models/yolov8n-dq.onnx"), "--source",
                                    Asset("images/bus.jpg"), "--warmup", "0", "--iters", "1",
                                    "--sweep", "graph_opt=disable,all", "--json", json});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::ifstream in(json);
  const nlohmann::json report = nlohmann::json::parse(in);
  ASSERT_EQ(report["results"].size(), 2u);
  EXPECT_EQ(report["results"][0]["graph_opt"], "disable");
  EXPECT_EQ(report["results"][1]["graph_opt"], "all");
  EXPECT_NE(run.err.find("graph_opt=disable"), std::string::npos) << run.err;
}

TEST(CliRectSpinTest, RectAndNoRectExcludeEachOther) {
  const std::string model = Asset("models/yolov8n-dq.onnx");
  const std::string bus = Asset("images/bus.jpg");
  ExpectCliError({"predict", "--model", model, "--source", bus, "--rect", "--no-rect"}, 2,
                 "--rect");
  ExpectCliError(
      {"validate", "--model", model, "--data", Asset("datasets/coco128"), "--no-rect", "--rect"}, 2,
      "--rect");
  ExpectCliError({"bench", "--model", model, "--iters", "1", "--rect", "--no-rect"}, 2, "--rect");
  ExpectCliError({"serve", "--model", model, "--port", "0", "--rect", "--no-rect"}, 2, "--rect");
  ExpectCliError({"predict", "--model", model, "--source", bus, "--rect=perhaps"}, 2, "--rect");
  ExpectCliError({"bench", "--model", model, "--iters", "1", "--sweep", "rect=on,sideways"}, 2,
                 "rect");
  ExpectCliError({"bench", "--model", model, "--iters", "1", "--sweep", "spin=auto,fast"}, 2,
                 "spin");
}

TEST(CliRectSpinTest, FixedModelIgnoresRectAndBothSpinsWork) {
  // The sample model has a fixed 640x640 input: --rect and --no-rect give the same result,
  // without a warning; --spin on and off both run.
  const std::string model = Asset("models/yolov8n-dq.onnx");
  const std::string bus = Asset("images/bus.jpg");
  const ProcessResult rect =
      RunCli({"predict", "--model", model, "--source", bus, "--json", "-", "--spin", "on"});
  const ProcessResult square = RunCli(
      {"predict", "--model", model, "--source", bus, "--json", "-", "--no-rect", "--spin", "off"});
  ASSERT_EQ(rect.exit_code, 0) << rect.err;
  ASSERT_EQ(square.exit_code, 0) << square.err;
  EXPECT_EQ(rect.err, "");
  const auto a = ParseJsonLines(rect.out), b = ParseJsonLines(square.out);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a[0]["detections"], b[0]["detections"]);
}

TEST(CliRectSpinTest, BenchSweepsSpinAndRect) {
  const std::string json = MakeTempDir("rect-spin-bench") + "/bench.json";
  const ProcessResult run =
      RunCli({"bench", "--model", DynamicModel(), "--source", Asset("images/bus.jpg"), "--warmup",
              "0", "--iters", "1", "--sweep", "spin=on,off;rect=on,off", "--json", json});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::ifstream in(json);
  const nlohmann::json report = nlohmann::json::parse(in);
  ASSERT_EQ(report["results"].size(), 4u);
  std::vector<std::string> seen;
  for (const auto& r : report["results"]) {
    seen.push_back(r["spin"].get<std::string>() + (r["rect"].get<bool>() ? "+rect" : "+square"));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"on+rect", "on+square", "off+rect", "off+square"}));
  EXPECT_NE(run.err.find("spin=on rect=on"), std::string::npos) << run.err;
}

// The model's metadata reports whether the image endpoint letterboxes rect.
bool ServedRect(int port, const std::string& model) {
  const HttpReply r = Http(port, "GET", "/v2/models/" + model);
  if (r.status != 200) throw std::runtime_error("metadata of " + model + ": " + r.body);
  return nlohmann::json::parse(r.body)["parameters"]["rect"].get<bool>();
}

nlohmann::json Predict(int port, const std::string& model, const std::string& query = "") {
  const HttpReply r = Http(port, "POST", "/v1/models/" + model + "/predict" + query,
                           ReadFileText(Asset("images/bus.jpg")), {{"Content-Type", "image/jpeg"}});
  if (r.status != 200) throw std::runtime_error("predict on " + model + ": " + r.body);
  return nlohmann::json::parse(r.body);
}

TEST(ServerRectTest, ConfigJsonFlagAndEnvironmentChooseTheLetterbox) {
  // A repository with the converted model twice: "rect" (no config: the server default) and
  // "square" (config.json "rect": false), plus the fixed-size sample (never rect).
  const std::string repo = MakeTempDir("rect-spin-repo");
  for (const char* name : {"rect", "square", "fixed"}) {
    fs::create_directories(repo + "/" + name + "/1");
    fs::copy_file(std::string(name) == "fixed" ? Asset("models/yolov8n-dq.onnx") : DynamicModel(),
                  repo + "/" + name + "/1/model.onnx");
  }
  std::ofstream(repo + "/square/config.json") << R"({"rect": false, "warmup": 1})";
  std::ofstream(repo + "/rect/config.json") << R"({"warmup": 1})";
  {
    ServerProcess server({"--model-repository", repo, "--threads", "1", "--spin", "off"});
    ASSERT_TRUE(server.WaitReady());
    EXPECT_TRUE(ServedRect(server.port(), "rect"));
    EXPECT_FALSE(ServedRect(server.port(), "square"));
    EXPECT_FALSE(ServedRect(server.port(), "fixed"));
    // The same graph either way: the rect and square letterboxes find the same bus and
    // people; rect=0 as a query parameter gives the square path's answer exactly.
    const nlohmann::json rect = Predict(server.port(), "rect");
    const nlohmann::json square = Predict(server.port(), "square");
    const nlohmann::json rect_as_square = Predict(server.port(), "rect", "?rect=0");
    EXPECT_EQ(rect_as_square["detections"], square["detections"]);
    EXPECT_NE(rect["detections"], square["detections"]);
    ASSERT_FALSE(rect["detections"].empty());
    EXPECT_EQ(rect["detections"][0]["class_name"], square["detections"][0]["class_name"]);
  }
  {
    // --no-rect through the environment (every serve flag is CVDEPLOY_<FLAG>): the model
    // without "rect" in its config follows it; config.json still wins where it is set.
    std::ofstream(repo + "/square/config.json") << R"({"rect": true, "warmup": 1})";
    ServerLaunch launch;
    launch.env["CVDEPLOY_NO_RECT"] = "true";
    ServerProcess server({"--model-repository", repo, "--threads", "1"}, launch);
    ASSERT_TRUE(server.WaitReady());
    EXPECT_FALSE(ServedRect(server.port(), "rect"));
    EXPECT_TRUE(ServedRect(server.port(), "square"));
  }
  fs::remove_all(repo);
}

TEST(ServerGraphOptTest, ConfigJsonAndFlagChooseTheLevel) {
  // "a" follows the server's --graph-opt, "b" sets its own in config.json; the model metadata
  // reports what each version's engine session was given, and both predict.
  const std::string repo = MakeTempDir("graph-opt-repo");
  for (const char* name : {"a", "b"}) {
    fs::create_directories(repo + "/" + name + "/1");
    fs::copy_file(Asset("models/yolov8n-dq.onnx"), repo + "/" + name + "/1/model.onnx");
  }
  std::ofstream(repo + "/a/config.json") << R"({"warmup": 1})";
  std::ofstream(repo + "/b/config.json") << R"({"graph_optimization": "disable", "warmup": 1})";
  ServerProcess server({"--model-repository", repo, "--threads", "1", "--graph-opt", "extended"});
  ASSERT_TRUE(server.WaitReady());
  for (const auto& [name, level] : {std::pair<std::string, std::string>{"a", "extended"},
                                    std::pair<std::string, std::string>{"b", "disable"}}) {
    const HttpReply r = Http(server.port(), "GET", "/v2/models/" + name);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(nlohmann::json::parse(r.body)["parameters"]["graph_optimization"], level) << name;
    EXPECT_FALSE(Predict(server.port(), name)["detections"].empty()) << name;
  }
  fs::remove_all(repo);
}

TEST(ServerRectTest, BadRectInConfigIsRefused) {
  const std::string repo = MakeTempDir("rect-spin-badcfg");
  fs::create_directories(repo + "/m/1");
  fs::copy_file(Asset("models/yolov8n-dq.onnx"), repo + "/m/1/model.onnx");
  std::ofstream(repo + "/m/config.json") << R"({"rect": "yes"})";
  const ProcessResult run = RunProcess(
      CliBinary(), {"serve", "--model-repository", repo, "--port", "0", "--threads", "1"}, "", 60);
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_NE(run.err.find("\"rect\" must be true or false"), std::string::npos) << run.err;
  fs::remove_all(repo);
}

}  // namespace
}  // namespace cvdeploy::testing
