// SPDX-License-Identifier: Apache-2.0
// model::CountCost against counts made without it: a small graph built here whose MACs
// and parameters are worked out by hand, and the figures Ultralytics publishes for yolov8n
// and yolo11n (parameters exactly, GFLOPs to the one decimal they print).
#include "model/flops.h"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "model/onnx_model.h"
#include "support/assets.h"

namespace cvdeploy::testing {
namespace {

using optimize::FloatTensor;
using optimize::Int64Tensor;

void AddInts(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void AddInt(onnx::NodeProto& node, const std::string& name, int64_t v) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

onnx::NodeProto& AddNode(onnx::GraphProto& g, const std::string& op,
                         const std::vector<std::string>& in, const std::string& out) {
  auto* n = g.add_node();
  n->set_op_type(op);
  n->set_name(out + "_node");
  for (const auto& i : in) n->add_input(i);
  n->add_output(out);
  return *n;
}

void AddWeight(onnx::GraphProto& g, const std::string& name, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  *g.add_initializer() = FloatTensor(name, dims, std::vector<float>(static_cast<size_t>(n), 0.5f));
}

void AddValue(onnx::ValueInfoProto* v, const std::string& name, const std::vector<int64_t>& dims,
              const std::vector<std::string>& symbols = {}) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = t->mutable_shape();
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i < symbols.size() && !symbols[i].empty()) {
      shape->add_dim()->set_dim_param(symbols[i]);
    } else {
      shape->add_dim()->set_dim_value(dims[i]);
    }
  }
}

// images [1,3,8,8]
//  -> Conv 3->4, 3x3, pad 1                         [1,4,8,8]  MACs 4*27*64 = 6912, params 112
//  -> Sigmoid, Mul (SiLU)                           element-wise 2 * 256
//  -> depthwise Conv, group 4, 3x3, stride 2, pad 1 [1,4,4,4]  MACs 64*9 = 576, params 40
//  -> ConvTranspose 4->2, 2x2, stride 2             [1,2,8,8]  MACs 64*(2*2*2) = 512, params 32
//  -> (branch) Reshape [1,4,16] -> MatMul [16,5]    [1,4,5]    MACs 20*16 = 320, params 80
//  -> Reshape [4,5] -> Gemm B [6,5]^T + C [6]       [4,6]      MACs 24*5 = 120, params 36
onnx::ModelProto TinyModel(bool symbolic_input) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(13);
  onnx::GraphProto& g = *m.mutable_graph();
  g.set_name("tiny");
  AddValue(
      g.add_input(), "images", {1, 3, 8, 8},
      symbolic_input ? std::vector<std::string>{"", "", "h", "w"} : std::vector<std::string>{});
  AddWeight(g, "w1", {4, 3, 3, 3});
  AddWeight(g, "b1", {4});
  auto& c1 = AddNode(g, "Conv", {"images", "w1", "b1"}, "c1");
  AddInts(c1, "pads", {1, 1, 1, 1});
  AddInts(c1, "kernel_shape", {3, 3});
  AddNode(g, "Sigmoid", {"c1"}, "s1");
  AddNode(g, "Mul", {"c1", "s1"}, "a1");
  AddWeight(g, "w2", {4, 1, 3, 3});
  AddWeight(g, "b2", {4});
  auto& c2 = AddNode(g, "Conv", {"a1", "w2", "b2"}, "c2");
  AddInts(c2, "pads", {1, 1, 1, 1});
  AddInts(c2, "strides", {2, 2});
  AddInt(c2, "group", 4);
  AddWeight(g, "w3", {4, 2, 2, 2});
  auto& c3 = AddNode(g, "ConvTranspose", {"c2", "w3"}, "up");
  AddInts(c3, "strides", {2, 2});
  *g.add_initializer() = Int64Tensor("shape3", {3}, {1, 4, 16});
  AddNode(g, "Reshape", {"c2", "shape3"}, "r1");
  AddWeight(g, "wm", {16, 5});
  AddNode(g, "MatMul", {"r1", "wm"}, "mm");
  *g.add_initializer() = Int64Tensor("shape2", {2}, {4, 5});
  AddNode(g, "Reshape", {"mm", "shape2"}, "r2");
  AddWeight(g, "wg", {6, 5});
  AddWeight(g, "bg", {6});
  auto& gemm = AddNode(g, "Gemm", {"r2", "wg", "bg"}, "gm");
  AddInt(gemm, "transB", 1);
  AddValue(g.add_output(), "up", {1, 2, 8, 8});
  AddValue(g.add_output(), "gm", {4, 6});
  return m;
}

