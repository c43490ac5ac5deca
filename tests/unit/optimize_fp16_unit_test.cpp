// SPDX-License-Identifier: Apache-2.0
// Float16 conversion: the float <-> half conversions against known encodings and a naive
// nearest-value search, and ConvertToFloat16 on small graphs built here, each run with
// ONNX Runtime against the float32 original.
#include "optimize/fp16.h"

#include <onnx/onnx_pb.h>
#include <onnxruntime_cxx_api.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cvdeploy/error.h"
#include "model/onnx_model.h"

namespace cvdeploy::optimize {
namespace {

constexpr int32_t kFloat = onnx::TensorProto::FLOAT;
constexpr int32_t kHalf = onnx::TensorProto::FLOAT16;
constexpr int32_t kInt64 = onnx::TensorProto::INT64;

// ---- FloatToHalf / HalfToFloat ----------------------------------------------------------

// Nearest float16 by search over the (monotone) positive half values; ties go to the even
// encoding; beyond 65504 + half an ulp (65520) it is infinity.
uint16_t NaiveHalf(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::fabs(static_cast<double>(f));
  if (a >= 65520.0) return sign | 0x7c00;
  uint16_t lo = 0, hi = 0x7bff;  // largest h with value <= a
  while (lo < hi) {
    const uint16_t mid = static_cast<uint16_t>((lo + hi + 1) / 2);
    if (static_cast<double>(HalfToFloat(mid)) <= a) {
      lo = mid;
    } else {
      hi = static_cast<uint16_t>(mid - 1);
    }
  }
  if (lo == 0x7bff) return sign | lo;
  const double below = a - HalfToFloat(lo), above = HalfToFloat(lo + 1) - a;
  const uint16_t pick = below < above ? lo : above < below ? lo + 1 : (lo % 2 == 0 ? lo : lo + 1);
  return sign | pick;
}

TEST(HalfConversion, KnownEncodings) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(0.5f), 0x3800);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);  // largest finite
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7bff);  // rounds down to it
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);  // rounds past it: infinity
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);
  EXPECT_EQ(FloatToHalf(-1e6f), 0xfc00);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 1 ulp: even
  EXPECT_EQ(FloatToHalf(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(FloatToHalf(std::ldexp(3.0f, -25)), 0x0002);         // subnormal tie: even
  EXPECT_EQ(FloatToHalf(std::ldexp(2047.0f, -25)), 0x0400);      // tie into the normals
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie: even (down)
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // tie: even (up)
  EXPECT_EQ(FloatToHalf(2049.0f), 0x6800);                       // 2048: integers stop here
  EXPECT_EQ(FloatToHalf(2051.0f), 0x6802);                       // 2052
  EXPECT_EQ(FloatToHalf(0.1f), 0x2e66);
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(FloatToHalf(-std::numeric_limits<float>::infinity()), 0xfc00);
  const uint16_t nan = FloatToHalf(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  // A NaN whose payload sits only in the low float bits must not become infinity.
  const uint16_t low_nan = FloatToHalf(std::bit_cast<float>(0x7f800001u));
  EXPECT_TRUE(std::isnan(HalfToFloat(low_nan))) << std::hex << low_nan;
}

TEST(HalfConversion, Decoding) {
  EXPECT_EQ(HalfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(HalfToFloat(0xc000), -2.0f);
  EXPECT_TRUE(std::signbit(HalfToFloat(0x8000)));
  EXPECT_EQ(HalfToFloat(0x8000), 0.0f);
  EXPECT_EQ(HalfToFloat(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(HalfToFloat(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0xfc01)));
}

TEST(HalfConversion, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToHalf(f), h) << std::hex << h;
  }
}

TEST(HalfConversion, MatchesNaiveNearestSearch) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<uint32_t> bits(0, 0xffffffffu);
  int checked = 0;
  for (int i = 0; i < 400000; ++i) {
    // Random bit patterns restricted to float16's range and a bit below (subnormals).
    const uint32_t exponent = 95 + bits(rng) % 50;  // 2^-32 .. 2^17
    const uint32_t x = (bits(rng) & 0x807fffffu) | (exponent << 23);
    const float f = std::bit_cast<float>(x);
    ASSERT_EQ(FloatToHalf(f), NaiveHalf(f)) << f;
    ++checked;
  }
  // Exact midpoints between neighbouring halves exercise ties to even.
  for (uint32_t h = 0; h < 0x7bff; h += 7) {
    const double mid = (static_cast<double>(HalfToFloat(h)) + HalfToFloat(h + 1)) / 2;
    const float f = static_cast<float>(mid);
    ASSERT_EQ(static_cast<double>(f), mid);
    ASSERT_EQ(FloatToHalf(f), NaiveHalf(f)) << f;
    ASSERT_EQ(FloatToHalf(f) % 2, 0) << f;
  }
  EXPECT_GT(checked, 0);
}

// ---- ConvertToFloat16 on small graphs ---------------------------------------------------

class Graph {
 public:
  explicit Graph(int64_t opset = 13) {
    model_.set_ir_version(8);
    auto* o = model_.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    g()->set_name("g");
    auto* meta = model_.add_metadata_props();
    meta->set_key("names");
    meta->set_value("{0: 'a'}");
  }
  onnx::GraphProto* g() { return model_.mutable_graph(); }
  void Input(const std::string& name, const std::vector<int64_t>& dims, int32_t type = kFloat) {
    Describe(g()->add_input(), name, dims, type);
  }
  void Output(const std::string& name, const std::vector<int64_t>& dims, int32_t type = kFloat) {
    Describe(g()->add_output(), name, dims, type);
  }
  void Floats(const std::string& name, const std::vector<int64_t>& dims,
              const std::vector<float>& values) {
    *g()->add_initializer() = FloatTensor(name, dims, values);
  }
  void Ints(const std::string& name, const std::vector<int64_t>& values) {
    *g()->add_initializer() = Int64Tensor(name, {static_cast<int64_t>(values.size())}, values);
  }
  onnx::NodeProto& Node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs) {
    auto* n = g()->add_node();
    n->set_op_type(op);
    n->set_name(outputs.at(0) + "_node");
    for (const auto& i : inputs) n->add_input(i);
    for (const auto& o : outputs) n->add_output(o);
    return *n;
  }
  static void IntAttr(onnx::NodeProto& n, const std::string& name, int64_t v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  const onnx::ModelProto& model() const { return model_; }

 private:
  static void Describe(onnx::ValueInfoProto* v, const std::string& name,
                       const std::vector<int64_t>& dims, int32_t type) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(type);
    for (int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
  }
  onnx::ModelProto model_;
};

int32_t ElemType(const onnx::ModelProto& m, const std::string& tensor) {
  for (const auto* list : {&m.graph().input(), &m.graph().output(), &m.graph().value_info()}) {
    for (const auto& v : *list) {
      if (v.name() == tensor) return v.type().tensor_type().elem_type();
    }
  }
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == tensor) return t.data_type();
  }
  return -1;
}

