// SPDX-License-Identifier: Apache-2.0
// TorchGraph as a trainable graph: autograd against central finite differences on a tiny
// synthetic graph (double precision), the write-back of trained weights (float and QDQ) run
// by ONNX Runtime, and the errors for graphs it cannot run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <limits>
#include <numeric>
#include <random>

#include "cvdeploy/error.h"
#include "cvdeploy/quantize.h"
#include "cvdeploy/tools.h"
#include "model/onnx_model.h"
#include "train/torch_graph.h"
#include "train/torch_ops.h"
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

void Io(onnx::ValueInfoProto* v, const std::string& name, std::vector<int64_t> dims) {
  v->set_name(name);
  v->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims)
    v->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
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
  Io(g.add_input(), "x", {1, 2, 6, 6});
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
  Io(g.add_output(), "y", {1, 36, 2});
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

// Fake quantization: the dequantized value of the requantized weight forward, the
// straight-through gradient backward (1 inside the representable range, 0 where clamped),
// for 8-bit per-channel weights and 32-bit per-tensor biases alike.
TEST(TorchGraphTrain, FakeQuantizationIsStraightThrough) {
  train::detail::QuantSpec per_channel;
  per_channel.scale = torch::tensor({0.1f, 0.5f});
  per_channel.zero_point = torch::zeros({2}, torch::kLong);
  per_channel.axis = 0;
  torch::Tensor w = torch::tensor({{0.04f, 0.26f, 20.0f}, {0.7f, -80.0f, 1.3f}}).requires_grad_();
  torch::Tensor y = train::detail::FakeQuantize(w, per_channel);
  y.sum().backward();
  EXPECT_TRUE(torch::allclose(y, torch::tensor({{0.0f, 0.3f, 12.7f}, {0.5f, -64.0f, 1.5f}}))) << y;
  EXPECT_TRUE(torch::equal(w.grad(), torch::tensor({{1.0f, 1.0f, 0.0f}, {1.0f, 0.0f, 1.0f}})))
      << w.grad();
  EXPECT_TRUE(torch::equal(train::detail::Requantize(w, per_channel),
                           torch::tensor({{0, 3, 127}, {1, -128, 3}}, torch::kLong)));
  train::detail::QuantSpec bias;
  bias.scale = torch::tensor(0.001f);
  bias.zero_point = torch::tensor(int64_t{0});
  bias.qmin = std::numeric_limits<int32_t>::min();
  bias.qmax = std::numeric_limits<int32_t>::max();
  torch::Tensor b = torch::tensor({1.23456f, -0.0004f}).requires_grad_();
  torch::Tensor yb = train::detail::FakeQuantize(b, bias);
  (yb * torch::tensor({2.0f, 3.0f})).sum().backward();
  EXPECT_TRUE(torch::allclose(yb, torch::tensor({1.235f, 0.0f}), 0, 1e-6)) << yb;
  EXPECT_TRUE(torch::equal(b.grad(), torch::tensor({2.0f, 3.0f})));
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

// Same graph: every node byte-identical (names, inputs, outputs, attributes: so the Q/DQ
// structure of a QDQ model too), initializers of the same names, types and shapes, same
// inputs, outputs, opset, IR version and metadata.
void ExpectSameGraph(const std::vector<uint8_t>& before, const std::vector<uint8_t>& after) {
  onnx::ModelProto a = model::ParseModel(before, "before"), b = model::ParseModel(after, "after");
  ASSERT_EQ(a.graph().node_size(), b.graph().node_size());
  for (int i = 0; i < a.graph().node_size(); ++i)
    EXPECT_EQ(a.graph().node(i).SerializeAsString(), b.graph().node(i).SerializeAsString()) << i;
  ASSERT_EQ(a.graph().initializer_size(), b.graph().initializer_size());
  for (int i = 0; i < a.graph().initializer_size(); ++i) {
    const auto &x = a.graph().initializer(i), &y = b.graph().initializer(i);
    EXPECT_EQ(x.name(), y.name());
    EXPECT_EQ(x.data_type(), y.data_type()) << x.name();
    EXPECT_EQ(std::vector<int64_t>(x.dims().begin(), x.dims().end()),
              std::vector<int64_t>(y.dims().begin(), y.dims().end()))
        << x.name();
  }
  for (int i = 0; i < a.graph().input_size(); ++i)
    EXPECT_EQ(a.graph().input(i).SerializeAsString(), b.graph().input(i).SerializeAsString());
  for (int i = 0; i < a.graph().output_size(); ++i)
    EXPECT_EQ(a.graph().output(i).SerializeAsString(), b.graph().output(i).SerializeAsString());
  EXPECT_EQ(model::DefaultOpset(a), model::DefaultOpset(b));
  EXPECT_EQ(a.ir_version(), b.ir_version());
  EXPECT_EQ(model::Metadata(a), model::Metadata(b));
  EXPECT_NO_THROW(model::CheckModel(b, "written"));
}

torch::Tensor Output0(const TorchGraph& graph, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return graph.Forward({{"images", x}}).at("output0");
}

TEST(TorchGraphTrain, WriteBackOfFloatWeightsRunsInOnnxRuntimeAsInterpreted) {
  const std::vector<uint8_t>& original = ModelBytes("yolov8n-dq.onnx");
  TorchGraph graph = TorchGraph::FromBytes(original, "yolov8n-dq");
  torch::Tensor x = BusImage(640, 640);
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(3);
    std::vector<torch::Tensor> params = graph.Parameters();
    params.front().add_(0.05 * torch::randn_like(params.front()));  // first Conv weight
    params.back().add_(0.5);                                        // a head bias
  }
  torch::Tensor ours = Output0(graph, x);
  std::vector<uint8_t> written = graph.WriteBack();
  ExpectSameGraph(original, written);
  torch::Tensor ort = RunOrt(written, "images", x, {"output0"}).at("output0");
  torch::Tensor ort_before = RunOrt(original, "images", x, {"output0"}).at("output0");
  const double changed = MaxAbsDiff(ort, ort_before);
  std::printf("float write-back: ORT output moved by %.3g\n", changed);
  EXPECT_GT(changed, 0.1);
  TorchGraph exact_graph = TorchGraph::FromBytes(written, "written");
  exact_graph.SetFloatType(torch::kDouble);
  ExpectCloseToOrt(ours, ort, Output0(exact_graph, x.to(torch::kDouble)), "float write-back");
  // Written and re-read, the weights are bit-identical.
  EXPECT_EQ(MaxAbsDiff(Output0(TorchGraph::FromBytes(written, "written"), x), ours), 0.0);
}

