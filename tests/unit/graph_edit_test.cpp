// SPDX-License-Identifier: Apache-2.0
// MakeBatchDynamic on small graphs built here with the ONNX protobuf classes: what it
// rewrites, what it refuses (and why), and that the result really runs at batch 3.
#include "optimize/graph_edit.h"

#include <onnx/onnx_pb.h>
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cvdeploy/error.h"

namespace cvdeploy::optimize {
namespace {

// A graph under construction. Dims of -1 become the symbolic dim "N".
class GraphBuilder {
 public:
  explicit GraphBuilder(int64_t opset = 13) {
    model_.set_ir_version(8);
    model_.set_producer_name("graph_edit_test");
    auto* o = model_.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    graph()->set_name("g");
  }
  onnx::GraphProto* graph() { return model_.mutable_graph(); }

  void Input(const std::string& name, const std::vector<int64_t>& dims) {
    Describe(graph()->add_input(), name, dims);
  }
  void Output(const std::string& name, const std::vector<int64_t>& dims) {
    Describe(graph()->add_output(), name, dims);
  }
  void ValueInfo(const std::string& name, const std::vector<int64_t>& dims) {
    Describe(graph()->add_value_info(), name, dims);
  }
  void OutputWithoutShape(const std::string& name) {
    auto* v = graph()->add_output();
    v->set_name(name);
    v->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  }
  void Ints(const std::string& name, const std::vector<int64_t>& values) {
    *graph()->add_initializer() = IntTensor(name, values);
  }
  void Floats(const std::string& name, const std::vector<int64_t>& dims,
              const std::vector<float>& values) {
    auto* t = graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float v : values) t->add_float_data(v);
  }
  onnx::NodeProto& Node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs) {
    auto* n = graph()->add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + std::to_string(graph()->node_size()));
    for (const auto& i : inputs) n->add_input(i);
    for (const auto& o : outputs) n->add_output(o);
    return *n;
  }
  std::vector<uint8_t> Bytes() const {
    std::string s = model_.SerializeAsString();
    return {s.begin(), s.end()};
  }

  static onnx::TensorProto IntTensor(const std::string& name, const std::vector<int64_t>& v) {
    onnx::TensorProto t;
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::INT64);
    t.add_dims(static_cast<int64_t>(v.size()));
    for (int64_t x : v) t.add_int64_data(x);
    return t;
  }

 private:
  static void Describe(onnx::ValueInfoProto* v, const std::string& name,
                       const std::vector<int64_t>& dims) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) {
      auto* dim = t->mutable_shape()->add_dim();
      d < 0 ? dim->set_dim_param("N") : dim->set_dim_value(d);
    }
  }
  onnx::ModelProto model_;
};

void AddIntAttr(onnx::NodeProto& node, const std::string& name, int64_t value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void AddIntsAttr(onnx::NodeProto& node, const std::string& name,
                 const std::vector<int64_t>& values) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

onnx::ModelProto Parse(const std::vector<uint8_t>& bytes) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  return m;
}

std::vector<int64_t> InitializerValues(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == name) return {t.int64_data().begin(), t.int64_data().end()};
  }
  ADD_FAILURE() << "no initializer " << name;
  return {};
}

const onnx::NodeProto& NodeByOp(const onnx::ModelProto& m, const std::string& op, int nth = 0) {
  for (const auto& n : m.graph().node()) {
    if (n.op_type() == op && nth-- == 0) return n;
  }
  throw std::runtime_error("no node " + op);
}

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Runs a one-input, one-output float model with ONNX Runtime.
Tensor RunModel(const std::vector<uint8_t>& bytes, const std::vector<int64_t>& shape,
                std::vector<float> input) {
  static Ort::Env env(ORT_LOGGING_LEVEL_FATAL, "graph_edit_test");
  Ort::SessionOptions so;
  so.SetIntraOpNumThreads(1);
  Ort::Session session(env, bytes.data(), bytes.size(), so);
  Ort::AllocatorWithDefaultOptions allocator;
  const std::string in_name = session.GetInputNameAllocated(0, allocator).get();
  const std::string out_name = session.GetOutputNameAllocated(0, allocator).get();
  const char* in_ptr = in_name.c_str();
  const char* out_ptr = out_name.c_str();
  auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  auto value = Ort::Value::CreateTensor<float>(memory, input.data(), input.size(), shape.data(),
                                               shape.size());
  auto out = session.Run(Ort::RunOptions{}, &in_ptr, &value, 1, &out_ptr, 1);
  const auto info = out[0].GetTensorTypeAndShapeInfo();
  const float* p = out[0].GetTensorData<float>();
  return {info.GetShape(), std::vector<float>(p, p + info.GetElementCount())};
}