const onnx::NodeProto* FindNode(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& n : m.graph().node()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

int CountOps(const onnx::ModelProto& m, const std::string& op) {
  int n = 0;
  for (const auto& node : m.graph().node()) n += node.op_type() == op;
  return n;
}

// Runs a one-input model with ONNX Runtime; float16 inputs and outputs are converted.
std::vector<std::vector<float>> RunOrt(const onnx::ModelProto& model, std::vector<float> input,
                                       const std::vector<int64_t>& shape) {
  static Ort::Env env(ORT_LOGGING_LEVEL_FATAL, "fp16_unit_test");
  const std::vector<uint8_t> bytes = SerializeModel(model);
  Ort::SessionOptions so;
  so.SetIntraOpNumThreads(1);
  Ort::Session session(env, bytes.data(), bytes.size(), so);
  const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::AllocatorWithDefaultOptions allocator;
  const std::string in_name = session.GetInputNameAllocated(0, allocator).get();
  const bool half_in = session.GetInputTypeInfo(0).GetTensorTypeAndShapeInfo().GetElementType() ==
                       ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
  std::vector<Ort::Float16_t> halves;
  for (float v : input) halves.emplace_back(v);
  Ort::Value value = half_in ? Ort::Value::CreateTensor<Ort::Float16_t>(
                                   memory, halves.data(), halves.size(), shape.data(), shape.size())
                             : Ort::Value::CreateTensor<float>(memory, input.data(), input.size(),
                                                               shape.data(), shape.size());
  std::vector<std::string> names;
  for (size_t i = 0; i < session.GetOutputCount(); ++i)
    names.push_back(session.GetOutputNameAllocated(i, allocator).get());
  std::vector<const char*> out_ptrs;
  for (const auto& n : names) out_ptrs.push_back(n.c_str());
  const char* in_ptr = in_name.c_str();
  auto outs = session.Run(Ort::RunOptions{}, &in_ptr, &value, 1, out_ptrs.data(), out_ptrs.size());
  std::vector<std::vector<float>> result;
  for (auto& o : outs) {
    const auto info = o.GetTensorTypeAndShapeInfo();
    std::vector<float> v(info.GetElementCount());
    if (info.GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) {
      const auto* p = o.GetTensorData<Ort::Float16_t>();
      for (size_t k = 0; k < v.size(); ++k) v[k] = p[k].ToFloat();
    } else {
      std::memcpy(v.data(), o.GetTensorData<float>(), v.size() * sizeof(float));
    }
    result.push_back(std::move(v));
  }
  return result;
}

std::vector<float> RandomInput(size_t n) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// x [1,2,4,4] -> Conv(w, b) -> Sigmoid -> Resize x2 (nearest) -> Softmax(axis 1) -> y [1,2,8,8]
Graph ConvHead() {
  Graph gr(13);
  gr.Input("x", {1, 2, 4, 4});
  gr.Output("y", {1, 2, 8, 8});
  std::vector<float> w(2 * 2 * 3 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
  gr.Floats("w", {2, 2, 3, 3}, w);
  gr.Floats("b", {2}, {0.25f, -0.5f});
  gr.Floats("scales", {4}, {1, 1, 2, 2});
  gr.Floats("roi", {0}, {});
  auto& conv = gr.Node("Conv", {"x", "w", "b"}, {"c"});
  auto* pads = conv.add_attribute();
  pads->set_name("pads");
  pads->set_type(onnx::AttributeProto::INTS);
  for (int k = 0; k < 4; ++k) pads->add_ints(1);
  gr.Node("Sigmoid", {"c"}, {"s"});
  auto& resize = gr.Node("Resize", {"s", "roi", "scales"}, {"r"});
  auto* mode = resize.add_attribute();
  mode->set_name("mode");
  mode->set_type(onnx::AttributeProto::STRING);
  mode->set_s("nearest");
  auto& softmax = gr.Node("Softmax", {"r"}, {"y"});
  Graph::IntAttr(softmax, "axis", 1);
  return gr;
}

TEST(ConvertToFloat16, KeepsIoFloat32WithBoundaryCasts) {
  const Graph gr = ConvHead();
  Fp16Options options;
  options.float32_ops = {};
  Fp16Report report;
  const onnx::ModelProto m = ConvertToFloat16(gr.model(), "head.onnx", options, &report);

  EXPECT_EQ(ElemType(m, "x"), kFloat);
  EXPECT_EQ(ElemType(m, "y"), kFloat);
  EXPECT_EQ(ElemType(m, "w"), kHalf);
  EXPECT_EQ(ElemType(m, "b"), kHalf);
  EXPECT_EQ(ElemType(m, "scales"), kFloat) << "Resize scales are float32 by the ONNX spec";
  EXPECT_EQ(ElemType(m, "roi"), kFloat) << "ONNX Runtime reads Resize roi as float";
  EXPECT_EQ(ElemType(m, "c"), kHalf);
  EXPECT_EQ(report.nodes_fp16, 4);
  EXPECT_TRUE(report.float32_nodes.empty());
  EXPECT_EQ(report.casts_inserted, 2);  // after x, before y
  EXPECT_EQ(CountOps(m, "Cast"), 2);
  EXPECT_EQ(report.constants_converted, 2);
  EXPECT_EQ(report.values_converted, 38);
  ASSERT_EQ(report.boundary_casts.size(), 2u);
  EXPECT_EQ(Metadata(m).at("names"), "{0: 'a'}");
  EXPECT_NO_THROW(CheckModel(m, "head_fp16.onnx"));

  const auto input = RandomInput(32);
  const auto ref = RunOrt(gr.model(), input, {1, 2, 4, 4});
  const auto out = RunOrt(m, input, {1, 2, 4, 4});
  ASSERT_EQ(out.at(0).size(), 128u);
  for (size_t i = 0; i < ref[0].size(); ++i) EXPECT_NEAR(out[0][i], ref[0][i], 2e-3) << i;
}

TEST(ConvertToFloat16, Float32OpsGetCastsAround) {
  const Graph gr = ConvHead();
  Fp16Options options;
  options.float32_ops = {"Resize"};
  Fp16Report report;
  const onnx::ModelProto m = ConvertToFloat16(gr.model(), "head.onnx", options, &report);
  EXPECT_EQ(ElemType(m, "r"), kFloat);
  EXPECT_EQ(ElemType(m, "s"), kHalf);
  EXPECT_EQ(report.float32_op_counts.at("Resize"), 1);
  ASSERT_EQ(report.float32_nodes.size(), 1u);
  EXPECT_NE(report.float32_nodes[0].find("float32 op list"), std::string::npos);
  // x -> half, s -> float for Resize, r -> half for Softmax, y -> float.
  EXPECT_EQ(report.casts_inserted, 4);
  const onnx::NodeProto* resize = FindNode(m, "r_node");
  ASSERT_NE(resize, nullptr);
  EXPECT_EQ(ElemType(m, resize->input(0)), kFloat);
}

TEST(ConvertToFloat16, Fp16IoMakesInputsAndOutputsHalf) {
  const Graph gr = ConvHead();
  Fp16Options options;
  options.keep_io_types = false;
  options.float32_ops = {};
  Fp16Report report;
  const onnx::ModelProto m = ConvertToFloat16(gr.model(), "head.onnx", options, &report);
  EXPECT_EQ(ElemType(m, "x"), kHalf);
  EXPECT_EQ(ElemType(m, "y"), kHalf);
  EXPECT_EQ(CountOps(m, "Cast"), 0);
  const auto input = RandomInput(32);
  const auto ref = RunOrt(gr.model(), input, {1, 2, 4, 4});
  const auto out = RunOrt(m, input, {1, 2, 4, 4});
  for (size_t i = 0; i < ref[0].size(); ++i) EXPECT_NEAR(out[0][i], ref[0][i], 2e-3) << i;
}

TEST(ConvertToFloat16, EmulationRoundsEveryFloat16TensorButStaysFloat32) {
  const Graph gr = ConvHead();
  Fp16Options options;
  options.float32_ops = {};
  options.emulate = true;
  Fp16Report report;
  const onnx::ModelProto m = ConvertToFloat16(gr.model(), "head.onnx", options, &report);
  EXPECT_EQ(ElemType(m, "w"), kFloat);
  EXPECT_EQ(ElemType(m, "x"), kFloat);
  EXPECT_EQ(ElemType(m, "y"), kFloat);
  EXPECT_EQ(CountOps(m, "Cast"), 0);
  for (const auto& t : m.graph().initializer()) {
    if (t.name() != "w") continue;
    for (float v : FloatData(t)) EXPECT_EQ(HalfToFloat(FloatToHalf(v)), v);
  }
  const auto input = RandomInput(32);
  const auto ref = RunOrt(gr.model(), input, {1, 2, 4, 4});
  const auto out = RunOrt(m, input, {1, 2, 4, 4});
  for (size_t i = 0; i < ref[0].size(); ++i) {
    EXPECT_NEAR(out[0][i], ref[0][i], 2e-3) << i;
    EXPECT_EQ(HalfToFloat(FloatToHalf(out[0][i])), out[0][i]) << "not rounded: " << out[0][i];
  }
}

TEST(ConvertToFloat16, ShapeArithmeticStaysFloat32) {
  // x -> Shape -> Cast(float) -> Div(1) -> Cast(int64) -> Reshape(x, .) -> Relu -> y
  Graph gr(13);
  gr.Input("x", {1, 2, 4, 4});
  gr.Output("y", {1, 2, 4, 4});
  gr.Floats("one", {}, {1.0f});
  gr.Node("Shape", {"x"}, {"shape"});
  Graph::IntAttr(gr.Node("Cast", {"shape"}, {"shape_f"}), "to", kFloat);
  gr.Node("Div", {"shape_f", "one"}, {"shape_d"});
  Graph::IntAttr(gr.Node("Cast", {"shape_d"}, {"shape_i"}), "to", kInt64);
  gr.Node("Reshape", {"x", "shape_i"}, {"reshaped"});
  gr.Node("Relu", {"reshaped"}, {"y"});
  Fp16Report report;
  Fp16Options options;
  options.float32_ops = {};
  const onnx::ModelProto m = ConvertToFloat16(gr.model(), "shape.onnx", options, &report);
  EXPECT_EQ(ElemType(m, "shape_f"), kFloat);
  EXPECT_EQ(ElemType(m, "shape_d"), kFloat);
  EXPECT_EQ(ElemType(m, "one"), kFloat);
  EXPECT_EQ(ElemType(m, "reshaped"), kHalf);
  EXPECT_EQ(report.float32_op_counts.at("Div"), 1);
  EXPECT_EQ(report.float32_op_counts.at("Cast"), 2);  // to float and back to int64
  EXPECT_EQ(IntAttribute(*FindNode(m, "shape_f_node"), "to", 0), kFloat);
  const auto input = RandomInput(32);
  const auto out = RunOrt(m, input, {1, 2, 4, 4});
  for (size_t i = 0; i < input.size(); ++i) EXPECT_NEAR(out[0][i], input[i], 1e-3);
}

TEST(ConvertToFloat16, ConstantsCastsAndInnerGraphOutputs) {
  // x -> Mul(k) -> Cast(to float) -> Add(Constant) -> a (graph output) -> Relu -> y (output)
  Graph gr(13);
  gr.Input("x", {4});
  gr.Output("a", {4});
  gr.Output("y", {4});
  gr.Floats("k", {4}, {1e5f, 1e-9f, -70000.0f, 2.0f});
  gr.Node("Mul", {"x", "k"}, {"m"});
  Graph::IntAttr(gr.Node("Cast", {"m"}, {"mc"}), "to", kFloat);
  auto& c = gr.Node("Constant", {}, {"c"});
  auto* value = c.add_attribute();
  value->set_name("value_float");
  value->set_type(onnx::AttributeProto::FLOAT);
  value->set_f(0.5f);
  gr.Node("Add", {"mc", "c"}, {"a"});
  gr.Node("Relu", {"a"}, {"y"});
  Fp16Options options;
  options.float32_ops = {};
  Fp16Report report;
  const onnx::ModelProto m = ConvertToFloat16(gr.model(), "const.onnx", options, &report);
  EXPECT_EQ(report.overflow_clamped, 2);
  EXPECT_EQ(report.underflow_to_zero, 1);
  EXPECT_EQ(report.constants_converted, 2);
  EXPECT_FLOAT_EQ(report.max_abs_value, 1e5f);
  EXPECT_EQ(ElemType(m, "k"), kHalf);
  EXPECT_EQ(ElemType(m, "c"), kHalf) << "the Constant node holds float16";
  EXPECT_EQ(ElemType(m, "a"), kFloat);
  EXPECT_EQ(ElemType(m, "y"), kFloat);
  EXPECT_EQ(IntAttribute(*FindNode(m, "mc_node"), "to", 0), kHalf);
  // Relu reads the float16 tensor behind the output 'a', not a float32 copy cast back.
  const onnx::NodeProto* relu = FindNode(m, "y_node");
  ASSERT_NE(relu, nullptr);
  EXPECT_NE(relu->input(0), "a");
  EXPECT_EQ(ElemType(m, relu->input(0)), kHalf);
  const auto out = RunOrt(m, {1.0f, 1.0f, 1.0f, 1.0f}, {4});
  // Clamped, not infinity (+0.5 is below float16's resolution there: 32).
  EXPECT_NEAR(out[0][0], 65504.0f, 32.0f);
  EXPECT_FLOAT_EQ(out[0][1], 0.5f) << "1e-9 flushed to zero";
  EXPECT_NEAR(out[0][2], -65504.0f, 32.0f);
  EXPECT_FLOAT_EQ(out[0][3], 2.5f);
  EXPECT_FLOAT_EQ(out[1][3], 2.5f);
}

TEST(ConvertToFloat16, RefusesWhatItCannotConvert) {
  const Graph gr = ConvHead();
  Fp16Options options;
  const onnx::ModelProto once = ConvertToFloat16(gr.model(), "head.onnx", options, nullptr);
  try {
    ConvertToFloat16(once, "head_fp16.onnx", options, nullptr);
    FAIL() << "converted an fp16 model twice";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("head_fp16.onnx: already holds float16"),
              std::string::npos)
        << e.what();
  }

  Graph q(13);
  q.Input("x", {4});
  q.Output("y", {4}, onnx::TensorProto::UINT8);
  q.Output("s", {});
  q.Output("z", {}, onnx::TensorProto::UINT8);
  q.Node("DynamicQuantizeLinear", {"x"}, {"y", "s", "z"});
  EXPECT_THROW(ConvertToFloat16(q.model(), "q.onnx", options, nullptr), Error);

  Graph ints(13);
  ints.Input("x", {4}, kInt64);
  ints.Output("y", {4}, kInt64);
  ints.Node("Neg", {"x"}, {"y"});
  try {
    ConvertToFloat16(ints.model(), "ints.onnx", options, nullptr);
    FAIL() << "converted a model without float tensors";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no node can compute in float16"), std::string::npos);
  }
}

}  // namespace
}  // namespace cvdeploy::optimize
