// SPDX-License-Identifier: Apache-2.0
// The CLI's happy paths: JSON Lines fields, directories, globs, videos, annotated output,
// info. Error paths are in cli_errors_test.cpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <sstream>

#include "support/assets.h"
#include "support/fixtures.h"
#include "support/process.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;
using cvdeploy::testing::Asset;
using cvdeploy::testing::ParseJsonLines;
using cvdeploy::testing::RunCli;

TEST(CliPredictTest, JsonLinesToStdoutHaveTheDocumentedFields) {
  const auto run = RunCli({"predict", "--model", Asset("models/yolov8n-dq.onnx"), "--source",
                           Asset("images/bus.jpg"), Asset("images/zidane.jpg"), "--json", "-"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto lines = ParseJsonLines(run.out);
  ASSERT_EQ(lines.size(), 2u);
  const auto& bus = lines[0];
  EXPECT_EQ(bus["source"], Asset("images/bus.jpg"));
  EXPECT_EQ(bus["width"], 810);
  EXPECT_EQ(bus["height"], 1080);
  EXPECT_EQ(bus["task"], "detect");
  ASSERT_EQ(bus["detections"].size(), 5u);
  for (const auto& d : bus["detections"]) {
    for (const char* key : {"class_id", "class_name", "confidence", "box"})
      EXPECT_TRUE(d.contains(key)) << key;
    for (const char* key : {"x1", "y1", "x2", "y2"}) EXPECT_TRUE(d["box"].contains(key)) << key;
  }
  for (const char* key : {"decode", "preprocess", "inference", "postprocess"}) {
    EXPECT_GT(bus["speed_ms"][key].get<double>(), 0.0) << key;
  }
  EXPECT_FALSE(bus.contains("frame"));
}

TEST(CliPredictTest, ClassFilterAgnosticAndThresholdFlags) {
  const auto run =
      RunCli({"predict", "--model", Asset("models/yolov8n-dq.onnx"), "--source",
              Asset("images/bus.jpg"), "--classes", "5", "--conf", "0.5", "--max-det", "10",
              "--agnostic-nms", "--iou", "0.6", "--threads", "1", "--json", "-"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto lines = ParseJsonLines(run.out);
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_EQ(lines[0]["detections"].size(), 1u);
  EXPECT_EQ(lines[0]["detections"][0]["class_name"], "bus");
}

TEST(CliPredictTest, DirectoryGlobAndSaveDir) {
  const std::string out = cvdeploy::testing::MakeTempDir("cli-dir");
  const std::string json = out + "/dets.jsonl";
  const auto run = RunCli({"predict", "--model", Asset("models/yolo11n-dq.onnx"), "--source",
                           Asset("images"), "--save-dir", out + "/annotated", "--json", json});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // Human summary on stdout, one line per image, plus where results went.
  EXPECT_NE(run.out.find("bus.jpg 810x1080"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("annotated results saved to"), std::string::npos);
  for (const char* name : {"bus.jpg", "zidane.jpg"}) {
    const cv::Mat annotated = cv::imread(out + "/annotated/" + name);
    const cv::Mat original = cv::imread(Asset(std::string("images/") + name));
    ASSERT_FALSE(annotated.empty()) << name;
    ASSERT_EQ(annotated.size(), original.size());
    EXPECT_GT(cv::norm(annotated, original, cv::NORM_L1), 0.0) << "nothing drawn on " << name;
  }
  std::ifstream in(json);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(ParseJsonLines(text.str()).size(), 2u);

  const auto glob = RunCli({"predict", "--model", Asset("models/yolo11n-dq.onnx"), "--source",
                            Asset("images") + "/z*.jpg", "--json", "-"});
  ASSERT_EQ(glob.exit_code, 0) << glob.err;
  const auto lines = ParseJsonLines(glob.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["source"], Asset("images/zidane.jpg"));
}

TEST(CliPredictTest, VideoFramesAndAnnotatedVideo) {
  const std::string dir = cvdeploy::testing::MakeTempDir("cli-video");
  const std::string video =
      cvdeploy::testing::WriteVideo(dir, "clip.avi", 4, cv::Mat(), cv::Size(320, 240));
  const auto run = RunCli({"predict", "--model", Asset("models/yolo11n-dq.onnx"), "--source", video,
                           "--vid-stride", "2", "--save-dir", dir + "/out", "--json", "-"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto lines = ParseJsonLines(run.out);
  ASSERT_EQ(lines.size(), 2u);  // frames 0 and 2 of 4
  EXPECT_EQ(lines[0]["frame"], 0);
  EXPECT_EQ(lines[1]["frame"], 2);
  EXPECT_EQ(lines[0]["width"], 320);
  EXPECT_GT(lines[0]["detections"].size(), 0u);  // the bus scene, downscaled
  std::string written;
  for (const auto& e : fs::directory_iterator(dir + "/out")) written = e.path().string();
  ASSERT_FALSE(written.empty());
  cv::VideoCapture cap(written);
  ASSERT_TRUE(cap.isOpened()) << written;
  int frames = 0;
  cv::Mat frame;
  while (cap.read(frame)) ++frames;
  EXPECT_EQ(frames, 2);
}

TEST(CliPredictTest, SegmentAndPoseJsonExtras) {
  const auto seg = RunCli({"predict", "--model", Asset("models/yolov8n-seg-dq.onnx"), "--source",
                           Asset("images/zidane.jpg"), "--json", "-"});
  ASSERT_EQ(seg.exit_code, 0) << seg.err;
  const auto s = ParseJsonLines(seg.out).at(0);
  EXPECT_EQ(s["task"], "segment");
  for (const auto& d : s["detections"]) EXPECT_GE(d["polygon"].size(), 3u);

  // --retina-masks: the same detections, masks cropped at full resolution, so the outlines
  // differ somewhere but stay close.
  const auto retina = RunCli({"predict", "--model", Asset("models/yolov8n-seg-dq.onnx"), "--source",
                              Asset("images/zidane.jpg"), "--json", "-", "--retina-masks"});
  ASSERT_EQ(retina.exit_code, 0) << retina.err;
  const auto rs = ParseJsonLines(retina.out).at(0);
  ASSERT_EQ(rs["detections"].size(), s["detections"].size());
  bool any_differs = false;
  for (size_t k = 0; k < rs["detections"].size(); ++k) {
    EXPECT_EQ(rs["detections"][k]["box"], s["detections"][k]["box"]);
    EXPECT_GE(rs["detections"][k]["polygon"].size(), 3u);
    any_differs = any_differs || rs["detections"][k]["polygon"] != s["detections"][k]["polygon"];
  }
  EXPECT_TRUE(any_differs);

  const auto pose = RunCli({"predict", "--model", Asset("models/yolo11n-pose-dq.onnx"), "--source",
                            Asset("images/zidane.jpg"), "--json", "-"});
  ASSERT_EQ(pose.exit_code, 0) << pose.err;
  const auto p = ParseJsonLines(pose.out).at(0);
  EXPECT_EQ(p["task"], "pose");
  int hidden = 0;
  for (const auto& d : p["detections"]) {
    ASSERT_EQ(d["keypoints"].size(), 17u);
    ASSERT_EQ(d["keypoints_raw"].size(), 17u);
    EXPECT_EQ(d["keypoints"][0].size(), 3u);
    // Ultralytics' rule: conf < 0.5 is reported at (0, 0); the raw point keeps the model's.
    for (size_t k = 0; k < 17; ++k) {
      const auto& shown = d["keypoints"][k];
      const auto& raw = d["keypoints_raw"][k];
      EXPECT_EQ(shown[2], raw[2]);
      if (raw[2].get<double>() < 0.5) {
        ++hidden;
        EXPECT_EQ(shown[0], 0.0);
        EXPECT_EQ(shown[1], 0.0);
      } else {
        EXPECT_EQ(shown, raw);
      }
    }
  }
  EXPECT_GT(hidden, 0) << "zidane has occluded joints (legs below the frame)";
}

TEST(CliInfoTest, TextAndJson) {
  const auto text = RunCli({"info", Asset("models/yolo11n-pose-dq.onnx")});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("task       pose"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("keypoints  17 x 3"), std::string::npos);
  EXPECT_NE(text.out.find("bfd92efe03858ce9b4b1724b52b2b9b8d2a928548b1154bb5dac4b01e1fa9ded"),
            std::string::npos);

  const auto json = RunCli({"info", Asset("models/yolov8n-seg-dq.onnx"), "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["model"]["task"], "segment");
  EXPECT_EQ(j["model"]["names"].size(), 80u);
  EXPECT_EQ(j["outputs"].size(), 2u);
  EXPECT_EQ(j["outputs"][1]["shape"], (std::vector<int>{1, 32, 160, 160}));
  EXPECT_EQ(j["opsets"]["ai.onnx"], 17);
  EXPECT_EQ(j["metadata"]["author"], "Ultralytics");

  const auto dq = RunCli({"info", Asset("models/yolov8n_int8.onnx")});
  ASSERT_EQ(dq.exit_code, 0);
  EXPECT_NE(dq.err.find("dynamic quantization"), std::string::npos) << dq.err;
}

TEST(CliPredictTest, SaveWithoutSaveDirIncrementsRunsPredictAndNeverOverwrites) {
  // Two sources named bus.jpg (different directories): bus.jpg and bus_2.jpg, not one
  // silently overwriting the other; --save without --save-dir: runs/predict, then predict2.
  const std::string dir = cvdeploy::testing::MakeTempDir("cli-save-runs");
  fs::create_directories(dir + "/a");
  fs::create_directories(dir + "/b");
  fs::copy_file(Asset("images/bus.jpg"), dir + "/a/bus.jpg");
  fs::copy_file(Asset("images/zidane.jpg"), dir + "/b/bus.jpg");
  for (const char* run_dir : {"runs/predict", "runs/predict2"}) {
    const auto run = RunCli({"predict", "--model", Asset("models/yolo11n-dq.onnx"), "--source",
                             dir + "/a/bus.jpg", dir + "/b/bus.jpg", "--save", "--quiet"},
                            dir);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_NE(run.out.find(std::string("annotated results saved to ") + run_dir), std::string::npos)
        << run.out;
    // --quiet: no per-image lines.
    EXPECT_EQ(run.out.find("810x1080"), std::string::npos) << run.out;
    const cv::Mat first = cv::imread(dir + "/" + run_dir + "/bus.jpg");
    const cv::Mat second = cv::imread(dir + "/" + run_dir + "/bus_2.jpg");
    ASSERT_FALSE(first.empty()) << run_dir;
    ASSERT_FALSE(second.empty()) << run_dir;
    EXPECT_EQ(first.size(), cv::Size(810, 1080));   // a/bus.jpg is the bus
    EXPECT_EQ(second.size(), cv::Size(1280, 720));  // b/bus.jpg is zidane
  }
  EXPECT_FALSE(fs::exists(dir + "/runs/predict3"));
  // Without --save nothing is written (the old default holds).
  const auto plain = RunCli(
      {"predict", "--model", Asset("models/yolo11n-dq.onnx"), "--source", dir + "/a/bus.jpg"}, dir);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_FALSE(fs::exists(dir + "/runs/predict3"));
}

}  // namespace
}  // namespace cvdeploy