std::vector<float> Ramp(size_t n, float start = -1.f, float step = 0.25f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = start + step * static_cast<float>(i % 37);
  return v;
}

// Expects MakeBatchDynamic to refuse with kBadInput, naming the model and `reason`.
void ExpectRefused(const std::vector<uint8_t>& bytes, const std::string& reason) {
  try {
    MakeBatchDynamic(bytes, "m.onnx");
    ADD_FAILURE() << "converted, expected a refusal containing: " << reason;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput) << e.what();
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("m.onnx: cannot make the batch axis dynamic: ", 0), 0u) << what;
    EXPECT_NE(what.find(reason), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

// x [1, 3, 4, 4] -> Relu -> Reshape to [1, -1] -> y [1, 48]
std::vector<uint8_t> FlattenModel() {
  GraphBuilder b;
  b.Input("x", {1, 3, 4, 4});
  b.Output("y", {1, 48});
  b.ValueInfo("r", {1, 3, 4, 4});
  b.Ints("shape", {1, -1});
  b.Node("Relu", {"x"}, {"r"});
  b.Node("Reshape", {"r", "shape"}, {"y"});
  return b.Bytes();
}

TEST(MakeBatchDynamic, ReshapeToBatchOneBecomesCopyAndRunsAtBatch3) {
  DynamicBatchReport report;
  const std::vector<uint8_t> bytes = MakeBatchDynamic(FlattenModel(), "flat.onnx", &report);
  EXPECT_EQ(report.reshapes_rewritten, 1);
  EXPECT_EQ(report.value_infos_cleared, 1);
  EXPECT_EQ(report.inputs, std::vector<std::string>{"x [batch, 3, 4, 4]"});
  EXPECT_EQ(report.verify_batch, 3);
  EXPECT_FALSE(report.batch_dependent);
  EXPECT_EQ(report.max_diff_vs_batch1, 0.0);
  EXPECT_EQ(report.max_diff_within_batch, 0.0);
  EXPECT_GT(report.max_abs_output, 0.0);

  const onnx::ModelProto m = Parse(bytes);
  EXPECT_EQ(m.graph().input(0).type().tensor_type().shape().dim(0).dim_param(), "batch");
  EXPECT_EQ(m.graph().output(0).type().tensor_type().shape().dim(0).dim_param(), "batch");
  EXPECT_EQ(m.graph().input(0).type().tensor_type().shape().dim(1).dim_value(), 3);
  EXPECT_EQ(m.graph().value_info_size(), 0);
  EXPECT_EQ(InitializerValues(m, "shape"), (std::vector<int64_t>{0, -1}));

  const std::vector<float> x = Ramp(3 * 48);
  const Tensor y = RunModel(bytes, {3, 3, 4, 4}, x);
  EXPECT_EQ(y.shape, (std::vector<int64_t>{3, 48}));
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y.values[i], std::max(0.f, x[i])) << i;
}

TEST(MakeBatchDynamic, SharedShapeConstantIsClonedForTheRewrittenReshapeOnly) {
  // "shape" [1, -1] is read by a Reshape of batch data AND a Reshape of a constant bias
  // ([16] -> [1, 16]); rewriting it in place would turn the bias into [16, 1].
  GraphBuilder b;
  b.Input("x", {1, 4, 2, 2});
  b.Output("y", {1, 16});
  b.Ints("shape", {1, -1});
  std::vector<float> bias(16);
  for (int i = 0; i < 16; ++i) bias[i] = 100.f * static_cast<float>(i);
  b.Floats("bias", {16}, bias);
  b.Node("Reshape", {"x", "shape"}, {"flat"});
  b.Node("Reshape", {"bias", "shape"}, {"bias2d"});
  b.Node("Add", {"flat", "bias2d"}, {"y"});

  DynamicBatchReport report;
  const std::vector<uint8_t> bytes = MakeBatchDynamic(b.Bytes(), "shared.onnx", &report);
  EXPECT_EQ(report.reshapes_rewritten, 1);
  const onnx::ModelProto m = Parse(bytes);
  EXPECT_EQ(InitializerValues(m, "shape"), (std::vector<int64_t>{1, -1}));
  const std::string clone = NodeByOp(m, "Reshape", 0).input(1);
  EXPECT_NE(clone, "shape");
  EXPECT_EQ(InitializerValues(m, clone), (std::vector<int64_t>{0, -1}));
  EXPECT_EQ(NodeByOp(m, "Reshape", 1).input(1), "shape");

  const std::vector<float> x = Ramp(3 * 16);
  const Tensor y = RunModel(bytes, {3, 4, 2, 2}, x);
  EXPECT_EQ(y.shape, (std::vector<int64_t>{3, 16}));
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y.values[i], x[i] + bias[i % 16]) << i;
}