TEST(OptimizeFlopsTest, TinyGraphMatchesTheHandCount) {
  const onnx::ModelProto model = TinyModel(false);
  optimize::CheckModel(model, "tiny");
  const model::GraphCost cost = model::CountCost(model);
  EXPECT_EQ(cost.params, 112 + 40 + 32 + 80 + 36);
  EXPECT_DOUBLE_EQ(cost.flops, 2.0 * (6912 + 576 + 512 + 320 + 120));
  EXPECT_DOUBLE_EQ(cost.elementwise_ops, 2 * 256);  // Sigmoid and Mul; Reshape moves data
  EXPECT_TRUE(cost.uncounted.empty());

  ASSERT_EQ(cost.by_op.count("Conv"), 1u);
  EXPECT_EQ(cost.by_op.at("Conv").nodes, 2);
  EXPECT_EQ(cost.by_op.at("Conv").params, 112 + 40);
  EXPECT_DOUBLE_EQ(cost.by_op.at("Conv").flops, 2.0 * (6912 + 576));
  EXPECT_DOUBLE_EQ(cost.by_op.at("ConvTranspose").flops, 2.0 * 512);
  EXPECT_DOUBLE_EQ(cost.by_op.at("MatMul").flops, 2.0 * 320);
  EXPECT_EQ(cost.by_op.at("MatMul").params, 80);
  EXPECT_DOUBLE_EQ(cost.by_op.at("Gemm").flops, 2.0 * 120);
  EXPECT_EQ(cost.by_op.at("Reshape").nodes, 2);
  EXPECT_DOUBLE_EQ(cost.by_op.at("Reshape").flops, 0);

  ASSERT_EQ(cost.nodes.size(), 5u);  // the nodes with MACs or parameters, graph order
  EXPECT_EQ(cost.nodes[0].name, "c1_node");
  EXPECT_EQ(cost.nodes[0].output_shape, (std::vector<int64_t>{1, 4, 8, 8}));
  EXPECT_EQ(cost.nodes[1].name, "c2_node");
  EXPECT_EQ(cost.nodes[1].output_shape, (std::vector<int64_t>{1, 4, 4, 4}));
  EXPECT_DOUBLE_EQ(cost.nodes[1].flops, 2.0 * 576);
  EXPECT_EQ(cost.nodes[2].op_type, "ConvTranspose");
  EXPECT_EQ(cost.nodes[2].output_shape, (std::vector<int64_t>{1, 2, 8, 8}));
}

TEST(OptimizeFlopsTest, SymbolicShapesAreReportedNotGuessed) {
  const model::GraphCost cost = model::CountCost(TinyModel(true));
  // Parameters do not depend on shapes; every node after the symbolic input has no MAC count
  // (the Reshape to a constant shape makes MatMul and Gemm countable again).
  EXPECT_EQ(cost.params, 300);
  ASSERT_EQ(cost.uncounted.size(), 3u);
  EXPECT_NE(cost.uncounted[0].find("c1_node"), std::string::npos) << cost.uncounted[0];
  EXPECT_DOUBLE_EQ(cost.by_op.at("Conv").flops, 0);
}

