// SPDX-License-Identifier: Apache-2.0
// `cvdeploy convert --dynamic-batch` on the sample models: the converted file describes a
// dynamic batch, and a batch of images run through it gets, image by image, the detections
// the original model gives each image alone. Error paths: exit codes 2/3 and one stderr line.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "support/assets.h"
#include "support/process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;

float IoU(const BoxXYXY& a, const BoxXYXY& b) {
  const BoxXYXY i{std::max(a.x1, b.x1), std::max(a.y1, b.y1), std::min(a.x2, b.x2),
                  std::min(a.y2, b.y2)};
  const float inter = i.Area();
  return inter / std::max(1e-6f, a.Area() + b.Area() - inter);
}

// Each detection of `single` has a same-class partner in `batched` with IoU > 0.9 and about
// the same confidence, and neither side has extra detections.
void ExpectSameDetections(const Result& single, const Result& batched) {
  ASSERT_EQ(single.detections.size(), batched.detections.size());
  std::vector<bool> used(batched.detections.size(), false);
  for (const Detection& d : single.detections) {
    int best = -1;
    float best_iou = 0.9f;
    for (size_t j = 0; j < batched.detections.size(); ++j) {
      const Detection& e = batched.detections[j];
      if (used[j] || e.class_id != d.class_id) continue;
      if (const float iou = IoU(d.box, e.box); iou > best_iou)
        best = static_cast<int>(j), best_iou = iou;
    }
    ASSERT_GE(best, 0) << "no batched match for " << d.class_name << " " << d.confidence;
    used[best] = true;
    const Detection& e = batched.detections[best];
    EXPECT_NEAR(e.confidence, d.confidence, 1e-3) << d.class_name;
    ASSERT_EQ(e.keypoints.size(), d.keypoints.size());
    for (size_t k = 0; k < d.keypoints.size(); ++k) {
      EXPECT_NEAR(e.keypoints[k].x, d.keypoints[k].x, 1.0);
      EXPECT_NEAR(e.keypoints[k].y, d.keypoints[k].y, 1.0);
    }
    EXPECT_EQ(e.mask.empty(), d.mask.empty());
  }
}

class CliConvertTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dir_ = new std::string(MakeTempDir("cli-convert")); }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
    conversions_.clear();
  }

  static std::string OutputFor(const std::string& stem) { return *dir_ + "/" + stem + "-dyn.onnx"; }

  // Converts models/<stem>.onnx once per test binary.
  static const ProcessResult& Convert(const std::string& stem) {
    auto it = conversions_.find(stem);
    if (it == conversions_.end()) {
      const std::vector<std::string> args = {
          "convert",  "--model",       Asset("models/" + stem + ".onnx"),
          "--output", OutputFor(stem), "--dynamic-batch"};
      it = conversions_.emplace(stem, RunCli(args)).first;
    }
    return it->second;
  }

  static ProcessResult ExpectError(const std::vector<std::string>& args, int code,
                                   const std::string& names) {
    return ExpectCliError(args, code, names, *dir_);
  }

  static void ExpectNoLeftovers() {
    for (const auto& entry : fs::directory_iterator(*dir_)) {
      EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos)
          << "temporary file left behind: " << entry.path();
    }
  }

  static std::string* dir_;
  static std::map<std::string, ProcessResult> conversions_;
};

std::string* CliConvertTest::dir_ = nullptr;
std::map<std::string, ProcessResult> CliConvertTest::conversions_;

class CliConvertModelTest : public CliConvertTest,
                            public ::testing::WithParamInterface<const char*> {};

