// SPDX-License-Identifier: Apache-2.0
// The ONNX Runtime backend's entry points besides Run: the capability query (OrtSupports,
// Backend::Supports, CreateOrtBackend refusing what it refuses), graph backends for any ONNX
// graph (inputs and outputs read from the engine, the thread policy) and the generic
// RunNamed (outputs by name, extra exposed tensors, float16 and int64 conversion, errors),
// and Run's tensor contract (float32 input only, output storage kept across runs).
#include <onnx/onnx_pb.h>

#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/backend.h"
#include "cvdeploy/error.h"
#include "cvdeploy/system.h"
#include "support/onnx_builder.h"

namespace cvdeploy::backends {
namespace {

using testing::BuildModel;
using testing::BuildNonYoloModel;
using testing::SyntheticModel;

// A named float32 input view of `values`.
NamedTensorView F32(std::string name, const std::vector<float>& values,
                    std::vector<int64_t> shape) {
  return {std::move(name), TensorView(DataType::kFloat32, std::move(shape), values.data())};
}

// The float32 values of an output view.
std::vector<float> Values(const TensorView& t) {
  const float* data = t.Data<float>();
  return std::vector<float>(data, data + t.elements());
}

// A synthetic model: input "images" [N, 3, 64, 64], outputs "boxes" [N, 2, 3]
// and "scores" [N, 4] with known constants.
SyntheticModel TwoOutputs() {
  SyntheticModel spec;
  spec.input_shape = {-1, 3, 64, 64};
  spec.outputs.push_back({"boxes", {1, 2, 3}, {1, 2, 3, 4, 5, 6}});
  spec.outputs.push_back({"scores", {1, 4}, {0.5f, -0.25f, 8, 0}});
  return spec;
}

std::vector<uint8_t> Serialize(const onnx::ModelProto& model) {
  const std::string s = model.SerializeAsString();
  return {s.begin(), s.end()};
}

// x float16 [1, 4] -> Cast(float) -> y float32 [1, 4].
std::vector<uint8_t> HalfInputModel() {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.add_opset_import()->set_version(17);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("half_input");
  const auto describe = [](onnx::ValueInfoProto* v, const char* name, int type) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(type);
    t->mutable_shape()->add_dim()->set_dim_value(1);
    t->mutable_shape()->add_dim()->set_dim_value(4);
  };
  describe(g->add_input(), "x", onnx::TensorProto::FLOAT16);
  describe(g->add_output(), "y", onnx::TensorProto::FLOAT);
  onnx::NodeProto* cast = g->add_node();
  cast->set_op_type("Cast");
  cast->add_input("x");
  cast->add_output("y");
  onnx::AttributeProto* to = cast->add_attribute();
  to->set_name("to");
  to->set_type(onnx::AttributeProto::INT);
  to->set_i(onnx::TensorProto::FLOAT);
  return Serialize(model);
}

// What CreateOrtBackend gets from the model layer, here read by the engine.
ModelInfo EngineInfo(const std::vector<uint8_t>& bytes, const std::string& name) {
  return CreateOrtGraphBackend(bytes, name, {})->Info();
}

ModelInfo ImageModelInfo(const std::string& input_type, const std::string& output_type) {
  ModelInfo info;
  info.path = "m.onnx";
  info.inputs.push_back({"images", input_type, {1, 3, 64, 64}, {}});
  info.outputs.push_back({"output0", output_type, {1, 6, 84}, {}});
  return info;
}

TEST(OrtSupportsTest, Float32ImageModelRunsWithoutNotes) {
  const Support s = OrtSupports(ImageModelInfo("float32", "float32"), "cpu");
  EXPECT_TRUE(s.ok) << s.reason;
  EXPECT_TRUE(s.notes.empty());
}

TEST(OrtSupportsTest, Float16ModelRunsOnCpuWithANoteAndOnCudaWithout) {
  const Support cpu = OrtSupports(ImageModelInfo("float16", "float16"), "cpu");
  EXPECT_TRUE(cpu.ok) << cpu.reason;
  ASSERT_EQ(cpu.notes.size(), 1u);
  EXPECT_NE(cpu.notes[0].find("float16"), std::string::npos) << cpu.notes[0];
  const Support cuda = OrtSupports(ImageModelInfo("float16", "float32"), "cuda:1");
  EXPECT_TRUE(cuda.ok) << cuda.reason;
  EXPECT_TRUE(cuda.notes.empty());
}

TEST(OrtSupportsTest, RefusesOtherElementTypesAndInputCountsNamingTheTensor) {
  const Support uint8_input = OrtSupports(ImageModelInfo("uint8", "float32"), "cpu");
  EXPECT_FALSE(uint8_input.ok);
  EXPECT_NE(uint8_input.reason.find("input 'images' has element type uint8"), std::string::npos)
      << uint8_input.reason;
  const Support int64_output = OrtSupports(ImageModelInfo("float32", "int64"), "cpu");
  EXPECT_FALSE(int64_output.ok);
  EXPECT_NE(int64_output.reason.find("output 'output0' has element type int64"), std::string::npos)
      << int64_output.reason;
  ModelInfo two = ImageModelInfo("float32", "float32");
  two.inputs.push_back(two.inputs[0]);
  EXPECT_FALSE(OrtSupports(two, "cpu").ok);
}

TEST(OrtSupportsTest, CreateOrtBackendRefusesWhatSupportsRefusesAsBadInput) {
  const std::vector<uint8_t> bytes = BuildModel(TwoOutputs());
  ModelInfo info = EngineInfo(bytes, "two.onnx");
  const auto backend = CreateOrtBackend(bytes, info, {});
  EXPECT_TRUE(backend->Supports(info).ok);
  EXPECT_TRUE(backend->Supports(backend->Info()).ok);
  info.outputs[1].type = "int64";
  EXPECT_FALSE(backend->Supports(info).ok);
  try {
    CreateOrtBackend(bytes, info, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_EQ(std::string(e.what()),
              "two.onnx: output 'scores' has element type int64; the backend reads float32 or "
              "float16 outputs");
  }
}

TEST(GraphBackendTest, ReadsANonYoloGraphFromTheEngineAndRunsItByName) {
  const auto backend = CreateOrtGraphBackend(BuildNonYoloModel(), "relu", {});
  const ModelInfo& info = backend->Info();
  EXPECT_EQ(info.path, "relu");
  ASSERT_EQ(info.inputs.size(), 1u);
  EXPECT_EQ(info.inputs[0].name, "x");
  EXPECT_EQ(info.inputs[0].type, "float32");
  EXPECT_EQ(info.inputs[0].shape, (std::vector<int64_t>{1, 10}));
  ASSERT_EQ(info.outputs.size(), 1u);
  EXPECT_EQ(info.outputs[0].name, "y");

  std::vector<float> x(10);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) - 4.5f;
  int calls = 0;
  backend->RunNamed({F32("x", x, {1, 10})}, {}, [&](const std::vector<OutputView>& outs) {
    ++calls;
    ASSERT_EQ(outs.size(), 1u);
    EXPECT_EQ(outs[0].name, "y");
    EXPECT_EQ(outs[0].engine_type, "float32");
    EXPECT_EQ(outs[0].tensor.dtype(), DataType::kFloat32);
    EXPECT_EQ(outs[0].tensor.shape(), (std::vector<int64_t>{1, 10}));
    ASSERT_EQ(outs[0].tensor.elements(), 10u);
    const float* y = outs[0].tensor.Data<float>();
    for (size_t i = 0; i < 10; ++i) EXPECT_EQ(y[i], std::max(0.f, x[i])) << i;
  });
  EXPECT_EQ(calls, 1);
}

TEST(GraphBackendTest, ThreadPolicyTakesTheRequestedCountElsePhysicalCores) {
  BackendOptions three;
  three.intra_op_threads = 3;
  EXPECT_EQ(CreateOrtGraphBackend(BuildNonYoloModel(), "relu", three)->Threads(), 3);
  EXPECT_EQ(CreateOrtGraphBackend(BuildNonYoloModel(), "relu", {})->Threads(),
            std::max(1, DetectMachine().physical_cores));
}

TEST(GraphBackendTest, VisitorSeesChosenOutputsAndExposedIntermediatesInRequestOrder) {
  // Expose the graph's internal Shape result (int64 [4]) as an extra output, as calibration
  // exposes activations.
  onnx::ModelProto model;
  const std::vector<uint8_t> base = BuildModel(TwoOutputs());
  ASSERT_TRUE(model.ParseFromArray(base.data(), static_cast<int>(base.size())));
  onnx::ValueInfoProto* extra = model.mutable_graph()->add_output();
  extra->set_name("input_shape");
  extra->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::INT64);
  const auto backend = CreateOrtGraphBackend(Serialize(model), "exposed", {});
  ASSERT_EQ(backend->Info().outputs.size(), 3u);
  EXPECT_EQ(backend->Info().inputs[0].shape, (std::vector<int64_t>{-1, 3, 64, 64}));