TEST(MakeBatchDynamic, ConstantNodeTargetIsRewrittenInPlace) {
  GraphBuilder b;
  b.Input("x", {1, 2, 3});
  b.Output("y", {1, 6});
  auto& c = b.Node("Constant", {}, {"target"});
  auto* a = c.add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = GraphBuilder::IntTensor("", {1, 6});
  b.Node("Reshape", {"x", "target"}, {"y"});

  DynamicBatchReport report;
  const std::vector<uint8_t> bytes = MakeBatchDynamic(b.Bytes(), "const.onnx", &report);
  EXPECT_EQ(report.reshapes_rewritten, 1);
  const onnx::ModelProto m = Parse(bytes);
  const auto& t = NodeByOp(m, "Constant").attribute(0).t();
  EXPECT_EQ(std::vector<int64_t>(t.int64_data().begin(), t.int64_data().end()),
            (std::vector<int64_t>{0, 6}));
  EXPECT_EQ(RunModel(bytes, {3, 2, 3}, Ramp(18)).shape, (std::vector<int64_t>{3, 6}));
}

TEST(MakeBatchDynamic, ReshapeOfConstantDataIsLeftAlone) {
  // Bias-shaping Reshapes of dynamically quantized exports ([C] -> [1, -1, 1, 1]) read no
  // batch data: their targets must stay [1, ...].
  GraphBuilder b;
  b.Input("x", {1, 2, 2, 2});
  b.Output("y", {1, 2, 2, 2});
  b.Floats("bias", {2}, {1.f, 2.f});
  b.Ints("bias_shape", {1, -1, 1, 1});
  b.Node("Reshape", {"bias", "bias_shape"}, {"bias4d"});
  b.Node("Add", {"x", "bias4d"}, {"y"});
  DynamicBatchReport report;
  const onnx::ModelProto m = Parse(MakeBatchDynamic(b.Bytes(), "bias.onnx", &report));
  EXPECT_EQ(report.reshapes_rewritten, 0);
  EXPECT_EQ(InitializerValues(m, "bias_shape"), (std::vector<int64_t>{1, -1, 1, 1}));
}

TEST(MakeBatchDynamic, DynamicQuantizationIsReportedAsBatchDependent) {
  // One DynamicQuantizeLinear scale spans the whole batch: the rewrite is exact (identical
  // items), but different batch-mates change an item's outputs.
  GraphBuilder b;
  b.Input("x", {1, 3, 8, 8});
  b.Output("y", {1, 3, 8, 8});
  b.Node("DynamicQuantizeLinear", {"x"}, {"q", "scale", "zero"});
  b.Node("DequantizeLinear", {"q", "scale", "zero"}, {"y"});
  DynamicBatchReport report;
  MakeBatchDynamic(b.Bytes(), "dq.onnx", &report);
  EXPECT_TRUE(report.batch_dependent);
  EXPECT_EQ(report.max_diff_vs_batch1, 0.0);
  EXPECT_GT(report.max_diff_from_batch_mates, 0.0);
  EXPECT_LT(report.max_diff_from_batch_mates, 0.05);  // about one quantization step
  EXPECT_TRUE(std::any_of(report.notes.begin(), report.notes.end(), [](const std::string& n) {
    return n.find("DynamicQuantizeLinear") != std::string::npos;
  }));
}

TEST(MakeBatchDynamic, RefusesAnAlreadyDynamicBatch) {
  GraphBuilder b;
  b.Input("x", {-1, 3});
  b.Output("y", {-1, 3});
  b.Node("Relu", {"x"}, {"y"});
  ExpectRefused(b.Bytes(), "input 'x' already has a dynamic batch axis ('N')");
}

TEST(MakeBatchDynamic, RefusesAFixedBatchOtherThanOne) {
  GraphBuilder b;
  b.Input("x", {2, 3});
  b.Output("y", {2, 3});
  b.Node("Relu", {"x"}, {"y"});
  ExpectRefused(b.Bytes(), "input 'x' has a fixed batch of 2");
}

TEST(MakeBatchDynamic, RefusesReshapeWithAllowZero) {
  GraphBuilder b(14);
  b.Input("x", {1, 3, 4});
  b.Output("y", {1, 12});
  b.Ints("shape", {1, -1});
  AddIntAttr(b.Node("Reshape", {"x", "shape"}, {"y"}), "allowzero", 1);
  ExpectRefused(b.Bytes(), "Reshape 'Reshape_1' targets [1, -1] with allowzero=1");
}