TEST_P(CliConvertModelTest, ReportsTheRewriteAndInfoShowsADynamicBatch) {
  const std::string stem = GetParam();
  const ProcessResult& run = Convert(stem);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(run.err, "");
  EXPECT_NE(run.out.find("input      images [batch, 3, 640, 640]"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("Reshape node(s) targeting [1, ...]"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("verified   ONNX Runtime, batch 3"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("wrote      " + OutputFor(stem)), std::string::npos) << run.out;

  const ProcessResult info = RunCli({"info", OutputFor(stem)});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("batch      dynamic"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("input      images float32 [batch, 3, 640, 640]"), std::string::npos)
      << info.out;
  EXPECT_NE(info.out.find("output     output0 float32 [batch, "), std::string::npos) << info.out;
  ExpectNoLeftovers();
}

TEST_P(CliConvertModelTest, BatchedPredictionMatchesTheOriginalImageByImage) {
  const std::string stem = GetParam();
  ASSERT_EQ(Convert(stem).exit_code, 0) << Convert(stem).err;
  SessionOptions options;
  options.intra_op_threads = 1;
  const auto original = Predictor::Load(Asset("models/" + stem + ".onnx"), options);
  const auto converted = Predictor::Load(OutputFor(stem), options);
  EXPECT_EQ(original->meta().batch, 1);
  EXPECT_EQ(converted->meta().batch, -1);
  EXPECT_EQ(converted->meta().task, original->meta().task);
  EXPECT_EQ(converted->meta().names, original->meta().names);

  const std::vector<cv::Mat> images = {ReadImage(Asset("images/bus.jpg")),
                                       ReadImage(Asset("images/zidane.jpg"))};
  const std::vector<Result> batched =
      converted->PredictBatch({images[0], images[1], images[0], images[1]});
  ASSERT_EQ(batched.size(), 4u);
  for (size_t i = 0; i < images.size(); ++i) {
    const Result single = original->Predict(images[i]);
    EXPECT_FALSE(single.detections.empty());
    for (size_t slot = i; slot < batched.size(); slot += 2) {
      SCOPED_TRACE(stem + " image " + std::to_string(i) + " slot " + std::to_string(slot));
      EXPECT_EQ(batched[slot].width, images[i].cols);
      ExpectSameDetections(single, batched[slot]);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(SampleModels, CliConvertModelTest,
                         ::testing::Values("yolov8n-dq", "yolo11n-dq", "yolov8n-seg-dq",
                                           "yolo11n-pose-dq"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST_F(CliConvertTest, DynamicallyQuantizedModelConvertsWithABatchDependenceWarning) {
  // DynamicQuantizeLinear computes one scale over the whole batch: the rewrite is exact for
  // identical items, but batch-mates change an image's outputs, and the user is told so.
  const ProcessResult& run = Convert("yolo11n_int8_320");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("input      images [batch, 3, 320, 320]"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("DynamicQuantizeLinear node(s) compute one scale over the whole batch"),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("verified   ONNX Runtime, batch 2 of one input"), std::string::npos)
      << run.out;
  EXPECT_NE(run.err.find("warning: outputs depend on the other images of a batch"),
            std::string::npos)
      << run.err;
}

TEST_F(CliConvertTest, MissingInputIsBadInput) {
  const std::string missing = *dir_ + "/no_such_model.onnx";
  ExpectError({"convert", "--model", missing, "--output", *dir_ + "/out.onnx", "--dynamic-batch"},
              3, "no_such_model.onnx");
  EXPECT_FALSE(fs::exists(*dir_ + "/out.onnx"));
}

TEST_F(CliConvertTest, NonOnnxInputIsBadInput) {
  const std::string image = Asset("images/bus.jpg");
  const ProcessResult run = ExpectError(
      {"convert", "--model", image, "--output", *dir_ + "/bus.onnx", "--dynamic-batch"}, 3, image);
  EXPECT_NE(run.err.find("not a valid ONNX model"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(*dir_ + "/bus.onnx"));
  ExpectNoLeftovers();
}

TEST_F(CliConvertTest, AlreadyDynamicModelIsRefused) {
  ASSERT_EQ(Convert("yolov8n-dq").exit_code, 0);
  const std::string input = OutputFor("yolov8n-dq");
  const ProcessResult run = ExpectError(
      {"convert", "--model", input, "-o", *dir_ + "/twice.onnx", "--dynamic-batch"}, 3, input);
  EXPECT_NE(run.err.find("cannot make the batch axis dynamic: input 'images' already has a "
                         "dynamic batch axis ('batch')"),
            std::string::npos)
      << run.err;
  EXPECT_FALSE(fs::exists(*dir_ + "/twice.onnx"));
  ExpectNoLeftovers();
}

TEST_F(CliConvertTest, OutputEqualToInputIsAUsageError) {
  const std::string model = Asset("models/yolov8n-dq.onnx");
  const std::string same = Asset("models/../models/yolov8n-dq.onnx");
  ExpectError({"convert", "--model", model, "--output", same, "--dynamic-batch"}, 2,
              "is the input model");
}

TEST_F(CliConvertTest, NoConversionFlagIsAUsageError) {
  ExpectError(
      {"convert", "--model", Asset("models/yolov8n-dq.onnx"), "--output", *dir_ + "/nothing.onnx"},
      2, "--dynamic-batch");
  EXPECT_FALSE(fs::exists(*dir_ + "/nothing.onnx"));
}

TEST_F(CliConvertTest, MissingOutputOptionIsAUsageError) {
  ExpectError({"convert", "--model", Asset("models/yolov8n-dq.onnx"), "--dynamic-batch"}, 2,
              "--output");
}

TEST_F(CliConvertTest, OutputUnderAFileIsAUsageError) {
  // A missing directory is created (cli_datasets_test); one that cannot be is a usage error.
  std::ofstream(*dir_ + "/plain") << "x";
  ExpectError({"convert", "--model", Asset("models/yolov8n-dq.onnx"), "--output",
               *dir_ + "/plain/dir/out.onnx", "--dynamic-batch"},
              2, "cannot create directory");
}

}  // namespace
}  // namespace cvdeploy::testing
