// SPDX-License-Identifier: Apache-2.0
// The uint8 upsampling that replaces quantized nearest Resizes: which Resizes qualify
// (modes, scales, sizes, shapes), and that the Transpose/Reshape/Expand nodes give the very
// bytes ONNX Runtime's own Resize gives, for several modes, factors and batch sizes.
#include <gtest/gtest.h>
#include <onnxruntime_cxx_api.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "model/onnx_model.h"
#include "optimize/quantize.h"

namespace cvdeploy::optimize {
namespace {

struct ResizeSpec {
  std::string ctm = "asymmetric";
  std::string nearest = "floor";
  std::string mode = "nearest";
  std::vector<float> scales = {1, 1, 2, 2};
  std::vector<int64_t> sizes;  // used instead of scales when not empty
  std::vector<int64_t> shape = {1, 5, 3, 4};
};

void AddString(onnx::NodeProto& node, const std::string& name, const std::string& value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

void SetValueInfo(onnx::ValueInfoProto* info, const std::string& name,
                  const std::vector<int64_t>& shape) {
  info->set_name(name);
  auto* t = info->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::UINT8);
  for (int64_t d : shape) {
    auto* dim = t->mutable_shape()->add_dim();
    if (d > 0) {
      dim->set_dim_value(d);
    } else {
      dim->set_dim_param("batch");
    }
  }
}

// uint8 x -> Resize -> y, with the shape of x known.
onnx::ModelProto ResizeModel(const ResizeSpec& spec) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.add_opset_import()->set_version(17);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("resize");
  SetValueInfo(g->add_input(), "x", spec.shape);
  onnx::NodeProto* node = g->add_node();
  node->set_op_type("Resize");
  node->set_name("resize");
  // Opset 11+ inputs: X, roi (none), scales or sizes.
  const std::vector<std::string> inputs = spec.sizes.empty()
                                              ? std::vector<std::string>{"x", "", "scales"}
                                              : std::vector<std::string>{"x", "", "", "sizes"};
  for (const auto& in : inputs) *node->add_input() = in;
  if (spec.sizes.empty()) {
    *g->add_initializer() = FloatTensor("scales", {4}, spec.scales);
  } else {
    *g->add_initializer() = Int64Tensor("sizes", {4}, spec.sizes);
  }
  const std::string y = "y";
  *node->add_output() = y;
  AddString(*node, "mode", spec.mode);
  AddString(*node, "coordinate_transformation_mode", spec.ctm);
  AddString(*node, "nearest_mode", spec.nearest);
  g->add_output()->set_name("y");
  g->mutable_output(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
      onnx::TensorProto::UINT8);
  InferShapes(model);
  return model;
}

// The same model with the Resize replaced by NearestUpsampleNodes.
onnx::ModelProto Rewritten(const onnx::ModelProto& model, UpsampleFactors f,
                           const std::vector<int64_t>& shape) {
  onnx::ModelProto out = model;
  onnx::GraphProto* g = out.mutable_graph();
  GraphIndex names(*g);
  std::vector<onnx::TensorProto> inits;
  const auto nodes = NearestUpsampleNodes("x", "y", shape, f, names, inits);
  g->clear_node();
  g->clear_initializer();
  for (const auto& n : nodes) *g->add_node() = n;
  for (const auto& t : inits) *g->add_initializer() = t;
  InferShapes(out);
  return out;
}

std::vector<uint8_t> Run(const onnx::ModelProto& model, const std::vector<uint8_t>& input,
                         const std::vector<int64_t>& shape) {
  static Ort::Env env(ORT_LOGGING_LEVEL_FATAL, "upsample_test");
  const std::vector<uint8_t> bytes = SerializeModel(model);
  Ort::SessionOptions so;
  so.SetIntraOpNumThreads(1);
  Ort::Session session(env, bytes.data(), bytes.size(), so);
  const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<uint8_t> data = input;
  Ort::Value value = Ort::Value::CreateTensor<uint8_t>(memory, data.data(), data.size(),
                                                       shape.data(), shape.size());
  const char* in_name = "x";
  const char* out_name = "y";
  auto outs = session.Run(Ort::RunOptions{}, &in_name, &value, 1, &out_name, 1);
  const size_t n = outs[0].GetTensorTypeAndShapeInfo().GetElementCount();
  const uint8_t* p = outs[0].GetTensorData<uint8_t>();
  return {p, p + n};
}

UpsampleFactors Factors(const onnx::ModelProto& model) {
  const GraphIndex index(model.graph());
  return NearestUpsampleFactors(model.graph().node(0), index);
}

// Factors found, and the rewritten nodes reproduce ORT's Resize byte for byte.
void ExpectEquivalent(const ResizeSpec& spec, int64_t rows, int64_t cols, int64_t batch = 1) {
  const onnx::ModelProto model = ResizeModel(spec);
  const UpsampleFactors f = Factors(model);
  ASSERT_EQ(f.rows, rows);
  ASSERT_EQ(f.cols, cols);
  std::vector<int64_t> shape = spec.shape;
  shape[0] = batch;
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  std::mt19937 rng(7);
  std::vector<uint8_t> input(n);
  for (auto& v : input) v = static_cast<uint8_t>(rng() & 0xff);
  const std::vector<uint8_t> expected = Run(model, input, shape);
  const std::vector<uint8_t> got = Run(Rewritten(model, f, spec.shape), input, shape);
  ASSERT_EQ(expected.size(), n * static_cast<size_t>(rows * cols));
  EXPECT_EQ(got, expected);
}

TEST(NearestUpsample, UltralyticsFormTwoByTwo) { ExpectEquivalent({}, 2, 2); }

TEST(NearestUpsample, OtherModesThatAreExactNearest) {
  ResizeSpec half;
  half.ctm = "half_pixel";
  half.nearest = "round_prefer_floor";  // ONNX's defaults
  ExpectEquivalent(half, 2, 2);
  ResizeSpec three;
  three.scales = {1, 1, 3, 3};
  ExpectEquivalent(three, 3, 3);
  ResizeSpec uneven;
  uneven.scales = {1, 1, 2, 4};
  ExpectEquivalent(uneven, 2, 4);
  // align_corners reads o * (n - 1) / (2n - 1), within half a pixel below o / 2: rounding
  // with ties down lands on o / 2 for every o.
  ResizeSpec corners;
  corners.ctm = "align_corners";
  corners.nearest = "round_prefer_floor";
  corners.shape = {1, 3, 10, 7};
  ExpectEquivalent(corners, 2, 2);
  ResizeSpec sizes;
  sizes.sizes = {1, 5, 6, 8};
  ExpectEquivalent(sizes, 2, 2);
}

TEST(NearestUpsample, DynamicBatch) {
  ResizeSpec dynamic;
  dynamic.shape = {-1, 5, 3, 4};
  ExpectEquivalent(dynamic, 2, 2, 3);
}

TEST(NearestUpsample, RejectsWhatIsNotExactNearestUpsampling) {
  ResizeSpec linear;
  linear.mode = "linear";
  EXPECT_FALSE(Factors(ResizeModel(linear)));
  ResizeSpec corners;  // align_corners, 3 -> 6 rows: output 1 reads ceil(0.4) = 1, not 0
  corners.ctm = "align_corners";
  corners.nearest = "ceil";
  EXPECT_FALSE(Factors(ResizeModel(corners)));
  ResizeSpec rounding;  // asymmetric x3 with rounding: output 2 reads input round(0.67) = 1
  rounding.scales = {1, 1, 3, 3};
  rounding.nearest = "round_prefer_floor";
  EXPECT_FALSE(Factors(ResizeModel(rounding)));
  ResizeSpec fractional;
  fractional.scales = {1, 1, 1.5f, 1.5f};
  fractional.shape = {1, 5, 4, 4};
  EXPECT_FALSE(Factors(ResizeModel(fractional)));
  ResizeSpec channels;
  channels.scales = {1, 2, 2, 2};
  EXPECT_FALSE(Factors(ResizeModel(channels)));
  ResizeSpec identity;
  identity.scales = {1, 1, 1, 1};
  EXPECT_FALSE(Factors(ResizeModel(identity)));
  ResizeSpec unknown;  // channels unknown: the Reshape needs them
  unknown.shape = {1, -1, 3, 4};
  EXPECT_FALSE(Factors(ResizeModel(unknown)));
}

}  // namespace
}  // namespace cvdeploy::optimize
