// SPDX-License-Identifier: Apache-2.0
// Ultralytics-format outputs from the CLI: predict --save-txt/--save-conf/--save-crop (images,
// video frames, pose), the drawing flags, and validate --save-json checked against predict's
// JSON for the same image.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "cvdeploy/export.h"
#include "support/assets.h"
#include "support/fixtures.h"
#include "support/process.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;
using cvdeploy::testing::Asset;
using cvdeploy::testing::ParseJsonLines;
using cvdeploy::testing::RunCli;

std::vector<std::vector<double>> ReadLabelFile(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<double>> rows;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::vector<double> row;
    for (double v; fields >> v;) row.push_back(v);
    rows.push_back(row);
  }
  return rows;
}

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> files;
  if (!fs::exists(dir)) return files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(fs::relative(e.path(), dir).string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(CliOutputsTest, SaveTxtConfAndCropMatchThePredictJson) {
  const std::string dir = testing::MakeTempDir("outputs-detect");
  const auto run = RunCli({"predict", "--model", Asset("models/yolov8n-dq.onnx"), "--source",
                           Asset("images/bus.jpg"), "--save-dir", dir, "--save-txt", "--save-conf",
                           "--save-crop", "--json", dir + "/pred.jsonl"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::ifstream json_in(dir + "/pred.jsonl");
  std::stringstream json_text;
  json_text << json_in.rdbuf();
  const auto result = ParseJsonLines(json_text.str()).at(0);
  const auto& dets = result["detections"];
  ASSERT_EQ(dets.size(), 5u);
  const auto rows = ReadLabelFile(dir + "/labels/bus.txt");
  ASSERT_EQ(rows.size(), dets.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 6u) << i;  // class cx cy w h conf
    const auto& b = dets[i]["box"];
    const double x1 = b["x1"], y1 = b["y1"], x2 = b["x2"], y2 = b["y2"];
    EXPECT_EQ(rows[i][0], dets[i]["class_id"].get<int>());
    // The JSON rounds boxes to 0.1 px: 0.1 / 810 < 2e-4.
    EXPECT_NEAR(rows[i][1], (x1 + x2) / 2 / 810, 2e-4) << i;
    EXPECT_NEAR(rows[i][2], (y1 + y2) / 2 / 1080, 2e-4) << i;
    EXPECT_NEAR(rows[i][3], (x2 - x1) / 810, 2e-4) << i;
    EXPECT_NEAR(rows[i][4], (y2 - y1) / 1080, 2e-4) << i;
    EXPECT_NEAR(rows[i][5], dets[i]["confidence"].get<double>(), 1e-4) << i;
  }
  // 4 persons and 1 bus: crops/person/bus.jpg, bus2.jpg, ... in detection order.
  EXPECT_EQ(FilesUnder(dir + "/crops"),
            std::vector<std::string>({"bus/bus.jpg", "person/bus.jpg", "person/bus2.jpg",
                                      "person/bus3.jpg", "person/bus4.jpg"}));
  int person = 0;
  for (const auto& d : dets) {
    const std::string name = d["class_name"];
    std::string file = dir + "/crops/" + name + "/bus";
    if (name == "person" && ++person > 1) file += std::to_string(person);
    const cv::Mat crop = cv::imread(file + ".jpg");
    ASSERT_FALSE(crop.empty()) << file;
    const cv::Rect rect = CropRect({d["box"]["x1"], d["box"]["y1"], d["box"]["x2"], d["box"]["y2"]},
                                   cv::Size(810, 1080));
    EXPECT_NEAR(crop.cols, rect.width, 1) << file;  // JSON boxes are rounded to 0.1 px
    EXPECT_NEAR(crop.rows, rect.height, 1) << file;
  }
  // The annotated image is still written beside them.
  EXPECT_TRUE(fs::exists(dir + "/bus.jpg"));
}

TEST(CliOutputsTest, SaveTxtWithoutConfAndPoseKeypoints) {
  const std::string dir = testing::MakeTempDir("outputs-pose");
  const auto run = RunCli({"predict", "--model", Asset("models/yolo11n-pose-dq.onnx"), "--source",
                           Asset("images/zidane.jpg"), "--save-dir", dir, "--save-txt"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto rows = ReadLabelFile(dir + "/labels/zidane.txt");
  ASSERT_GE(rows.size(), 2u);
  for (const auto& row : rows) {
    ASSERT_EQ(row.size(), 5u + 17 * 3);  // class, box, 17 x (x, y, v); no conf
    for (size_t k = 0; k < 17; ++k) {
      const double x = row[5 + 3 * k], y = row[6 + 3 * k], v = row[7 + 3 * k];
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0);
      if (v < 0.5) {
        EXPECT_EQ(x, 0.0);  // hidden points are zeroed, as Ultralytics' Keypoints
        EXPECT_EQ(y, 0.0);
      } else {
        EXPECT_GT(x, 0.0);
        EXPECT_LE(x, 1.0);
      }
    }
  }
  EXPECT_FALSE(fs::exists(dir + "/crops"));  // not asked for
}

TEST(CliOutputsTest, VideoFramesGetStemUnderscoreFrameNumber) {
  const std::string dir = testing::MakeTempDir("outputs-video");
  const std::string video = testing::WriteVideo(dir, "clip.avi", 5, cv::Mat(), cv::Size(320, 240));
  const auto run =
      RunCli({"predict", "--model", Asset("models/yolo11n-dq.onnx"), "--source", video,
              "--vid-stride", "2", "--save-dir", dir + "/out", "--save-txt", "--save-crop"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // Frames 0, 2, 4 are processed: Ultralytics counts processed frames, 1-based.
  EXPECT_EQ(FilesUnder(dir + "/out/labels"),
            std::vector<std::string>({"clip_1.txt", "clip_2.txt", "clip_3.txt"}));
  EXPECT_TRUE(fs::exists(dir + "/out/crops/bus/clip_1.jpg"));
  EXPECT_TRUE(fs::exists(dir + "/out/crops/bus/clip_3.jpg"));
  for (const char* name : {"clip_1.txt", "clip_2.txt", "clip_3.txt"}) {
    const auto rows = ReadLabelFile(dir + "/out/labels/" + name);
    EXPECT_FALSE(rows.empty()) << name;
    for (const auto& row : rows) EXPECT_EQ(row.size(), 5u) << name;
  }
}

TEST(CliOutputsTest, WithoutSaveDirExportsGoToTheRunDirectory) {
  // As Ultralytics' save_dir: runs/predict, then runs/predict2, ...
  const std::string cwd = testing::MakeTempDir("outputs-rundir");
  for (int i = 0; i < 2; ++i) {
    const auto run = RunCli({"predict", "--model", Asset("models/yolov8n-dq.onnx"), "--source",
                             Asset("images/bus.jpg"), "--save-txt", "--save-crop"},
                            cwd);
    ASSERT_EQ(run.exit_code, 0) << run.err;
  }
  EXPECT_EQ(ReadLabelFile(cwd + "/runs/predict/labels/bus.txt").size(), 5u);
  EXPECT_EQ(ReadLabelFile(cwd + "/runs/predict2/labels/bus.txt").size(), 5u);
  EXPECT_TRUE(fs::exists(cwd + "/runs/predict2/crops/bus/bus.jpg"));
  testing::ExpectCliError({"predict", "--model", Asset("models/yolov8n-dq.onnx"), "--source",
                           Asset("images/bus.jpg"), "--line-width", "0"},
                          2, "--line-width");
}

TEST(CliOutputsTest, DrawingFlagsChangeTheAnnotatedImage) {
  const std::string dir = testing::MakeTempDir("outputs-draw");
  auto draw = [&](const std::string& name, std::vector<std::string> flags) {
    std::vector<std::string> args = {"predict",
                                     "--model",
                                     Asset("models/yolov8n-dq.onnx"),
                                     "--source",
                                     Asset("images/bus.jpg"),
                                     "--save-dir",
                                     dir + "/" + name,
                                     "--classes",
                                     "5"};
    args.insert(args.end(), flags.begin(), flags.end());
    const auto run = RunCli(args);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    const cv::Mat img = cv::imread(dir + "/" + name + "/bus.jpg");
    EXPECT_FALSE(img.empty());
    return img;
  };
  const cv::Mat plain = cv::imread(Asset("images/bus.jpg"));
  const cv::Mat normal = draw("normal", {});
  const cv::Mat wide = draw("wide", {"--line-width", "12"});
  const cv::Mat no_labels = draw("no-labels", {"--hide-labels"});
  const cv::Mat no_conf = draw("no-conf", {"--hide-conf"});
  auto changed = [&](const cv::Mat& img, cv::Rect roi) {
    cv::Mat diff, gray;
    cv::absdiff(img(roi), plain(roi), diff);
    cv::cvtColor(diff, gray, cv::COLOR_BGR2GRAY);
    return cv::countNonZero(gray > 60);  // JPEG noise stays below this
  };
  // The bus box's left edge is near x = 18..30 at y = 600; its tag above y ~ 230.
  const cv::Rect edge(0, 550, 80, 100), tag(0, 180, 810, 45);
  EXPECT_GT(changed(wide, edge), 2 * changed(normal, edge));
  EXPECT_GT(changed(normal, tag), 500);
  EXPECT_LT(changed(no_labels, tag), changed(normal, tag) / 5);
  EXPECT_LT(changed(no_conf, tag), changed(normal, tag));
  EXPECT_GT(changed(no_conf, tag), changed(no_labels, tag));
}

TEST(CliOutputsTest, ValidateSaveJsonMatchesPredictBoxes) {
  // A YOLO dataset of bus.jpg under a numeric name (image_id 42) and zidane.jpg.
  const std::string dir = testing::MakeTempDir("outputs-savejson");
  fs::create_directories(dir + "/data/images");
  fs::create_directories(dir + "/data/labels");
  fs::copy_file(Asset("images/bus.jpg"), dir + "/data/images/000000000042.jpg");
  fs::copy_file(Asset("images/zidane.jpg"), dir + "/data/images/zidane.jpg");
  std::ofstream(dir + "/data/labels/000000000042.txt") << "5 0.5 0.45 0.95 0.5\n";
  std::ofstream(dir + "/data/labels/zidane.txt") << "0 0.7 0.55 0.3 0.9\n";
  const auto val = RunCli({"validate", "--model", Asset("models/yolov8n-dq.onnx"), "--data",
                           dir + "/data", "--conf", "0.25", "--save-json", dir + "/preds.json"});
  ASSERT_EQ(val.exit_code, 0) << val.err;
  std::ifstream in(dir + "/preds.json");
  const auto preds = nlohmann::json::parse(in);
  ASSERT_TRUE(preds.is_array());

  const auto pred = RunCli({"predict", "--model", Asset("models/yolov8n-dq.onnx"), "--source",
                            dir + "/data/images/000000000042.jpg", dir + "/data/images/zidane.jpg",
                            "--conf", "0.25", "--json", "-"});
  ASSERT_EQ(pred.exit_code, 0) << pred.err;
  const auto lines = ParseJsonLines(pred.out);
  ASSERT_EQ(lines.size(), 2u);
  const size_t total = lines[0]["detections"].size() + lines[1]["detections"].size();
  EXPECT_EQ(preds.size(), total);
  EXPECT_NE(val.out.find(std::to_string(total) + " predictions saved to " + dir + "/preds.json"),
            std::string::npos)
      << val.out;
  // COCO ids for the COCO-80 names: person 1, bus 6; boxes [x, y, w, h] in pixels.
  size_t matched = 0;
  for (const auto& line : lines) {
    const bool bus_image =
        line["source"].get<std::string>().find("000000000042") != std::string::npos;
    for (const auto& d : line["detections"]) {
      const double x1 = d["box"]["x1"], y1 = d["box"]["y1"], x2 = d["box"]["x2"],
                   y2 = d["box"]["y2"];
      for (const auto& p : preds) {
        if (bus_image ? p["image_id"] != 42 : p["image_id"] != "zidane") continue;
        if (std::abs(p["score"].get<double>() - d["confidence"].get<double>()) > 1e-4) continue;
        EXPECT_EQ(p["file_name"], bus_image ? "000000000042.jpg" : "zidane.jpg");
        const int cls = d["class_id"];
        // COCO's 91-id numbering: person 1, bus 6, tie 32 (class 27).
        const std::map<int, int> coco91 = {{0, 1}, {5, 6}, {27, 32}};
        ASSERT_TRUE(coco91.count(cls)) << cls;
        EXPECT_EQ(p["category_id"], coco91.at(cls));
        EXPECT_NEAR(p["bbox"][0].get<double>(), x1, 0.06);
        EXPECT_NEAR(p["bbox"][1].get<double>(), y1, 0.06);
        EXPECT_NEAR(p["bbox"][2].get<double>(), x2 - x1, 0.11);
        EXPECT_NEAR(p["bbox"][3].get<double>(), y2 - y1, 0.11);
        ++matched;
        break;
      }
    }
  }
  EXPECT_EQ(matched, total);
}

}  // namespace
}  // namespace cvdeploy
