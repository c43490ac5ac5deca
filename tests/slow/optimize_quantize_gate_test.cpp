// SPDX-License-Identifier: Apache-2.0
// Accuracy of `cvdeploy quantize` on coco128 and its accuracy gate:
// - yolov8n-dq calibrated on 32 images keeps mAP50-95 within 0.02 of float (86 images);
// - a deliberately harsh setting (the Conv on the image quantized with 8-bit weights: bright
//   pixels saturate the int16 pair sums of the u8s8 kernels on x86 CPUs without VNNI)
//   loses far more; the gate finds the layers that cause it, returns them to float and
//   reports them (on CPUs with VNNI nothing saturates, so the gate is given a limit below the
//   fully quantized drop instead);
// - when the limit cannot be met the command exits 5 and writes nothing, unless --force.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cvdeploy/eval.h"
#include "cvdeploy/predictor.h"
#include "model/onnx_model.h"
#include "support/assets.h"
#include "support/process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> SortedImages() {
  std::vector<fs::path> images;
  for (const auto& e : fs::directory_iterator(Asset("datasets/coco128/images"))) {
    images.push_back(e.path());
  }
  std::sort(images.begin(), images.end());
  return images;
}

// The first `n` coco128 images (copies: the dataset loader pairs labels by relative path).
std::string Subset(int n, bool with_labels) {
  const fs::path dir = MakeTempDir("quant_subset");
  const fs::path labels = Asset("datasets/coco128/labels");
  fs::create_directories(dir / "images");
  if (with_labels) fs::create_directories(dir / "labels");
  const auto images = SortedImages();
  for (int i = 0; i < n && i < static_cast<int>(images.size()); ++i) {
    fs::copy_file(images[i], dir / "images" / images[i].filename());
    const fs::path label = (labels / images[i].filename()).replace_extension(".txt");
    if (with_labels && fs::exists(label)) {
      fs::copy_file(label, dir / "labels" / label.filename());
    }
  }
  return with_labels ? dir.string() : (dir / "images").string();
}

double MapOf(const std::string& model, const Dataset& dataset) {
  auto predictor = Predictor::Load(model);
  PredictOptions options;
  options.conf = 0.001f;
  return ValidateModel(*predictor, dataset, options).report.box.map50_95;
}

class QuantizeGateTest : public ::testing::Test {
 protected:
  // One 32-image calibration, saved, serves every test.
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("quant_gate"));
    val_ = new std::string(Subset(32, true));
    const std::vector<std::string> args = {"quantize",
                                           "--model",
                                           Asset("models/yolov8n-dq.onnx"),
                                           "--calib",
                                           Subset(32, false),
                                           "--out",
                                           *dir_ + "/v8_int8.onnx",
                                           "--save-calibration",
                                           *dir_ + "/v8_calib32.json"};
    first_ = new ProcessResult(RunCli(args));
    first_description_ = new std::string(DescribeRun(args, *first_));
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete val_;
    delete first_;
    delete first_description_;
  }
  void SetUp() override { ASSERT_EQ(first_->exit_code, 0) << *first_description_; }
  static std::string* dir_;
  static std::string* val_;
  static ProcessResult* first_;
  static std::string* first_description_;
};
std::string* QuantizeGateTest::dir_ = nullptr;
std::string* QuantizeGateTest::val_ = nullptr;
ProcessResult* QuantizeGateTest::first_ = nullptr;
std::string* QuantizeGateTest::first_description_ = nullptr;

TEST_F(QuantizeGateTest, Yolov8nKeepsMapWithin002On32CalibrationImages) {
  const std::string out = *dir_ + "/v8_int8.onnx";
  EXPECT_NO_THROW(optimize::CheckModel(optimize::LoadModel(out), out));

  const Dataset coco = LoadYoloDataset(Asset("datasets/coco128"));
  const double f = MapOf(Asset("models/yolov8n-dq.onnx"), coco);
  const double q = MapOf(out, coco);
  EXPECT_GT(f, 0.40);
  EXPECT_LE(f - q, 0.02) << "float " << f << ", int8 " << q;
}

// ONNX Runtime's u8s8 kernels saturate int16 pair sums only on x86 CPUs without VNNI
// (AVX2): with AVX512-VNNI, AVX-VNNI or AMX the products are summed in int32, so the harsh
// setting loses little and nothing saturates.
bool CpuHasVnni() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    line += ' ';
    return line.find(" avx512_vnni ") != std::string::npos ||
           line.find(" avx_vnni ") != std::string::npos ||
           line.find(" amx_int8 ") != std::string::npos;
  }
  return false;
}