// Trains a few fake-quantized weights of a QDQ model, writes them back and runs the result.
void CheckQdqWriteBack(const std::vector<uint8_t>& q_bytes, const std::string& label) {
  TorchGraph graph = TorchGraph::FromBytes(q_bytes, label);
  torch::Tensor x = BusImage(640, 640);
  // Gradients reach the fake-quantized masters through the straight-through estimator.
  graph.Forward({{"images", x}}).at("output0").sum().backward();
  int with_grad = 0;
  for (const auto& p : graph.Parameters())
    with_grad += p.grad().defined() && p.grad().abs().sum().item<double>() > 0 ? 1 : 0;
  EXPECT_GE(with_grad, graph.FakeQuantTensorCount() * 9 / 10);
  std::string first;  // the first fake-quantized weight
  {
    torch::NoGradGuard no_grad;
    int changed = 0;
    for (size_t i = 0; i < graph.Parameters().size() && changed < 6; ++i) {
      if (!graph.IsFakeQuantized(i)) continue;
      if (first.empty()) first = graph.ParameterNames()[i];
      graph.Parameters()[i].mul_(1.05);
      ++changed;
    }
  }
  ASSERT_FALSE(first.empty());
  torch::Tensor ours = Output0(graph, x);
  std::vector<uint8_t> written = graph.WriteBack();
  ExpectSameGraph(q_bytes, written);
  // The first quantized weight changed in the file, in its own int8 type.
  onnx::ModelProto a = model::ParseModel(q_bytes, "a"), b = model::ParseModel(written, "b");
  for (int i = 0; i < a.graph().initializer_size(); ++i) {
    if (a.graph().initializer(i).name() != first) continue;
    EXPECT_EQ(b.graph().initializer(i).data_type(), onnx::TensorProto::INT8);
    EXPECT_NE(a.graph().initializer(i).raw_data(), b.graph().initializer(i).raw_data());
  }
  // Re-read, the requantized weights give exactly the trained interpreter's output.
  EXPECT_EQ(MaxAbsDiff(Output0(TorchGraph::FromBytes(written, "written"), x), ours), 0.0);
  // ONNX Runtime runs the written model as the interpreter does, within ORT's own spread
  // between its fused and literal runs (see torch_graph_test's QDQ case).
  torch::Tensor fused = RunOrt(written, "images", x, {"output0"}).at("output0");
  torch::Tensor literal = RunOrtUnfused(written, "images", x, {"output0"}).at("output0");
  torch::Tensor before = RunOrt(q_bytes, "images", x, {"output0"}).at("output0");
  DiffStats ort = Stats(ours, fused), self = Stats(fused, literal);
  std::printf(
      "%s write-back: ORT output moved by %.3g; interpreter vs ORT p99 %.3g (ORT vs "
      "ORT unoptimized %.3g)\n",
      label.c_str(), MaxAbsDiff(fused, before), ort.p99, self.p99);
  EXPECT_GT(MaxAbsDiff(fused, before), 0.1);
  EXPECT_LE(ort.p99, 1.5 * self.p99 + 1e-3);
  EXPECT_GE(ort.within_1e3, self.within_1e3 - 0.01);
}