TEST(MakeBatchDynamic, RefusesReshapeWhoseFirstAxisIsAConstantOtherThanOne) {
  GraphBuilder b;
  b.Input("x", {1, 4, 3});
  b.OutputWithoutShape("y");
  b.Ints("shape", {2, 6});
  b.Node("Reshape", {"x", "shape"}, {"y"});
  ExpectRefused(b.Bytes(), "has the constant target shape [2, 6] whose first axis 2");
}

TEST(MakeBatchDynamic, RefusesOpsThatHardCodeTheBatch) {
  struct Case {
    const char* what;
    std::function<void(GraphBuilder&)> build;  // x [1, 3, 4, 4] -> ... -> y
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"Split on axis 0",
       [](GraphBuilder& b) { AddIntAttr(b.Node("Split", {"x"}, {"y"}), "axis", 0); },
       "Split 'Split_1' splits the batch axis (axis 0)"},
      {"Gather on axis 0",
       [](GraphBuilder& b) {
         b.Ints("idx", {0});
         b.Node("Gather", {"x", "idx"}, {"y"});
       },
       "Gather 'Gather_1' indexes the batch axis"},
      {"Slice [0:1] of axis 0",
       [](GraphBuilder& b) {
         b.Ints("starts", {0});
         b.Ints("ends", {1});
         b.Ints("axes", {0});
         b.Node("Slice", {"x", "starts", "ends", "axes"}, {"y"});
       },
       "slices the batch axis (axis 0) with constant bounds [0:1:1]"},
      {"Resize to constant sizes",
       [](GraphBuilder& b) {
         b.Ints("sizes", {1, 3, 8, 8});
         b.Node("Resize", {"x", "", "", "sizes"}, {"y"});
       },
       "has the constant output sizes [1, 3, 8, 8]"},
      {"Concat with a batch-1 constant",
       [](GraphBuilder& b) {
         b.Floats("pad", {1, 1, 4, 4}, std::vector<float>(16, 0.f));
         AddIntAttr(b.Node("Concat", {"x", "pad"}, {"y"}), "axis", 1);
       },
       "joins batch data with the constant 'pad' whose first axis is 1"},
      {"Squeeze without axes", [](GraphBuilder& b) { b.Node("Squeeze", {"x"}, {"y"}); },
       "drops every axis of size 1, the batch included"},
      {"Flatten with axis 0",
       [](GraphBuilder& b) { AddIntAttr(b.Node("Flatten", {"x"}, {"y"}), "axis", 0); },
       "with axis 0 folds the batch axis"},
      {"Expand of the batch axis to 2",
       [](GraphBuilder& b) {
         b.Ints("to", {2, 3, 4, 4});
         b.Node("Expand", {"x", "to"}, {"y"});
       },
       "broadcasts the batch axis to the constant 2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    GraphBuilder b;
    b.Input("x", {1, 3, 4, 4});
    b.OutputWithoutShape("y");
    c.build(b);
    ExpectRefused(b.Bytes(), c.reason);
  }
}

TEST(MakeBatchDynamic, VerificationCatchesABatchThatMixesItems) {
  // x - mean over axis 0 is 0 at batch 1 and passes every static check, but at batch 3 the
  // items mix: the run against the original must catch it.
  GraphBuilder b;
  b.Input("x", {1, 3, 4, 4});
  b.Output("y", {1, 3, 4, 4});
  auto& mean = b.Node("ReduceMean", {"x"}, {"m"});
  AddIntsAttr(mean, "axes", {0});
  AddIntAttr(mean, "keepdims", 1);
  b.Node("Sub", {"x", "m"}, {"y"});
  ExpectRefused(b.Bytes(), "output 'y' at batch 3 differs from the original at batch 1 by");
}

TEST(MakeBatchDynamic, VerificationCatchesAnOutputWhoseFirstAxisIsNotTheBatch) {
  GraphBuilder b;
  b.Input("x", {1, 2, 4, 4});
  b.OutputWithoutShape("y");
  AddIntsAttr(b.Node("Transpose", {"x"}, {"y"}), "perm", {1, 0, 2, 3});
  ExpectRefused(b.Bytes(),
                "output 'y' is [2, 3, 4, 4] at batch 3, expected [3, 1, 4, 4]: its first axis "
                "does not follow the batch");
}

TEST(MakeBatchDynamic, InvalidBytesAreBadInput) {
  const std::vector<std::vector<uint8_t>> inputs = {
      {}, {0x01, 0x02, 0x03, 0xff}, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'}};
  for (const auto& bytes : inputs) {
    try {
      MakeBatchDynamic(bytes, "junk.onnx");
      ADD_FAILURE() << "accepted " << bytes.size() << " junk bytes";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kBadInput);
      EXPECT_EQ(std::string(e.what()).rfind("junk.onnx: ", 0), 0u) << e.what();
    }
  }
}

}  // namespace
}  // namespace cvdeploy::optimize