  const std::vector<float> images(2 * 3 * 64 * 64, 0.5f);
  const NamedTensorView input = F32("images", images, {2, 3, 64, 64});
  backend->RunNamed({input}, {"input_shape", "scores"}, [](const std::vector<OutputView>& outs) {
    ASSERT_EQ(outs.size(), 2u);
    EXPECT_EQ(outs[0].name, "input_shape");
    EXPECT_EQ(outs[0].engine_type, "int64");
    ASSERT_EQ(outs[0].tensor.elements(), 4u);
    EXPECT_EQ(Values(outs[0].tensor), (std::vector<float>{2, 3, 64, 64}));
    EXPECT_EQ(outs[1].name, "scores");
    EXPECT_EQ(outs[1].tensor.shape(), (std::vector<int64_t>{2, 4}));
    EXPECT_EQ(Values(outs[1].tensor), (std::vector<float>{0.5f, -0.25f, 8, 0, 0.5f, -0.25f, 8, 0}));
  });
  std::vector<std::string> all;
  backend->RunNamed({input}, {}, [&](const std::vector<OutputView>& outs) {
    for (const OutputView& o : outs) all.push_back(o.name);
  });
  EXPECT_EQ(all, (std::vector<std::string>{"boxes", "scores", "input_shape"}));
}

