// SPDX-License-Identifier: Apache-2.0
// TorchGraph as a trainable graph: autograd against central finite differences on a tiny
// synthetic graph (double precision), the write-back of trained weights (float and QDQ) run
// by ONNX Runtime, and the errors for graphs it cannot run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>

#include "cvdeploy/error.h"
#include "cvdeploy/quantize.h"
#include "cvdeploy/tools.h"
#include "model/onnx_model.h"
#include "train/torch_graph.h"
#include "train/torch_test_util.h"

namespace cvdeploy::testing {
namespace {

using train::TorchGraph;

onnx::NodeProto* Node(onnx::GraphProto& g, const std::string& op, std::vector<std::string> in,
                      std::vector<std::string> out) {
  onnx::NodeProto* n = g.add_node();
  n->set_op_type(op);
  n->set_name(op + "_" + std::to_string(g.node_size()));
  for (const auto& s : in) n->add_input(s);
  for (const auto& s : out) n->add_output(s);
  return n;
}

void Ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> values) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void Int(onnx::NodeProto* n, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void Str(onnx::NodeProto* n, const std::string& name, const std::string& value) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

void Init(onnx::GraphProto& g, const std::string& name, std::vector<int64_t> dims) {
  const int64_t n = std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>());
  torch::Tensor v = torch::randn({n}) * 0.5;
  *g.add_initializer() = model::FloatTensor(
      name, dims, std::vector<float>(v.data_ptr<float>(), v.data_ptr<float>() + n));
}

void Io(onnx::ValueInfoProto* v, const std::string& name) {
  v->set_name(name);
  v->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
}

// Conv -> SiLU -> Split -> Conv -> Concat -> MaxPool -> Resize -> Add -> strided Conv ->
// ConvTranspose -> Reshape -> Transpose -> Softmax -> MatMul -> Slice -> Sub -> Div.
std::vector<uint8_t> TinyGraph(const std::string& extra_op = "") {
  torch::manual_seed(7);
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  onnx::GraphProto& g = *m.mutable_graph();
  g.set_name("tiny");
  Io(g.add_input(), "x");
  Init(g, "w1", {4, 2, 3, 3}), Init(g, "b1", {4}), Init(g, "w2", {2, 2, 1, 1}), Init(g, "b2", {2});
  Init(g, "w3", {6, 4, 3, 3}), Init(g, "b3", {6}), Init(g, "wt", {6, 3, 2, 2}), Init(g, "bt", {3});
  Init(g, "mm", {3, 4});
  *g.add_initializer() = model::Int64Tensor("split", {2}, {2, 2});
  *g.add_initializer() = model::FloatTensor("scales", {4}, {1, 1, 2, 2});
  *g.add_initializer() = model::Int64Tensor("shape", {3}, {1, 3, 36});
  *g.add_initializer() = model::Int64Tensor("starts", {1}, {1});
  *g.add_initializer() = model::Int64Tensor("ends", {1}, {3});
  *g.add_initializer() = model::Int64Tensor("axes", {1}, {2});
  *g.add_initializer() = model::FloatTensor("quarter", {}, {0.25f});
  *g.add_initializer() = model::FloatTensor("two", {}, {2.0f});
  Ints(Node(g, "Conv", {"x", "w1", "b1"}, {"c1"}), "pads", {1, 1, 1, 1});
  Node(g, "Sigmoid", {"c1"}, {"s1"});
  Node(g, "Mul", {"c1", "s1"}, {"m1"});
  Int(Node(g, "Split", {"m1", "split"}, {"a", "b"}), "axis", 1);
  Node(g, "Conv", {"a", "w2", "b2"}, {"c2"});
  Int(Node(g, "Concat", {"c2", "b"}, {"cat"}), "axis", 1);
  onnx::NodeProto* mp = Node(g, "MaxPool", {"cat"}, {"mp"});
  Ints(mp, "kernel_shape", {2, 2}), Ints(mp, "strides", {2, 2});
  onnx::NodeProto* rs = Node(g, "Resize", {"mp", "", "scales"}, {"up"});
  Str(rs, "mode", extra_op == "linear" ? "linear" : "nearest");
  Str(rs, "coordinate_transformation_mode", "asymmetric"), Str(rs, "nearest_mode", "floor");
  Node(g, "Add", {"up", "cat"}, {"sum"});
  onnx::NodeProto* c3 = Node(g, "Conv", {"sum", "w3", "b3"}, {"c3"});
  Ints(c3, "strides", {2, 2}), Ints(c3, "pads", {1, 1, 1, 1});
  Ints(Node(g, "ConvTranspose", {"c3", "wt", "bt"}, {"ct"}), "strides", {2, 2});
  Node(g, "Reshape", {"ct", "shape"}, {"r"});
  Ints(Node(g, "Transpose", {"r"}, {"t"}), "perm", {0, 2, 1});
  Int(Node(g, "Softmax", {"t"}, {"sm"}), "axis", -1);
  Node(g, "MatMul", {"sm", "mm"}, {"prod"});
  Node(g, "Slice", {"prod", "starts", "ends", "axes"}, {"sl"});
  Node(g, "Sub", {"sl", "quarter"}, {"sub"});
  Node(g, extra_op == "LSTM" ? "LSTM" : "Div", {"sub", "two"}, {"y"});
  Io(g.add_output(), "y");
  std::vector<uint8_t> bytes(m.ByteSizeLong());
  m.SerializeToArray(bytes.data(), static_cast<int>(bytes.size()));
  return bytes;
}

TEST(TorchGraphTrain, AutogradEqualsCentralFiniteDifferences) {
  TorchGraph graph = TorchGraph::FromBytes(TinyGraph(), "tiny");
  EXPECT_EQ(graph.TrainableTensorCount(), 8);  // the Conv/ConvTranspose weights and biases
  graph.SetFloatType(torch::kDouble);
  torch::manual_seed(11);
  torch::Tensor x = torch::randn({1, 2, 6, 6}, torch::kDouble).set_requires_grad(true);
  torch::Tensor r = torch::randn({1, 36, 2}, torch::kDouble);
  auto loss = [&] { return (graph.Forward({{"x", x}}).at("y") * r).sum(); };
  torch::Tensor l = loss();
  ASSERT_EQ(l.scalar_type(), torch::kDouble);
  l.backward();
  std::vector<torch::Tensor> tensors = graph.Parameters();
  tensors.push_back(x);
  const double eps = 1e-6;
  double worst = 0;
  int64_t checked = 0;
  torch::NoGradGuard no_grad;
  for (torch::Tensor& p : tensors) {
    ASSERT_TRUE(p.grad().defined());
    torch::Tensor flat = p.view({-1}), grad = p.grad().view({-1});
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double v = flat[i].item<double>();
      flat[i] = v + eps;
      const double up = loss().item<double>();
      flat[i] = v - eps;
      const double down = loss().item<double>();
      flat[i] = v;
      const double numeric = (up - down) / (2 * eps), analytic = grad[i].item<double>();
      const double err = std::abs(numeric - analytic) / std::max(1.0, std::abs(numeric));
      worst = std::max(worst, err);
      EXPECT_LE(err, 1e-6) << "element " << i << ": autograd " << analytic << ", finite "
                           << numeric;
      ++checked;
    }
  }
  std::printf("%ld gradients checked, worst relative error %.3g\n", static_cast<long>(checked),
              worst);
  EXPECT_EQ(checked, graph.ParameterCount() + x.numel());
}

TEST(TorchGraphTrain, RefusesWhatItCannotRunNamingTheNode) {
  try {
    TorchGraph::FromBytes(TinyGraph("LSTM"), "tiny.onnx");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_STREQ(e.what(), "tiny.onnx: node 17 (LSTM): unsupported op type in 'LSTM_18'");
  }
  try {
    TorchGraph::FromBytes(TinyGraph("linear"), "tiny.onnx");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "tiny.onnx: node 7 (Resize): unsupported attribute mode='linear' (only nearest) in "
              "'Resize_8'");
  }
  std::vector<uint8_t> junk{'n', 'o', 't', ' ', 'o', 'n', 'n', 'x'};
  EXPECT_THROW(TorchGraph::FromBytes(junk, "junk.onnx"), Error);
  TorchGraph graph = TorchGraph::FromBytes(TinyGraph(), "tiny.onnx");
  EXPECT_THROW(graph.Forward({{"wrong", torch::zeros({1, 2, 6, 6})}}), Error);
  EXPECT_THROW(graph.Forward({{"x", torch::zeros({1, 2, 6, 6})}}, {"nonexistent"}), Error);
  EXPECT_THROW(graph.Head(), Error);
}

}  // namespace
}  // namespace cvdeploy::testing