// A dynamic batch, height and width (an Ultralytics `dynamic=True` export) count at batch 1
// and the metadata's imgsz, as Ultralytics reports them.
TEST(OptimizeFlopsTest, DynamicAxesCountAtBatchOneAndTheMetadataImgsz) {
  onnx::ModelProto model = TinyModel(true);
  auto* batch = model.mutable_graph()
                    ->mutable_input(0)
                    ->mutable_type()
                    ->mutable_tensor_type()
                    ->mutable_shape()
                    ->mutable_dim(0);
  batch->set_dim_param("batch");
  auto* imgsz = model.add_metadata_props();
  imgsz->set_key("imgsz");
  imgsz->set_value("[8, 8]");
  const model::GraphCost cost = model::CountCost(model);
  const model::GraphCost fixed = model::CountCost(TinyModel(false));
  EXPECT_TRUE(cost.uncounted.empty());
  EXPECT_DOUBLE_EQ(cost.flops, fixed.flops);
  EXPECT_EQ(cost.assumed_input, (std::vector<int64_t>{1, 3, 8, 8}));
  EXPECT_TRUE(fixed.assumed_input.empty());
  // Without the metadata only the batch is known: height and width stay uncounted.
  model.clear_metadata_props();
  const model::GraphCost partial = model::CountCost(model);
  EXPECT_EQ(partial.assumed_input, (std::vector<int64_t>{1, 3, -1, -1}));
  EXPECT_EQ(partial.uncounted.size(), 3u);
}

TEST(OptimizeFlopsTest, CountingDoesNotModifyTheModel) {
  const onnx::ModelProto model = TinyModel(false);
  const std::string before = model.SerializeAsString();
  (void)model::CountCost(model);
  EXPECT_EQ(model.SerializeAsString(), before);
  EXPECT_EQ(model.graph().value_info_size(), 0);
}

// Ultralytics prints "YOLOv8n summary (fused): 3,151,904 parameters, 8.7 GFLOPs" and
// "YOLO11n summary (fused): 2,616,248 parameters, 6.5 GFLOPs" (thop MACs x 2 at 640, Conv
// modules only, BatchNorm folded: exactly what the ONNX export holds).
TEST(OptimizeFlopsTest, Yolov8nMatchesTheUltralyticsFigures) {
  const onnx::ModelProto model = optimize::LoadModel(Asset("models/yolov8n-dq.onnx"));
  const model::GraphCost cost = model::CountCost(model);
  EXPECT_EQ(cost.params, 3151904);
  EXPECT_NEAR(cost.gflops(), 8.7, 0.05);
  EXPECT_TRUE(cost.uncounted.empty());
  EXPECT_EQ(cost.by_op.count("MatMul"), 0u);
  EXPECT_EQ(cost.by_op.at("Conv").nodes, 64);
  EXPECT_DOUBLE_EQ(cost.by_op.at("Conv").flops, cost.flops);
}

TEST(OptimizeFlopsTest, Yolo11nMatchesTheUltralyticsFiguresPlusAttention) {
  const onnx::ModelProto model = optimize::LoadModel(Asset("models/yolo11n-dq.onnx"));
  const model::GraphCost cost = model::CountCost(model);
  EXPECT_EQ(cost.params, 2616248);
  // thop does not see the functional matmuls of the attention block: compare Conv only.
  EXPECT_NEAR(cost.by_op.at("Conv").flops / 1e9, 6.5, 0.05);
  // C2PSA at 640: 2 heads, q/k 32 and v 64 channels over 20x20 = 400 positions:
  // q^T k: 2 * 400 * 400 * 32 MACs; v attn^T: 2 * 64 * 400 * 400 MACs.
  ASSERT_EQ(cost.by_op.count("MatMul"), 1u);
  EXPECT_DOUBLE_EQ(cost.by_op.at("MatMul").flops,
                   2.0 * (2.0 * 400 * 400 * 32 + 2.0 * 64 * 400 * 400));
  EXPECT_EQ(cost.by_op.at("MatMul").params, 0);
  EXPECT_TRUE(cost.uncounted.empty());
}

}  // namespace
}  // namespace cvdeploy::testing