TEST(GraphBackendTest, RunNamedAgreesWithRunOnAYoloBackend) {
  const std::vector<uint8_t> bytes = BuildModel(TwoOutputs());
  const ModelInfo info = EngineInfo(bytes, "two.onnx");
  const auto backend = CreateOrtBackend(bytes, info, {});
  const std::vector<float> images(3 * 64 * 64, 0.25f);
  const std::vector<int64_t> shape = {1, 3, 64, 64};
  std::vector<Tensor> run;
  const auto context = backend->NewContext();
  backend->Run(*context, TensorView(DataType::kFloat32, shape, images.data()), run);
  ASSERT_EQ(run.size(), 2u);
  backend->RunNamed({F32("images", images, shape)}, {}, [&](const std::vector<OutputView>& o) {
    ASSERT_EQ(o.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(run[i].dtype(), DataType::kFloat32);
      EXPECT_EQ(o[i].tensor.shape(), run[i].shape());
      EXPECT_EQ(Values(o[i].tensor), Values(run[i]));
    }
  });
}

TEST(BackendRunTest, OutputTensorsKeepTheirStorageAcrossRunsAndBatchSizes) {
  // What makes the steady state allocation-free: Run reshapes the caller's tensors in place,
  // so the engine keeps writing into the same (IO-bound) buffers.
  const std::vector<uint8_t> bytes = BuildModel(TwoOutputs());
  const auto backend = CreateOrtBackend(bytes, EngineInfo(bytes, "two.onnx"), {});
  const auto context = backend->NewContext();
  const std::vector<float> images(2 * 3 * 64 * 64, 0.5f);
  std::vector<Tensor> run;
  backend->Run(*context, TensorView(DataType::kFloat32, {2, 3, 64, 64}, images.data()), run);
  ASSERT_EQ(run.size(), 2u);
  const void* boxes = run[0].data();
  const void* scores = run[1].data();
  for (int64_t batch : {2, 1, 2}) {
    backend->Run(*context, TensorView(DataType::kFloat32, {batch, 3, 64, 64}, images.data()), run);
    EXPECT_EQ(run[0].data(), boxes) << batch;
    EXPECT_EQ(run[1].data(), scores) << batch;
    EXPECT_EQ(run[1].shape(), (std::vector<int64_t>{batch, 4}));
    const std::vector<float> want = {0.5f, -0.25f, 8, 0};
    for (int64_t b = 0; b < batch; ++b) {
      EXPECT_EQ(std::vector<float>(run[1].Data<float>() + 4 * b, run[1].Data<float>() + 4 * b + 4),
                want);
    }
  }
}