TEST(TorchGraphTrain, QdqWriteBackRequantizesWithTheSameScalesAndStructure) {
  CheckQdqWriteBack(QuantizedYolov8n(), "yolov8n-dq QDQ per channel");
}

TEST(TorchGraphTrain, QdqWriteBackWithPerTensorScales) {
  QuantizeOptions options;
  options.calib_dir = CalibrationDir(2);
  options.calib_size = 2;
  options.per_channel = false;
  QuantizeResult q = Quantize(ModelBytes("yolo11n-dq.onnx"), "yolo11n-dq", options);
  CheckQdqWriteBack(q.bytes, "yolo11n-dq QDQ per tensor");
}

TEST(TorchGraphTrain, WriteBackIntoTheFixedShapeOriginal) {
  const std::vector<uint8_t>& original = ModelBytes("yolov8n-dq.onnx");
  DynamicShapeResult dyn = MakeShapeDynamic(original, "yolov8n-dq");
  TorchGraph graph = TorchGraph::FromBytes(dyn.bytes, "dynamic");
  {
    torch::NoGradGuard no_grad;
    graph.Parameters()[2].add_(0.1);
  }
  torch::Tensor x = BusImage(640, 640);
  std::vector<uint8_t> written = graph.WriteBackInto(original, "yolov8n-dq.onnx");
  ExpectSameGraph(original, written);
  const double d =
      MaxAbsDiff(Output0(TorchGraph::FromBytes(written, "written"), x), Output0(graph, x));
  EXPECT_LE(d, 1e-3);
  PruneOptions prune;
  prune.ratio = 0.3;
  std::vector<uint8_t> pruned = Prune(original, "yolov8n-dq", prune).bytes;
  try {
    graph.WriteBackInto(pruned, "pruned.onnx");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("pruned.onnx: initializer '"), std::string::npos)
        << e.what();
  }
}

// Untrusted model bytes: random byte mutations of the tiny graph load, run and write back or
// fail with an Error, never crash. (libFuzzer cannot build this target: libtorch 1.13's
// headers do not compile with clang 14 in C++20, so tests/fuzz has no TorchGraph target; the
// same loop ran 300,000 mutations without a crash when this test was written.)
TEST(TorchGraphTrain, RandomMutationsFailCleanly) {
  const std::vector<uint8_t> base = TinyGraph();
  EXPECT_NO_THROW(TorchGraph::FromBytes(base, "tiny").WriteBack());
  std::mt19937 rng(1);
  int ran = 0;
  for (int it = 0; it < 3000; ++it) {
    std::vector<uint8_t> bytes = base;
    for (unsigned k = 0, flips = 1 + rng() % 8; k < flips; ++k)
      bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
    try {
      TorchGraph graph = TorchGraph::FromBytes(bytes, "mutated");
      torch::NoGradGuard no_grad;
      graph.Forward({{"x", torch::randn({1, 2, 6, 6})}});
      graph.WriteBack();
      ++ran;
    } catch (const Error&) {
    }
  }
  EXPECT_GT(ran, 100);  // the mutations reach the interpreter, not only the parser
}

}  // namespace
}  // namespace cvdeploy::testing
