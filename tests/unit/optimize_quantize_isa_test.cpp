// SPDX-License-Identifier: Apache-2.0
// ISA-aware placement: PlaceForIsa on injected CPU descriptions (AMX, AVX-512 VNNI, AVX-VNNI,
// AVX2, ARM, nothing known), --target-isa parsing, and its effect on a small two-Conv graph:
// the Conv on the image gets 7-bit weights only where u8 x s8 pair sums saturate, every other
// Conv keeps 8-bit weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "cvdeploy/error.h"
#include "cvdeploy/quantize.h"
#include "model/onnx_model.h"
#include "optimize/calibration.h"
#include "optimize/quantize.h"

namespace cvdeploy::optimize {
namespace {

bool Mentions(const IsaPlacement& p, const std::string& text) {
  return std::any_of(p.decisions.begin(), p.decisions.end(),
                     [&](const std::string& d) { return d.find(text) != std::string::npos; });
}

TEST(PlaceForIsaTest, VnniHostKeepsEightBitWeightsEverywhere) {
  const IsaPlacement p = PlaceForIsa({"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw",
                                      "avx512vl", "avx512_vnni", "avx512_bf16"});
  EXPECT_EQ(p.arithmetic, Int8Arithmetic::kVnni);
  EXPECT_EQ(p.target, "avx512_vnni");
  EXPECT_EQ(p.activations, "uint8");
  EXPECT_FALSE(p.input_conv_reduce_range);
  EXPECT_TRUE(Mentions(p, "input Conv float"));
  EXPECT_FALSE(Mentions(p, "AMX"));
}

TEST(PlaceForIsaTest, AvxVnniWithoutAvx512CountsAsVnni) {
  const IsaPlacement p = PlaceForIsa({"avx2", "fma", "avx_vnni"});
  EXPECT_EQ(p.arithmetic, Int8Arithmetic::kVnni);
  EXPECT_EQ(p.target, "avx_vnni");
  EXPECT_FALSE(p.input_conv_reduce_range);
}

TEST(PlaceForIsaTest, AmxHostIsPlacedLikeVnniAndSaysWhy) {
  const IsaPlacement p =
      PlaceForIsa({"avx2", "avx512f", "avx512_vnni", "amx_tile", "amx_int8", "avx512_bf16"});
  EXPECT_EQ(p.arithmetic, Int8Arithmetic::kAmx);
  EXPECT_EQ(p.target, "amx_int8");
  EXPECT_FALSE(p.input_conv_reduce_range);
  EXPECT_TRUE(Mentions(p, "AMX"));
}

TEST(PlaceForIsaTest, Avx2WithoutVnniSaturatesSoTheInputConvGetsSevenBits) {
  for (const auto& isa : std::vector<std::vector<std::string>>{
           {"sse4_2", "avx", "avx2", "fma", "f16c"},
           {"avx2", "avx512f", "avx512bw", "avx512vl"}}) {  // Skylake-SP: AVX-512 without VNNI
    const IsaPlacement p = PlaceForIsa(isa);
    EXPECT_EQ(p.arithmetic, Int8Arithmetic::kPairInt16) << isa.back();
    EXPECT_TRUE(p.input_conv_reduce_range) << isa.back();
    EXPECT_TRUE(Mentions(p, "saturate")) << isa.back();
  }
  EXPECT_EQ(PlaceForIsa({"avx2"}).target, "avx2");
  EXPECT_EQ(PlaceForIsa({"avx2", "avx512bw"}).target, "avx512bw");
}

TEST(PlaceForIsaTest, ArmAndUnknownHosts) {
  const IsaPlacement arm = PlaceForIsa({"neon", "asimd"});
  EXPECT_EQ(arm.arithmetic, Int8Arithmetic::kArm);
  EXPECT_FALSE(arm.input_conv_reduce_range);
  // Nothing known: the conservative (saturating) assumption.
  const IsaPlacement unknown = PlaceForIsa({});
  EXPECT_EQ(unknown.target, "unknown");
  EXPECT_EQ(unknown.arithmetic, Int8Arithmetic::kPairInt16);
  EXPECT_TRUE(unknown.input_conv_reduce_range);
}

TEST(ParseIsaFlagsTest, KnownFlagsInOrderWithoutDuplicates) {
  EXPECT_EQ(ParseIsaFlags("avx2,fma,avx2"), (std::vector<std::string>{"avx2", "fma"}));
  EXPECT_EQ(ParseIsaFlags("amx_int8"), (std::vector<std::string>{"amx_int8"}));
  for (const char* bad : {"avx3", "", "avx2,", "AVX2", "avx2,,fma"}) {
    try {
      ParseIsaFlags(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << bad;
      EXPECT_NE(std::string(e.what()).find("--target-isa"), std::string::npos) << e.what();
    }
  }
}

// images [1,3,8,8] -> Conv 3->16 3x3 (the input Conv) -> Conv 16->16 1x1 -> output.
onnx::ModelProto TwoConvModel() {
  onnx::ModelProto model;
  model.set_ir_version(8);
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(13);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("two_conv");
  auto add_value = [](google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list,
                      const std::string& name, std::vector<int64_t> dims) {
    onnx::ValueInfoProto* v = list->Add();
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
  };
  add_value(g->mutable_input(), "images", {1, 3, 8, 8});
  add_value(g->mutable_output(), "out", {1, 16, 8, 8});
  auto weights = [](int64_t n, float phase) {
    std::vector<float> w(n);
    for (int64_t i = 0; i < n; ++i) w[i] = 0.5f * std::sin(0.7f * static_cast<float>(i) + phase);
    return w;
  };
  *g->add_initializer() = FloatTensor("w0", {16, 3, 3, 3}, weights(16 * 27, 0.1f));
  *g->add_initializer() = FloatTensor("b0", {16}, weights(16, 0.3f));
  *g->add_initializer() = FloatTensor("w1", {16, 16, 1, 1}, weights(256, 0.9f));
  *g->add_initializer() = FloatTensor("b1", {16}, weights(16, 1.3f));
  auto conv = [&](const std::string& name, const std::string& x, const std::string& w,
                  const std::string& b, const std::string& y, int64_t pad) {
    onnx::NodeProto* n = g->add_node();
    n->set_op_type("Conv");
    n->set_name(name);
    n->add_input(x);
    n->add_input(w);
    n->add_input(b);
    n->add_output(y);
    auto* pads = n->add_attribute();
    pads->set_name("pads");
    pads->set_type(onnx::AttributeProto::INTS);
    for (int i = 0; i < 4; ++i) pads->add_ints(pad);
  };
  conv("conv0", "images", "w0", "b0", "y0", 1);
  conv("conv1", "y0", "w1", "b1", "out", 0);
  return model;
}

CalibrationTable UniformTable(const std::vector<std::string>& tensors) {
  CalibrationTable table;
  for (const auto& t : tensors) {
    TensorStats s;
    s.min = t == "images" ? 0.0f : -2.0f;
    s.max = t == "images" ? 1.0f : 2.0f;
    s.hist_min = s.min;
    s.hist_max = s.max;
    s.bins.assign(16, 10);
    table.stats[t] = s;
  }
  return table;
}

// Largest |int8 weight| behind the DequantizeLinear feeding each Conv, by Conv name.
std::map<std::string, int> MaxQuantizedWeight(const onnx::ModelProto& q) {
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : q.graph().initializer()) inits[t.name()] = &t;
  std::map<std::string, const onnx::NodeProto*> producer;
  for (const auto& n : q.graph().node()) producer[n.output(0)] = &n;
  std::map<std::string, int> out;
  for (const auto& n : q.graph().node()) {
    if (n.op_type() != "Conv") continue;
    const onnx::NodeProto* dq = producer.at(n.input(1));
    const onnx::TensorProto& w = *inits.at(dq->input(0));
    int m = 0;
    for (char c : w.raw_data()) m = std::max(m, std::abs(static_cast<int>(static_cast<int8_t>(c))));
    out[n.name()] = m;
  }
  return out;
}

TEST(IsaPlacementApplyTest, InputConvWeightBitsFollowTheTargetArithmetic) {
  const onnx::ModelProto prepared = PrepareForQuantization(TwoConvModel(), "two_conv");
  QuantizeOptions options;
  options.quantize_input_conv = true;
  const CalibrationTable table = UniformTable({"images", "y0", "out"});
  for (const auto& [isa, seven_bit] : std::vector<std::pair<std::vector<std::string>, bool>>{
           {{"avx2", "fma"}, true},
           {{"avx2", "avx512f", "avx512_vnni"}, false},
           {{"avx512_vnni", "amx_int8"}, false},
           {{"neon", "asimd"}, false}}) {
    const IsaPlacement placement = PlaceForIsa(isa);
    options.reduce_range_input_conv = placement.input_conv_reduce_range;
    const QuantPlan plan = PlanQuantization(prepared, options);
    ASSERT_EQ(plan.quantized, (std::vector<std::string>{"conv0", "conv1"}));
    const auto max_q = MaxQuantizedWeight(ApplyQuantization(prepared, plan, table, options));
    const std::string where = placement.target;
    if (seven_bit) {
      EXPECT_LE(max_q.at("conv0"), 64) << where;
    } else {
      EXPECT_GT(max_q.at("conv0"), 64) << where;
    }
    EXPECT_GT(max_q.at("conv1"), 64) << where << ": only the input Conv is narrowed";
  }
  // --reduce-range narrows every Conv whatever the target.
  options.reduce_range = true;
  options.reduce_range_input_conv = false;
  const auto all7 = MaxQuantizedWeight(
      ApplyQuantization(prepared, PlanQuantization(prepared, options), table, options));
  EXPECT_LE(all7.at("conv0"), 64);
  EXPECT_LE(all7.at("conv1"), 64);
}

}  // namespace
}  // namespace cvdeploy::optimize