TEST(BackendRunTest, InputsOtherThanFloat32AreInvalidArguments) {
  const std::vector<uint8_t> bytes = BuildModel(TwoOutputs());
  const auto backend = CreateOrtBackend(bytes, EngineInfo(bytes, "two.onnx"), {});
  const auto context = backend->NewContext();
  const std::vector<uint8_t> pixels(3 * 64 * 64, 128);
  const TensorView u8(DataType::kUint8, {1, 3, 64, 64}, pixels.data());
  std::vector<Tensor> run;
  try {
    backend->Run(*context, u8, run);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
  try {
    backend->RunNamed({{"images", u8}}, {}, [](const std::vector<OutputView>&) {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST(GraphBackendTest, Float16InputsGetTheFloat32ValuesRoundedToHalf) {
  const auto backend = CreateOrtGraphBackend(HalfInputModel(), "half", {});
  EXPECT_EQ(backend->Info().inputs[0].type, "float16");
  const std::vector<float> x = {0.1f, 1.f, -2.5f, 70000.f};
  backend->RunNamed({F32("x", x, {1, 4})}, {}, [](const std::vector<OutputView>& outs) {
    ASSERT_EQ(outs.size(), 1u);
    ASSERT_EQ(outs[0].tensor.elements(), 4u);
    const float* y = outs[0].tensor.Data<float>();
    EXPECT_EQ(y[0], 0.0999755859375f);  // nearest float16 to 0.1
    EXPECT_EQ(y[1], 1.f);
    EXPECT_EQ(y[2], -2.5f);
    EXPECT_TRUE(std::isinf(y[3]));  // beyond float16's range
  });
}

TEST(GraphBackendTest, EngineFailuresAreEngineErrorsWithTheEngineText) {
  const std::vector<uint8_t> garbage = {'n', 'o', 't', ' ', 'o', 'n', 'n', 'x'};
  try {
    CreateOrtGraphBackend(garbage, "garbage", {});
    FAIL() << "no error";
  } catch (const EngineError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_FALSE(e.engine_message().empty());
    EXPECT_EQ(std::string(e.what()),
              "garbage: ONNX Runtime cannot load the model: " + e.engine_message());
  }
  const auto backend = CreateOrtGraphBackend(BuildNonYoloModel(), "relu", {});
  const std::vector<float> x(10, 1.f);
  bool visited = false;
  try {
    backend->RunNamed({F32("not_x", x, {1, 10})}, {},
                      [&](const std::vector<OutputView>&) { visited = true; });
    FAIL() << "no error";
  } catch (const EngineError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kRuntime);
    EXPECT_EQ(std::string(e.what()), "relu: inference failed: " + e.engine_message());
  }
  EXPECT_FALSE(visited);
}

TEST(GraphBackendTest, VisitorExceptionsPassThroughUnchanged) {
  const auto backend = CreateOrtGraphBackend(BuildNonYoloModel(), "relu", {});
  const std::vector<float> x(10, 1.f);
  EXPECT_THROW(backend->RunNamed({F32("x", x, {1, 10})}, {},
                                 [](const std::vector<OutputView>&) { throw BadInput("mine"); }),
               Error);
}

}  // namespace
}  // namespace cvdeploy::backends
