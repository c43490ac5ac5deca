// SPDX-License-Identifier: Apache-2.0
// The synthetic models run in ONNX Runtime and give exactly the stored constants, for any
// input values, at batch 1 and (dynamic batch axis) batch 2.
#include "support/onnx_builder.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnxruntime_cxx_api.h>

#include "support/assets.h"

namespace cvdeploy::testing {
namespace {

Ort::Env& Env() {
  static Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "onnx_builder_test");
  return env;
}

Ort::Session MakeSession(const std::vector<uint8_t>& bytes) {
  Ort::SessionOptions options;
  options.SetIntraOpNumThreads(1);
  return Ort::Session(Env(), bytes.data(), bytes.size(), options);
}

struct RunOutput {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Runs `session` on random float input of `shape` fed to `input_name`.
std::vector<RunOutput> RunRandom(Ort::Session& session, const std::string& input_name,
                                 const std::vector<int64_t>& shape,
                                 const std::vector<std::string>& output_names) {
  size_t count = 1;
  for (int64_t d : shape) count *= static_cast<size_t>(d);
  std::vector<float> input(count);
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> dist(-5.f, 5.f);
  for (float& v : input) v = dist(rng);

  Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::Value tensor = Ort::Value::CreateTensor<float>(memory, input.data(), input.size(),
                                                      shape.data(), shape.size());
  const char* in_name = input_name.c_str();
  std::vector<const char*> out_names;
  for (const auto& name : output_names) out_names.push_back(name.c_str());
  std::vector<Ort::Value> outputs = session.Run(Ort::RunOptions{nullptr}, &in_name, &tensor, 1,
                                                out_names.data(), out_names.size());
  std::vector<RunOutput> result;
  for (Ort::Value& value : outputs) {
    auto info = value.GetTensorTypeAndShapeInfo();
    const float* data = value.GetTensorData<float>();
    result.push_back({info.GetShape(), {data, data + info.GetElementCount()}});
  }
  return result;
}

SyntheticModel TwoOutputModel(int64_t batch_dim) {
  SyntheticModel spec;
  spec.input_shape = {batch_dim, 3, 64, 64};
  std::vector<float> head(6 * 84);
  for (size_t i = 0; i < head.size(); ++i) head[i] = 0.25f * static_cast<float>(i) - 7.5f;
  std::vector<float> protos(2 * 4 * 4);
  for (size_t i = 0; i < protos.size(); ++i) protos[i] = 1.f / static_cast<float>(i + 1);
  spec.outputs.push_back({"output0", {1, 6, 84}, head});
  spec.outputs.push_back({"output1", {1, 2, 4, 4}, protos});
  spec.metadata = UltralyticsMetadata("detect", {"person", "car"});
  return spec;
}

void ExpectConstant(const RunOutput& out, int64_t batch, const SyntheticOutput& expected) {
  std::vector<int64_t> shape = expected.shape;
  shape[0] = batch;
  ASSERT_EQ(out.shape, shape);
  const size_t item = expected.values.size();
  ASSERT_EQ(out.values.size(), item * static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) {
    for (size_t i = 0; i < item; ++i) {
      ASSERT_EQ(out.values[static_cast<size_t>(b) * item + i], expected.values[i])
          << expected.name << " batch " << b << " index " << i;
    }
  }
}

TEST(OnnxBuilderTest, PassesTheOnnxChecker) {
  const std::vector<uint8_t> bytes = BuildModel(TwoOutputModel(-1));
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  EXPECT_NO_THROW(onnx::checker::check_model(model));
  EXPECT_EQ(model.ir_version(), 8);
  ASSERT_EQ(model.opset_import_size(), 1);
  EXPECT_EQ(model.opset_import(0).version(), 17);
  EXPECT_EQ(model.graph().input(0).type().tensor_type().shape().dim(0).dim_param(), "batch");
  EXPECT_EQ(model.graph().output(0).type().tensor_type().shape().dim(0).dim_param(), "batch");
}

TEST(OnnxBuilderTest, StoresMetadataProps) {
  const std::vector<uint8_t> bytes = BuildModel(TwoOutputModel(1));
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  std::map<std::string, std::string> props;
  for (const auto& entry : model.metadata_props()) props[entry.key()] = entry.value();
  EXPECT_EQ(props["task"], "detect");
  EXPECT_EQ(props["names"], "{0: 'person', 1: 'car'}");
  EXPECT_EQ(props["imgsz"], "[64, 64]");
  EXPECT_EQ(props["stride"], "32");

  Ort::Session session = MakeSession(bytes);
  Ort::AllocatorWithDefaultOptions allocator;
  Ort::ModelMetadata meta = session.GetModelMetadata();
  EXPECT_EQ(std::string(meta.LookupCustomMetadataMapAllocated("task", allocator).get()), "detect");
  EXPECT_EQ(std::string(meta.LookupCustomMetadataMapAllocated("names", allocator).get()),
            "{0: 'person', 1: 'car'}");
}

TEST(OnnxBuilderTest, FixedBatchGivesTheConstants) {
  const SyntheticModel spec = TwoOutputModel(1);
  Ort::Session session = MakeSession(BuildModel(spec));
  const auto outputs = RunRandom(session, "images", {1, 3, 64, 64}, {"output0", "output1"});
  ASSERT_EQ(outputs.size(), 2u);
  ExpectConstant(outputs[0], 1, spec.outputs[0]);
  ExpectConstant(outputs[1], 1, spec.outputs[1]);
}

TEST(OnnxBuilderTest, DynamicBatchFollowsTheInput) {
  const SyntheticModel spec = TwoOutputModel(-1);
  Ort::Session session = MakeSession(BuildModel(spec));
  // Keep the TypeInfo alive: the shape info is a view into it.
  Ort::TypeInfo type = session.GetInputTypeInfo(0);
  EXPECT_EQ(type.GetTensorTypeAndShapeInfo().GetShape()[0], -1);
  for (int64_t batch : {1, 2}) {
    const auto outputs = RunRandom(session, "images", {batch, 3, 64, 64}, {"output0", "output1"});
    ASSERT_EQ(outputs.size(), 2u);
    ExpectConstant(outputs[0], batch, spec.outputs[0]);
    ExpectConstant(outputs[1], batch, spec.outputs[1]);
  }
}

TEST(OnnxBuilderTest, ClassifyShapedOutput) {
  SyntheticModel spec;
  spec.input_shape = {1, 3, 32, 32};
  spec.outputs.push_back({"output0", {1, 4}, {0.1f, 0.2f, 0.3f, 0.4f}});
  Ort::Session session = MakeSession(BuildModel(spec));
  const auto outputs = RunRandom(session, "images", {1, 3, 32, 32}, {"output0"});
  ASSERT_EQ(outputs.size(), 1u);
  ExpectConstant(outputs[0], 1, spec.outputs[0]);
}

TEST(OnnxBuilderTest, RejectsValuesThatDoNotMatchTheShape) {
  SyntheticModel spec;
  spec.outputs.push_back({"output0", {1, 6, 84}, std::vector<float>(10)});
  EXPECT_THROW(BuildModel(spec), std::invalid_argument);
  spec.outputs.clear();
  EXPECT_THROW(BuildModel(spec), std::invalid_argument);
}

TEST(OnnxBuilderTest, NonYoloModelRunsRelu) {
  Ort::Session session = MakeSession(BuildNonYoloModel());
  ASSERT_EQ(session.GetInputCount(), 1u);
  Ort::AllocatorWithDefaultOptions allocator;
  EXPECT_EQ(std::string(session.GetInputNameAllocated(0, allocator).get()), "x");
  std::vector<float> input = {-2, -1, 0, 1, 2, 3, -4, 5, -6, 7};
  std::vector<int64_t> shape = {1, 10};
  Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::Value tensor = Ort::Value::CreateTensor<float>(memory, input.data(), input.size(),
                                                      shape.data(), shape.size());
  const char* in_name = "x";
  const char* out_name = "y";
  auto outputs = session.Run(Ort::RunOptions{nullptr}, &in_name, &tensor, 1, &out_name, 1);
  const float* y = outputs[0].GetTensorData<float>();
  for (size_t i = 0; i < input.size(); ++i) EXPECT_EQ(y[i], std::max(0.f, input[i]));
}

TEST(OnnxBuilderTest, WrongRankModelHasRankThreeInput) {
  Ort::Session session = MakeSession(BuildWrongRankModel());
  Ort::TypeInfo type = session.GetInputTypeInfo(0);
  EXPECT_EQ(type.GetTensorTypeAndShapeInfo().GetShape(), (std::vector<int64_t>{1, 3, 640}));
  const auto outputs = RunRandom(session, "images", {1, 3, 640}, {"output0"});
  EXPECT_EQ(outputs[0].shape, (std::vector<int64_t>{1, 6, 84}));
}

TEST(OnnxBuilderTest, WriteModelWritesTheSameBytes) {
  const SyntheticModel spec = TwoOutputModel(1);
  const std::string path = MakeTempDir("onnx-builder") + "/model.onnx";
  WriteModel(spec, path);
  std::ifstream file(path, std::ios::binary);
  const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(file),
                                   std::istreambuf_iterator<char>()};
  EXPECT_EQ(bytes, BuildModel(spec));
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

TEST(OnnxBuilderTest, NamesDictIsAPythonDictLiteral) {
  EXPECT_EQ(NamesDict({}), "{}");
  EXPECT_EQ(NamesDict({"a"}), "{0: 'a'}");
  EXPECT_EQ(NamesDict({"person", "car", "dog"}), "{0: 'person', 1: 'car', 2: 'dog'}");
}

}  // namespace
}  // namespace cvdeploy::testing
