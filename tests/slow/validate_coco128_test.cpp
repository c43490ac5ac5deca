// SPDX-License-Identifier: Apache-2.0
// `cvdeploy validate` on the 86 labelled coco128 images reproduces independently measured
// box mAP50-95 (imgsz 640, conf 0.001, IoU 0.7): yolov8n-dq 0.421, yolo11n-dq 0.456 (± 0.01).
// The references come from the assets MANIFEST: an OpenCV 4.6 pipeline with one class per
// box and COCO-style (confidence-ordered) matching, the defaults of `cvdeploy validate`.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "support/assets.h"
#include "support/process.h"

namespace cvdeploy {
namespace {

using cvdeploy::testing::Asset;

nlohmann::json Validate(const std::string& model) {
  const std::string out = cvdeploy::testing::MakeTempDir("validate") + "/metrics.json";
  const auto run = cvdeploy::testing::RunCli({"validate", "--model", Asset("models/" + model),
                                              "--data", Asset("datasets/coco128"), "--imgsz", "640",
                                              "--conf", "0.001", "--iou", "0.7", "--json", out});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  // The table names every class present and the overall row.
  EXPECT_NE(run.out.find("all"), std::string::npos);
  EXPECT_NE(run.out.find("person"), std::string::npos);
  std::ifstream in(out);
  return nlohmann::json::parse(in);
}

void ExpectConsistent(const nlohmann::json& j) {
  EXPECT_EQ(j["images"], 86);
  EXPECT_EQ(j["instances"], 678);
  EXPECT_GT(j["map50"].get<double>(), j["map50_95"].get<double>());
  for (const char* key : {"precision", "recall"}) {
    EXPECT_GT(j[key].get<double>(), 0.3) << key;
    EXPECT_LT(j[key].get<double>(), 1.0) << key;
  }
  EXPECT_GT(j["per_class"].size(), 50u);
  for (const char* key : {"decode", "preprocess", "inference", "postprocess"}) {
    EXPECT_TRUE(j["speed_ms"].contains(key)) << key;
  }
}

TEST(ValidateCoco128Test, Yolov8n) {
  const auto j = Validate("yolov8n-dq.onnx");
  ExpectConsistent(j);
  EXPECT_NEAR(j["map50_95"].get<double>(), 0.421, 0.01);
  EXPECT_NEAR(j["map50"].get<double>(), 0.562, 0.015);
}

TEST(ValidateCoco128Test, Yolo11n) {
  const auto j = Validate("yolo11n-dq.onnx");
  ExpectConsistent(j);
  EXPECT_NEAR(j["map50_95"].get<double>(), 0.456, 0.01);
  EXPECT_NEAR(j["map50"].get<double>(), 0.622, 0.015);
}

}  // namespace
}  // namespace cvdeploy
