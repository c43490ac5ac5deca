// SPDX-License-Identifier: Apache-2.0
// `cvdeploy fp16` on the sample models: what the produced file holds (types, names, shapes,
// metadata, record), that it runs and detects what the float32 model detects on bus.jpg for
// every task, the float16-io variant, and the error paths with their exit codes. The
// mAP check over coco128 lives in tests/slow/optimize_fp16_map_test.cpp.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "model/onnx_model.h"
#include "support/assets.h"
#include "support/process.h"

namespace cvdeploy {
namespace {

using testing::Asset;
using testing::DescribeRun;
using testing::MakeTempDir;
using testing::RunCli;

constexpr int kFloat = onnx::TensorProto::FLOAT;
constexpr int kHalf = onnx::TensorProto::FLOAT16;

std::string Convert(const std::string& model, const std::vector<std::string>& extra = {},
                    testing::ProcessResult* result = nullptr) {
  const std::string out = MakeTempDir("fp16") + "/model_fp16.onnx";
  std::vector<std::string> args = {"fp16", "--model", Asset("models/" + model), "--out", out};
  args.insert(args.end(), extra.begin(), extra.end());
  const testing::ProcessResult run = RunCli(args);
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  if (result) *result = run;
  return out;
}

int ElemType(const google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>& list,
             const std::string& name) {
  for (const auto& v : list) {
    if (v.name() == name) return v.type().tensor_type().elem_type();
  }
  return -1;
}

std::vector<int64_t> Dims(const onnx::ValueInfoProto& v) {
  std::vector<int64_t> dims;
  for (const auto& d : v.type().tensor_type().shape().dim()) dims.push_back(d.dim_value());
  return dims;
}

// Same graph inputs and outputs (names, shapes), element types as requested, every metadata
// entry of the original unchanged, and an fp16 step at the end of the record.
void ExpectSameInterface(const std::string& original_path, const std::string& converted_path,
                         int io_type) {
  const onnx::ModelProto original = optimize::LoadModel(original_path);
  const onnx::ModelProto converted = optimize::LoadModel(converted_path);
  EXPECT_NO_THROW(optimize::CheckModel(converted, converted_path));
  ASSERT_EQ(converted.graph().input_size(), original.graph().input_size());
  ASSERT_EQ(converted.graph().output_size(), original.graph().output_size());
  for (int i = 0; i < original.graph().input_size(); ++i) {
    const auto& a = original.graph().input(i);
    const auto& b = converted.graph().input(i);
    EXPECT_EQ(b.name(), a.name());
    EXPECT_EQ(Dims(b), Dims(a));
    EXPECT_EQ(b.type().tensor_type().elem_type(), io_type) << b.name();
  }
  for (int i = 0; i < original.graph().output_size(); ++i) {
    const auto& a = original.graph().output(i);
    const auto& b = converted.graph().output(i);
    EXPECT_EQ(b.name(), a.name());
    EXPECT_EQ(Dims(b), Dims(a));
    EXPECT_EQ(b.type().tensor_type().elem_type(), io_type) << b.name();
  }
  const auto before = optimize::Metadata(original);
  const auto after = optimize::Metadata(converted);
  for (const auto& [key, value] : before) {
    ASSERT_TRUE(after.count(key)) << key;
    EXPECT_EQ(after.at(key), value) << key;
  }
  const auto record = optimize::OptimizationRecord(converted);
  ASSERT_FALSE(record.empty());
  const auto& step = record.back();
  EXPECT_EQ(step.at("tool"), "fp16");
  EXPECT_EQ(step.at("keep_io_types"), io_type == kFloat);
  EXPECT_TRUE(step.at("float32_ops").is_array());
  EXPECT_EQ(step.at("overflow_clamped"), 0);
  EXPECT_GT(step.at("nodes_fp16").get<int>(), 100);
  // Weights really are float16: no float32 initializer larger than a few values remains.
  int64_t float_values = 0, half_values = 0;
  for (const auto& t : converted.graph().initializer()) {
    if (t.data_type() == kFloat) float_values += optimize::NumElements(t);
    if (t.data_type() == kHalf) half_values += optimize::NumElements(t);
  }
  EXPECT_GT(half_values, 1'000'000);
  EXPECT_LT(float_values, 100);
}

float MaxCornerDiff(const BoxXYXY& a, const BoxXYXY& b) {
  return std::max({std::fabs(a.x1 - b.x1), std::fabs(a.y1 - b.y1), std::fabs(a.x2 - b.x2),
                   std::fabs(a.y2 - b.y2)});
}

// The float16 model finds the same objects on bus.jpg: same classes, boxes within 3 pixels,
// confidences within 0.02, keypoints within 3 pixels, masks agreeing on 95% of their union.
void ExpectSameDetections(const std::string& original_path, const std::string& converted_path) {
  const cv::Mat image = ReadImage(Asset("images/bus.jpg"));
  const auto a = Predictor::Load(original_path)->Predict(image);
  const auto b = Predictor::Load(converted_path)->Predict(image);
  ASSERT_GE(a.detections.size(), 4u);
  for (const Detection& d : a.detections) {
    const Detection* match = nullptr;
    for (const Detection& e : b.detections) {
      if (e.class_id == d.class_id && MaxCornerDiff(e.box, d.box) <= 3.0f) match = &e;
    }
    ASSERT_NE(match, nullptr) << d.class_name << " " << d.confidence << " at " << d.box.x1 << ","
                              << d.box.y1 << " has no counterpart in the float16 model";
    EXPECT_NEAR(match->confidence, d.confidence, 0.02f);
    ASSERT_EQ(match->keypoints.size(), d.keypoints.size());
    for (size_t k = 0; k < d.keypoints.size(); ++k) {
      if (d.keypoints[k].visibility < 0.5f) continue;
      EXPECT_NEAR(match->keypoints[k].x, d.keypoints[k].x, 3.0f) << k;
      EXPECT_NEAR(match->keypoints[k].y, d.keypoints[k].y, 3.0f) << k;
    }
    if (!d.mask.empty()) {
      ASSERT_FALSE(match->mask.empty());
      cv::Mat ma = cv::Mat::zeros(image.size(), CV_8U), mb = ma.clone();
      d.mask.copyTo(ma(d.mask_roi));
      match->mask.copyTo(mb(match->mask_roi));
      const double inter = cv::countNonZero(ma & mb), uni = cv::countNonZero(ma | mb);
      EXPECT_GT(inter / uni, 0.95) << d.class_name;
    }
  }
  EXPECT_EQ(b.detections.size(), a.detections.size());
}

TEST(Fp16Cli, YoloV8nDetect) {
  testing::ProcessResult run;
  const std::string out = Convert("yolov8n-dq.onnx", {}, &run);
  const std::string in = Asset("models/yolov8n-dq.onnx");
  const double ratio = static_cast<double>(std::filesystem::file_size(out)) /
                       static_cast<double>(std::filesystem::file_size(in));
  EXPECT_GT(ratio, 0.45);
  EXPECT_LT(ratio, 0.55) << "float16 weights should halve the file";
  EXPECT_NE(run.out.find("verified   ONNX Runtime"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("boundary   input images float32 -> float16"), std::string::npos);
  EXPECT_NE(run.out.find("boundary   output output0 float16 -> float32"), std::string::npos);
  EXPECT_NE(run.err.find("GPU"), std::string::npos) << run.err;
  ExpectSameInterface(in, out, kFloat);
  ExpectSameDetections(in, out);
}

TEST(Fp16Cli, Yolo11nDetect) {
  const std::string in = Asset("models/yolo11n-dq.onnx");
  const std::string out = Convert("yolo11n-dq.onnx", {"--keep-io-types"});
  ExpectSameInterface(in, out, kFloat);
  ExpectSameDetections(in, out);
}

TEST(Fp16Cli, YoloV8nSegment) {
  const std::string in = Asset("models/yolov8n-seg-dq.onnx");
  const std::string out = Convert("yolov8n-seg-dq.onnx");
  ExpectSameInterface(in, out, kFloat);
  ExpectSameDetections(in, out);
}

TEST(Fp16Cli, Yolo11nPose) {
  const std::string in = Asset("models/yolo11n-pose-dq.onnx");
  const std::string out = Convert("yolo11n-pose-dq.onnx");
  ExpectSameInterface(in, out, kFloat);
  ExpectSameDetections(in, out);
}

TEST(Fp16Cli, Float16InputsAndOutputsRunInThePredictor) {
  const std::string in = Asset("models/yolov8n-dq.onnx");
  const std::string out = Convert("yolov8n-dq.onnx", {"--fp16-io"});
  ExpectSameInterface(in, out, kHalf);
  const ModelInfo info = ReadModelInfo(out);
  EXPECT_EQ(info.inputs.at(0).type, "float16");
  EXPECT_EQ(info.outputs.at(0).type, "float16");
  ExpectSameDetections(in, out);
}

TEST(Fp16Cli, Float32OpListIsHonoured) {
  testing::ProcessResult run;
  const std::string out = Convert("yolov8n-dq.onnx", {"--float32-ops", "Resize,Softmax"}, &run);
  const onnx::ModelProto m = optimize::LoadModel(out);
  const auto step = optimize::OptimizationRecord(m).back();
  EXPECT_EQ(step.at("float32_ops"), nlohmann::json({"Resize", "Softmax"}));
  EXPECT_EQ(step.at("float32_nodes").at("Resize"), 2);
  EXPECT_EQ(step.at("float32_nodes").at("Softmax"), 1);
  EXPECT_NE(run.out.find("float32    Softmax"), std::string::npos) << run.out;
  for (const auto& node : m.graph().node()) {
    if (node.op_type() != "Resize" && node.op_type() != "Softmax") continue;
    EXPECT_EQ(ElemType(m.graph().value_info(), node.output(0)), kFloat) << node.name();
  }
}

TEST(Fp16Cli, EmulationWritesARoundingFloat32Model) {
  const std::string in = Asset("models/yolov8n-dq.onnx");
  const std::string out = Convert("yolov8n-dq.onnx", {"--emulate"});
  const onnx::ModelProto m = optimize::LoadModel(out);
  for (const auto& t : m.graph().initializer()) EXPECT_NE(t.data_type(), kHalf) << t.name();
  EXPECT_EQ(optimize::OptimizationRecord(m).back().at("mode"),
            "emulate (float32 rounded to float16)");
  ExpectSameDetections(in, out);
}

// ---- errors -------------------------------------------------------------------------------

void ExpectFailure(const std::vector<std::string>& args, int exit_code, const std::string& text) {
  const testing::ProcessResult run = RunCli(args);
  EXPECT_EQ(run.exit_code, exit_code) << DescribeRun(args, run);
  EXPECT_NE(run.err.find(text), std::string::npos) << DescribeRun(args, run);
  const size_t newline = run.err.find('\n');
  EXPECT_TRUE(newline == std::string::npos || newline + 1 == run.err.size())
      << "one-line message expected: " << run.err;
}

TEST(Fp16Cli, Errors) {
  const std::string dir = MakeTempDir("fp16_errors");
  const std::string model = Asset("models/yolov8n-dq.onnx");
  const std::string out = dir + "/out.onnx";
  ExpectFailure({"fp16", "--model", dir + "/missing.onnx", "--out", out}, 3, "missing.onnx");
  const std::string text = dir + "/text.onnx";
  std::ofstream(text) << "not a model\n";
  ExpectFailure({"fp16", "--model", text, "--out", out}, 3, "not an ONNX model");
  ExpectFailure({"fp16", "--model", Asset("models/yolov8n_int8.onnx"), "--out", out}, 3,
                "quantized model");
  ExpectFailure({"fp16", "--model", model, "--out", model}, 2, "is the input model");
  ExpectFailure({"fp16", "--model", model, "--out", dir}, 2, "is a directory");
  std::ofstream(dir + "/plain") << "x";
  ExpectFailure({"fp16", "--model", model, "--out", dir + "/plain/dir/out.onnx"}, 2,
                "cannot create directory");
  ExpectFailure({"fp16", "--model", model, "--out", out, "--keep-io-types", "--fp16-io"}, 2,
                "contradict");
  ExpectFailure({"fp16", "--model", model, "--out", out, "--float32-ops", "Resize;Exp"}, 2,
                "--float32-ops");
  ExpectFailure({"fp16", "--model", model}, 2, "--out");
  EXPECT_FALSE(std::filesystem::exists(out)) << "a failed conversion wrote its output";

  // Converting a converted model again is refused with a clear message.
  const std::string once = Convert("yolo11n-dq.onnx");
  ExpectFailure({"fp16", "--model", once, "--out", out}, 3, "already holds float16");
}

}  // namespace
}  // namespace cvdeploy
