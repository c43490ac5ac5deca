// SPDX-License-Identifier: Apache-2.0
// Accuracy of `cvdeploy fp16` on the 86 labelled coco128 images (imgsz 640, conf 0.001,
// IoU 0.7): box mAP50-95 within 0.003 of the float32 model, for the float16 model as ONNX
// Runtime's CPU provider runs it and for the --emulate model, which rounds every float16
// tensor as a GPU provider would store it (the CPU provider computes most float16 nodes in
// float32, so only the emulation shows float16 activations' effect).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/assets.h"
#include "support/process.h"

namespace cvdeploy {
namespace {

using cvdeploy::testing::Asset;
using cvdeploy::testing::DescribeRun;
using cvdeploy::testing::RunCli;

constexpr double kMaxMapDrop = 0.003;

double Map50_95(const std::string& model) {
  const std::string out = cvdeploy::testing::MakeTempDir("fp16_map") + "/metrics.json";
  const std::vector<std::string> args = {
      "validate", "--model", model,    "--data", Asset("datasets/coco128"), "--conf", "0.001",
      "--iou",    "0.7",     "--json", out};
  const auto run = RunCli(args);
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  std::ifstream in(out);
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["images"], 86);
  return j["map50_95"].get<double>();
}

std::string Convert(const std::string& model, const std::vector<std::string>& extra) {
  const std::string out = cvdeploy::testing::MakeTempDir("fp16_map") + "/model.onnx";
  std::vector<std::string> args = {"fp16", "--model", model, "--out", out};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto run = RunCli(args);
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  return out;
}

void ExpectWithinFloat(const std::string& name) {
  const std::string model = Asset("models/" + name);
  const double reference = Map50_95(model);
  const double half = Map50_95(Convert(model, {}));
  const double emulated = Map50_95(Convert(model, {"--emulate"}));
  std::printf("%s mAP50-95: float32 %.4f, float16 %.4f, float16 emulated %.4f\n", name.c_str(),
              reference, half, emulated);
  EXPECT_LE(std::fabs(half - reference), kMaxMapDrop);
  EXPECT_LE(std::fabs(emulated - reference), kMaxMapDrop);
}

TEST(Fp16Map, YoloV8n) { ExpectWithinFloat("yolov8n-dq.onnx"); }

TEST(Fp16Map, Yolo11n) { ExpectWithinFloat("yolo11n-dq.onnx"); }

}  // namespace
}  // namespace cvdeploy