// The text after `marker` up to the end of its line, or "" when absent.
std::string LineAfter(const std::string& text, const std::string& marker) {
  const size_t at = text.find(marker);
  if (at == std::string::npos) return "";
  const size_t from = at + marker.size();
  return text.substr(from, text.find('\n', from) - from);
}

// Runs the gated quantization of yolov8n (first Conv quantized too) with `max_map_drop`.
ProcessResult RunGate(const std::string& dir, const std::string& val, const std::string& out,
                      const std::string& max_map_drop, std::vector<std::string>* args) {
  *args = {"quantize",
           "--model",
           Asset("models/yolov8n-dq.onnx"),
           "--load-calibration",
           dir + "/v8_calib32.json",
           "--out",
           out,
           "--quantize-input-conv",
           "--val",
           val,
           "--max-map-drop",
           max_map_drop};
  return RunCli(*args);
}

TEST_F(QuantizeGateTest, GateReturnsTheSaturatingLayersToFloat) {
  const std::string out = *dir_ + "/v8_gated.onnx";
  std::vector<std::string> args;
  ProcessResult run = RunGate(*dir_, *val_, out, "0.02", &args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  double limit = 0.02;
  if (!CpuHasVnni()) {
    // The saturation is in the first Conv (pixels near 255 times large weights): the gate
    // must have found it and named it.
    const std::string kept = LineAfter(run.out, "layers kept float: ");
    EXPECT_EQ(kept.find("none"), std::string::npos) << run.out;
    EXPECT_NE(kept.find("/model.0/conv/Conv"), std::string::npos) << run.out;
  } else {
    // Nothing saturates: the fully quantized model is within 0.02 and the gate keeps nothing.
    ASSERT_EQ(LineAfter(run.out, "layers kept float: "), "none") << run.out;
    // Exercise the gate with a limit of half the fully quantized drop ("drop 0.0116").
    const std::string accuracy = LineAfter(run.out, "(drop ");
    ASSERT_FALSE(accuracy.empty()) << run.out;
    const double drop = std::stod(accuracy);
    ASSERT_GT(drop, 0.002) << "too small a drop to halve: " << run.out;
    limit = drop / 2;
    run = RunGate(*dir_, *val_, out, std::to_string(limit), &args);
    ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
    const std::string kept = LineAfter(run.out, "layers kept float: ");
    EXPECT_FALSE(kept.empty()) << run.out;
    EXPECT_EQ(kept.find("none"), std::string::npos) << run.out;
  }
  EXPECT_NE(run.out.find("fully quantized: mAP50-95"), std::string::npos) << run.out;
  ASSERT_TRUE(fs::exists(out));
  const auto record = optimize::OptimizationRecord(optimize::LoadModel(out)).back();
  EXPECT_FALSE(record["float_layers"].empty());
  EXPECT_LE(record["map50_95_float"].get<double>() - record["map50_95_int8"].get<double>(),
            limit + 1e-9);
}

TEST_F(QuantizeGateTest, UnreachableLimitExitsFiveAndWritesOnlyWithForce) {
  const std::string calib = *dir_ + "/v8_calib32.json";
  const std::string out = *dir_ + "/v8_unreachable.onnx";
  std::vector<std::string> args = {"quantize",
                                   "--model",
                                   Asset("models/yolov8n-dq.onnx"),
                                   "--load-calibration",
                                   calib,
                                   "--out",
                                   out,
                                   "--per-tensor",
                                   "--quantize-input-conv",
                                   "--val",
                                   *val_,
                                   "--max-map-drop",
                                   "0",
                                   "--max-float-layers",
                                   "1"};
  const ProcessResult refused = RunCli(args);
  EXPECT_EQ(refused.exit_code, 5) << DescribeRun(args, refused);
  EXPECT_NE(refused.err.find("exceeds --max-map-drop"), std::string::npos) << refused.err;
  EXPECT_FALSE(fs::exists(out));

  args.push_back("--force");
  const ProcessResult forced = RunCli(args);
  EXPECT_EQ(forced.exit_code, 5) << DescribeRun(args, forced);
  EXPECT_TRUE(fs::exists(out));
  EXPECT_NO_THROW(optimize::CheckModel(optimize::LoadModel(out), out));
}

}  // namespace
}  // namespace cvdeploy::testing
