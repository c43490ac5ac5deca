// SPDX-License-Identifier: Apache-2.0
// `convert --dynamic-shape` / `--dynamic`: the command, the predictor on consecutive rect
// sizes, and the refusals (already dynamic, not an Ultralytics graph, a classify model, not
// ONNX). The conversion of every sample model against a plain reference decode is in
// tests/slow/convert_dynamic_rect_test.cpp.
#include <onnx/onnx_pb.h>
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/tools.h"
#include "support/assets.h"
#include "support/onnx_builder.h"
#include "support/process.h"
#include "support/reference.h"

namespace cvdeploy::testing {
namespace {

std::vector<uint8_t> ReadAll(const std::string& path) {
  return ReadModelBytes(path, kDefaultMaxModelBytes);
}

// 640x384, and back): the engine's output bindings must follow the changing output shape.
TEST(DynamicShapePredictTest, ConsecutiveImagesOfDifferentRectSizes) {
  const auto bytes = MakeShapeDynamic(ReadAll(Asset("models/yolo11n-dq.onnx")), "yolo11n-dq").bytes;
  SessionOptions options;
  options.intra_op_threads = 1;
  const auto model = Predictor::LoadFromMemory(bytes, "yolo11n-dq (dynamic)", options);
  const auto original = Predictor::Load(Asset("models/yolo11n-dq.onnx"), options);
  for (const char* name : {"bus.jpg", "zidane.jpg", "bus.jpg"}) {
    SCOPED_TRACE(name);
    const cv::Mat img = cv::imread(Asset(std::string("images/") + name));
    const Result rect = model->Predict(img);
    const Result square = original->Predict(img);
    EXPECT_FALSE(rect.detections.empty());
    // The confident detections (person, bus, tie) agree with the square path.
    int confident = 0, matched = 0;
    for (const Detection& d : square.detections) {
      if (d.confidence < 0.5f) continue;
      ++confident;
      for (const Detection& e : rect.detections) {
        const BoxXYXY i{std::max(d.box.x1, e.box.x1), std::max(d.box.y1, e.box.y1),
                        std::min(d.box.x2, e.box.x2), std::min(d.box.y2, e.box.y2)};
        const float iou = i.Area() / (d.box.Area() + e.box.Area() - i.Area());
        if (e.class_id == d.class_id && iou >= 0.9f) {
          ++matched;
          break;
        }
      }
    }
    EXPECT_GT(confident, 0);
    EXPECT_EQ(matched, confident);
  }
}

// ---- Failure paths -----------------------------------------------------------------------

void ExpectRefused(const std::vector<uint8_t>& bytes, const std::string& reason) {
  try {
    MakeShapeDynamic(bytes, "model.onnx");
    ADD_FAILURE() << "converted; expected a refusal with: " << reason;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("model.onnx: ", 0), 0u) << what;
    EXPECT_NE(what.find(reason), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(DynamicShapeRefusalTest, AlreadyDynamicModel) {
  const auto once = MakeShapeDynamic(ReadAll(Asset("models/yolov8n-dq.onnx")), "x").bytes;
  ExpectRefused(once,
                "cannot make height/width dynamic: input 'images' already has a dynamic "
                "height/width (images [1, 3, height, width])");
}

TEST(DynamicShapeRefusalTest, ModelWithoutUltralyticsMetadata) {
  onnx::ModelProto m;
  const auto bytes = ReadAll(Asset("models/yolov8n-dq.onnx"));
  ASSERT_TRUE(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  m.clear_metadata_props();
  std::vector<uint8_t> stripped(m.ByteSizeLong());
  ASSERT_TRUE(m.SerializeToArray(stripped.data(), static_cast<int>(stripped.size())));
  ExpectRefused(stripped, "not an Ultralytics export (no 'task' and 'stride' metadata)");
}

TEST(DynamicShapeRefusalTest, NonYoloGraph) {
  ExpectRefused(BuildNonYoloModel(), "is not an NCHW image tensor of rank 4");
}

TEST(DynamicShapeRefusalTest, ClassifyModelNeedsNone) {
  SyntheticModel m;
  m.input_shape = {1, 3, 224, 224};
  m.outputs = {{"output0", {1, 2}, {0.25f, 0.75f}}};
  m.metadata = UltralyticsMetadata("classify", {"cat", "dog"}, 224, 224);
  ExpectRefused(BuildModel(m), "a classify model needs no rewrite");
}

TEST(DynamicShapeRefusalTest, HeadWithoutAnchorsIsRefused) {
  SyntheticModel m;
  m.input_shape = {1, 3, 64, 64};
  m.outputs = {{"output0", {1, 6, 2}, std::vector<float>(12, 0.5f)}};
  m.metadata = UltralyticsMetadata("detect", {"a", "b"});
  ExpectRefused(BuildModel(m), "no output has 84 anchors");
}

TEST(DynamicShapeRefusalTest, NotOnnx) {
  const std::vector<uint8_t> junk = {'n', 'o', 't', ' ', 'o', 'n', 'n', 'x'};
  try {
    MakeShapeDynamic(junk, "junk.onnx");
    ADD_FAILURE() << "converted junk";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
  }
}

// ---- The command ---------------------------------------------------------------------------

TEST(CliConvertDynamicTest, DynamicMakesBatchAndSpatialAxesDynamic) {
  const std::string dir = MakeTempDir("cli-convert-dynamic");
  const std::string out = dir + "/v8.onnx";
  const ProcessResult run =
      RunCli({"convert", "--model", Asset("models/yolov8n-dq.onnx"), "--output", out, "--dynamic"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("input      images [batch, 3, height, width]"), std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("verified   runs at 480x640 (HxW): output0 [1, 84, 6300]"),
            std::string::npos)
      << run.out;
  const auto model = Predictor::Load(out);
  EXPECT_TRUE(model->meta().dynamic);
  EXPECT_EQ(model->meta().batch, -1);
  // A batch of two rect images through the converted graph.
  const std::vector<float> image(2 * 3 * 480 * 640, 0.5f);
  const std::vector<Predictor::Output> outputs =
      model->Infer(TensorView(DataType::kFloat32, {2, 3, 480, 640}, image.data()));
  EXPECT_EQ(outputs.at(0).tensor.shape(), (std::vector<int64_t>{2, 84, 6300}));

  const ProcessResult info = RunCli({"info", out});
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("height"), std::string::npos) << info.out;
  std::filesystem::remove_all(dir);
}

TEST(CliConvertDynamicTest, RefusalIsOneLineAndExitCode3) {
  const std::string dir = MakeTempDir("cli-convert-dynamic-refuse");
  const std::string once = dir + "/once.onnx";
  ASSERT_EQ(RunCli({"convert", "--model", Asset("models/yolo11n-dq.onnx"), "--output", once,
                    "--dynamic-shape"})
                .exit_code,
            0);
  const ProcessResult twice = ExpectCliError(
      {"convert", "--model", once, "--output", dir + "/twice.onnx", "--dynamic-shape"}, 3,
      "already has a dynamic height/width");
  EXPECT_FALSE(std::filesystem::exists(dir + "/twice.onnx"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cvdeploy::testing
