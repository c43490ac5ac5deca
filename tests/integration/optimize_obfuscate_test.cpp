// SPDX-License-Identifier: Apache-2.0
// Obfuscation (cvdeploy::Obfuscate, `cvdeploy obfuscate`) on the sample models: outputs and
// detections on bus.jpg bit-identical through the Predictor, no original name left, the model's
// interface and the kept metadata unchanged, doc strings and producer gone, dummy layers present
// as reported, determinism per seed; on synthetic models: every dummy kind bit-exact on special
// values (signed zeros, NaN, infinities, subnormals), subgraphs refused; the verification
// catches a changed model; the CLI's report and exit codes.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/backend.h"
#include "cvdeploy/error.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/serialize.h"
#include "cvdeploy/tools.h"
#include "model/onnx_model.h"
#include "optimize/obfuscate_graph.h"
#include "support/assets.h"
#include "support/onnx_builder.h"
#include "support/process.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;
using testing::Asset;
using testing::DescribeRun;
using testing::ExpectCliError;
using testing::MakeTempDir;
using testing::RunCli;

constexpr int kDummy = 8;
constexpr uint64_t kSeed = 7;

std::string ModelPath(const std::string& stem) { return Asset("models/" + stem + ".onnx"); }

ObfuscateOptions Options(uint64_t seed = kSeed, int dummy = kDummy) {
  ObfuscateOptions o;
  o.seed = seed;
  o.dummy_layers = dummy;
  return o;
}

// One obfuscation per sample model, shared by the tests of that model.
const ObfuscateResult& Obfuscated(const std::string& stem) {
  static std::map<std::string, ObfuscateResult> cache;
  auto it = cache.find(stem);
  if (it == cache.end()) {
    it = cache.emplace(stem, Obfuscate(Model::FromFile(ModelPath(stem)), Options())).first;
  }
  return it->second;
}

onnx::ModelProto Parse(const std::vector<uint8_t>& bytes) {
  return optimize::ParseModel(bytes, "obfuscated");
}

// Names written independently of the tool: every node name and tensor name the graph mentions.
std::set<std::string> Names(const onnx::GraphProto& g) {
  std::set<std::string> n;
  for (const auto& node : g.node()) {
    n.insert(node.name());
    n.insert(node.input().begin(), node.input().end());
    n.insert(node.output().begin(), node.output().end());
  }
  for (const auto& t : g.initializer()) n.insert(t.name());
  for (const auto* list : {&g.input(), &g.output(), &g.value_info()})
    for (const auto& v : *list) n.insert(v.name());
  n.erase("");
  return n;
}

std::set<std::string> IoNames(const onnx::GraphProto& g) {
  std::set<std::string> n;
  for (const auto* list : {&g.input(), &g.output()})
    for (const auto& v : *list) n.insert(v.name());
  return n;
}

std::map<std::string, int> OpCounts(const onnx::GraphProto& g) {
  std::map<std::string, int> counts;
  for (const auto& node : g.node()) ++counts[node.op_type()];
  return counts;
}

// Every doc string of the model (model, graph, nodes, attributes, tensors, value infos).
int DocStrings(const onnx::ModelProto& m) {
  int n = !m.doc_string().empty() + !m.graph().doc_string().empty();
  for (const auto& node : m.graph().node()) {
    n += !node.doc_string().empty();
    for (const auto& a : node.attribute())
      n += !a.doc_string().empty() + !a.t().doc_string().empty();
  }
  for (const auto& t : m.graph().initializer()) n += !t.doc_string().empty();
  for (const auto* list : {&m.graph().input(), &m.graph().output(), &m.graph().value_info()})
    for (const auto& v : *list) n += !v.doc_string().empty();
  return n;
}

class ObfuscateModelTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ObfuscateModelTest, BitIdenticalOutputsAndDetectionsOnBus) {
  const ObfuscateResult& r = Obfuscated(GetParam());
  const auto a = Predictor::Load(ModelPath(GetParam()));
  const auto b = Predictor::LoadFromMemory(r.bytes, "obfuscated");
  const cv::Mat image = ReadImage(Asset("images/bus.jpg"));
  Batch ba = a->Prepare({image});
  Batch bb = b->Prepare({image});
  const std::vector<NamedTensorView> oa = a->Run(ba);
  const std::vector<NamedTensorView> ob = b->Run(bb);
  ASSERT_EQ(oa.size(), ob.size());
  for (size_t k = 0; k < oa.size(); ++k) {
    EXPECT_EQ(ob[k].name, oa[k].name);
    ASSERT_EQ(ob[k].tensor.shape(), oa[k].tensor.shape()) << oa[k].name;
    ASSERT_EQ(ob[k].tensor.bytes(), oa[k].tensor.bytes());
    EXPECT_EQ(std::memcmp(ob[k].tensor.data(), oa[k].tensor.data(), oa[k].tensor.bytes()), 0)
        << "output " << oa[k].name << " is not bit-identical";
  }
  Result ra = a->Decode(oa, ba).at(0);
  Result rb = b->Decode(ob, bb).at(0);
  ASSERT_GE(ra.detections.size(), 4u);
  ra.speed_ms = rb.speed_ms = {};
  EXPECT_EQ(ResultToJson(rb, true).dump(), ResultToJson(ra, true).dump());
  for (size_t i = 0; i < ra.detections.size() && i < rb.detections.size(); ++i) {
    const cv::Mat& ma = ra.detections[i].mask;
    const cv::Mat& mb = rb.detections[i].mask;
    ASSERT_EQ(ma.size(), mb.size());
    if (!ma.empty()) {
      EXPECT_EQ(cv::countNonZero(ma != mb), 0) << "mask " << i;
    }
  }
  ASSERT_FALSE(r.report.verified.empty());
  EXPECT_NE(r.report.verified[0].find("bit-identical"), std::string::npos);
}

TEST_P(ObfuscateModelTest, NoOriginalNameLeft) {
  const onnx::ModelProto original = optimize::LoadModel(ModelPath(GetParam()));
  const onnx::ModelProto obf = Parse(Obfuscated(GetParam()).bytes);
  const std::set<std::string> io = IoNames(original.graph());
  EXPECT_EQ(IoNames(obf.graph()), io);
  const std::set<std::string> before = Names(original.graph());
  const std::set<std::string> after = Names(obf.graph());
  const std::regex opaque("t[0-9a-f]{8}");
  int checked = 0;
  for (const std::string& name : after) {
    if (io.count(name)) continue;
    EXPECT_FALSE(before.count(name)) << "original name left: " << name;
    EXPECT_TRUE(std::regex_match(name, opaque)) << name;
    ++checked;
  }
  EXPECT_GT(checked, obf.graph().node_size());
  for (const auto& node : obf.graph().node()) EXPECT_FALSE(node.name().empty());
  const ObfuscateReport& r = Obfuscated(GetParam()).report;
  EXPECT_EQ(r.nodes_renamed, obf.graph().node_size());
  EXPECT_EQ(r.initializers_renamed, obf.graph().initializer_size());
  EXPECT_GT(r.values_renamed, original.graph().node_size() / 2);
}

TEST_P(ObfuscateModelTest, InterfaceKeptMetadataStrippedDocsGone) {
  const onnx::ModelProto original = optimize::LoadModel(ModelPath(GetParam()));
  const onnx::ModelProto obf = Parse(Obfuscated(GetParam()).bytes);
  EXPECT_NO_THROW(optimize::CheckModel(obf, "obfuscated"));
  for (int i = 0; i < original.graph().input_size(); ++i) {
    EXPECT_EQ(obf.graph().input(i).SerializeAsString(),
              original.graph().input(i).SerializeAsString());
  }
  ASSERT_EQ(obf.graph().output_size(), original.graph().output_size());
  for (int i = 0; i < original.graph().output_size(); ++i) {
    EXPECT_EQ(obf.graph().output(i).SerializeAsString(),
              original.graph().output(i).SerializeAsString());
  }
  const auto before = optimize::Metadata(original);
  const auto after = optimize::Metadata(obf);
  const std::vector<std::string> keep = DefaultKeptMetadata();
  for (const auto& [key, value] : after) {
    EXPECT_NE(std::find(keep.begin(), keep.end(), key), keep.end()) << "kept " << key;
    EXPECT_EQ(value, before.at(key)) << key;
  }
  for (const std::string key : {"task", "names", "imgsz", "stride"})
    EXPECT_EQ(after.count(key), 1u);
  ASSERT_GT(before.size(), after.size());
  EXPECT_EQ(after.count("author") + after.count("date") + after.count("args"), 0u);
  EXPECT_EQ(DocStrings(obf), 0);
  EXPECT_TRUE(obf.producer_name().empty());
  EXPECT_TRUE(obf.producer_version().empty());
  EXPECT_TRUE(obf.domain().empty());
  EXPECT_EQ(obf.graph().name(), "main");
  ASSERT_EQ(obf.opset_import_size(), original.opset_import_size());
  EXPECT_EQ(obf.opset_import(0).SerializeAsString(), original.opset_import(0).SerializeAsString());
}

TEST_P(ObfuscateModelTest, DummyLayersPresentAsReported) {
  const onnx::ModelProto original = optimize::LoadModel(ModelPath(GetParam()));
  const ObfuscateResult& r = Obfuscated(GetParam());
  const onnx::ModelProto obf = Parse(r.bytes);
  EXPECT_EQ(r.report.dummy_layers, kDummy);
  EXPECT_GE(r.report.dummy_nodes_added, kDummy);
  EXPECT_LE(r.report.dummy_nodes_added, 2 * kDummy);
  EXPECT_EQ(obf.graph().node_size(), original.graph().node_size() + r.report.dummy_nodes_added);
  // The op histogram grew exactly by the reported kinds.
  const std::map<std::string, std::pair<std::string, int>> op_of = {
      {"Mul(x, 1)", {"Mul", 1}},
      {"Div(x, 1)", {"Div", 1}},
      {"Sub(x, +0)", {"Sub", 1}},
      {"Add(x, -0)", {"Add", 1}},
      {"Max(x, x)", {"Max", 1}},
      {"Min(x, x)", {"Min", 1}},
      {"Transpose + inverse Transpose", {"Transpose", 2}},
      {"Reshape to [N, -1] and back", {"Reshape", 2}}};
  std::map<std::string, int> expected = OpCounts(original.graph());
  int layers = 0;
  for (const auto& [kind, n] : r.report.dummy_kinds) {
    ASSERT_EQ(op_of.count(kind), 1u) << kind;
    expected[op_of.at(kind).first] += op_of.at(kind).second * n;
    layers += n;
  }
  EXPECT_EQ(layers, kDummy);
  EXPECT_EQ(OpCounts(obf.graph()), expected);
  EXPECT_EQ(r.report.dummy_sites.size(), static_cast<size_t>(kDummy));
}

INSTANTIATE_TEST_SUITE_P(SampleModels, ObfuscateModelTest,
                         ::testing::Values("yolov8n-dq", "yolo11n-pose-dq", "yolov8n-seg-dq"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

TEST(Obfuscate, SameSeedSameBytesOtherSeedOtherNames) {
  const Model model = Model::FromFile(ModelPath("yolov8n-dq"));
  const ObfuscateResult a = Obfuscate(model, Options(11, 4));
  const ObfuscateResult b = Obfuscate(model, Options(11, 4));
  const ObfuscateResult c = Obfuscate(model, Options(12, 4));
  EXPECT_TRUE(a.bytes == b.bytes) << "same seed, different bytes";
  EXPECT_FALSE(a.bytes == c.bytes);
  const onnx::ModelProto pa = Parse(a.bytes);
  const onnx::ModelProto pc = Parse(c.bytes);
  std::set<std::string> shared;
  const std::set<std::string> na = Names(pa.graph()), nc = Names(pc.graph());
  std::set_intersection(na.begin(), na.end(), nc.begin(), nc.end(),
                        std::inserter(shared, shared.begin()));
  EXPECT_EQ(shared, IoNames(pa.graph())) << "seeds 11 and 12 share opaque names";
}

TEST(Obfuscate, ReorderInitializersShufflesTheirOrder) {
  const Model model = Model::FromFile(ModelPath("yolov8n-dq"));
  ObfuscateOptions o = Options(5, 0);
  const onnx::ModelProto kept = Parse(Obfuscate(model, o).bytes);
  o.reorder_initializers = true;
  const ObfuscateResult r = Obfuscate(model, o);
  EXPECT_TRUE(r.report.initializers_reordered);
  const onnx::ModelProto shuffled = Parse(r.bytes);
  std::vector<std::string> a, b;
  for (const auto& t : kept.graph().initializer()) a.push_back(t.name());
  for (const auto& t : shuffled.graph().initializer()) b.push_back(t.name());
  EXPECT_NE(a, b);
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b);
}

TEST(Obfuscate, KeepsExactlyTheMetadataAsked) {
  const Model model = Model::FromFile(ModelPath("yolov8n-dq"));
  const auto before = optimize::Metadata(optimize::LoadModel(ModelPath("yolov8n-dq")));
  ObfuscateOptions o = Options(3, 0);
  o.keep_metadata = {"names", "author", "no_such_key"};
  const ObfuscateResult r = Obfuscate(model, o);
  const auto after = optimize::Metadata(Parse(r.bytes));
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after.at("names"), before.at("names"));
  EXPECT_EQ(after.at("author"), before.at("author"));
  EXPECT_EQ(r.report.metadata_kept.size(), 2u);
  EXPECT_EQ(r.report.metadata_dropped.size(), before.size() - 2);
  o.keep_metadata.clear();
  EXPECT_TRUE(optimize::Metadata(Parse(Obfuscate(model, o).bytes)).empty());
}

TEST(Obfuscate, RejectsBadOptionsAndModelsWithoutBytes) {
  const Model model = Model::FromFile(ModelPath("yolov8n-dq"));
  for (int k : {-1, kMaxDummyLayers + 1}) {
    try {
      Obfuscate(model, Options(1, k));
      ADD_FAILURE() << "dummy_layers " << k << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("dummy_layers"), std::string::npos) << e.what();
    }
  }
  try {
    Obfuscate(model.WithoutBytes(), Options());
    ADD_FAILURE() << "a model without bytes was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

// The check itself: a model that differs in one weight must be refused, naming the output.
TEST(Obfuscate, VerificationCatchesAChangedWeight) {
  const Model model = Model::FromFile(ModelPath("yolov8n-dq"));
  onnx::ModelProto changed = optimize::LoadModel(ModelPath("yolov8n-dq"));
  onnx::TensorProto* weight = nullptr;
  for (auto& t : *changed.mutable_graph()->mutable_initializer()) {
    if (t.data_type() == onnx::TensorProto::FLOAT && t.dims_size() == 4) {
      weight = &t;
      break;
    }
  }
  ASSERT_NE(weight, nullptr);
  std::vector<float> values = optimize::FloatData(*weight);
  values[0] += 1e-3f;
  *weight =
      optimize::FloatTensor(weight->name(), {weight->dims().begin(), weight->dims().end()}, values);
  ObfuscateReport report;
  try {
    optimize::VerifyBitIdentical(model, optimize::SerializeModel(changed), Options(), report);
    ADD_FAILURE() << "a changed model passed the bit-identity check";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kRuntime);
    EXPECT_NE(std::string(e.what()).find("not bit-identical"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("output0"), std::string::npos) << e.what();
  }
  // And the unchanged model passes it.
  EXPECT_NO_THROW(optimize::VerifyBitIdentical(model, model.bytes(), Options(), report));
}

// A detect-shaped synthetic model: images [1, 3, 8, 8] -> Neg -> Reshape -> output0 [1, 6, 32],
// with doc strings and producer fields everywhere; `with_if` computes the Neg inside an If.
std::vector<uint8_t> BuildSynthetic(bool with_if) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("secret-exporter");
  m.set_producer_version("9.9");
  m.set_domain("com.example.secret");
  m.set_model_version(42);
  m.set_doc_string("trained on secret data");
  m.add_opset_import()->set_version(17);
  for (const auto& [k, v] : testing::UltralyticsMetadata("detect", {"a", "b"}, 8, 8)) {
    auto* p = m.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }
  onnx::GraphProto& g = *m.mutable_graph();
  g.set_name("secret_graph");
  g.set_doc_string("graph doc");
  auto value = [](onnx::ValueInfoProto* v, const std::string& name, std::vector<int64_t> dims) {
    v->set_name(name);
    v->set_doc_string("doc of " + name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
  };
  value(g.add_input(), "images", {1, 3, 8, 8});
  value(g.add_output(), "output0", {1, 6, 32});
  *g.add_initializer() = optimize::Int64Tensor("secret_shape", {3}, {1, 6, 32});
  g.mutable_initializer(0)->set_doc_string("shape doc");
  onnx::NodeProto neg;
  neg.set_op_type("Neg");
  neg.set_name("secret_neg");
  neg.set_doc_string("node doc");
  neg.add_input("images");
  neg.add_output("secret_act");
  if (with_if) {
    onnx::TensorProto cond;
    cond.set_name("secret_cond");
    cond.set_data_type(onnx::TensorProto::BOOL);
    cond.add_int32_data(1);
    *g.add_initializer() = cond;
    onnx::NodeProto branch_node = neg;
    branch_node.set_output(0, "branch_out");
    onnx::NodeProto node;
    node.set_op_type("If");
    node.set_name("secret_if");
    node.add_input("secret_cond");
    node.add_output("secret_act");
    for (const char* attr_name : {"then_branch", "else_branch"}) {
      auto* attr = node.add_attribute();
      attr->set_name(attr_name);
      attr->set_type(onnx::AttributeProto::GRAPH);
      onnx::GraphProto* branch = attr->mutable_g();
      branch->set_name(attr_name);
      *branch->add_node() = branch_node;
      value(branch->add_output(), "branch_out", {1, 3, 8, 8});
    }
    *g.add_node() = node;
  } else {
    *g.add_node() = neg;
  }
  onnx::NodeProto reshape;
  reshape.set_op_type("Reshape");
  reshape.set_name("secret_reshape");
  reshape.add_input("secret_act");
  reshape.add_input("secret_shape");
  reshape.add_output("output0");
  *g.add_node() = reshape;
  return optimize::SerializeModel(m);
}

std::vector<uint8_t> RunRaw(const std::vector<uint8_t>& bytes, const std::vector<float>& input) {
  const auto session = backends::CreateOrtGraphBackend(bytes, "synthetic", {});
  std::vector<uint8_t> out;
  session->RunNamed({{"images", TensorView(DataType::kFloat32, {1, 3, 8, 8}, input.data())}}, {},
                    [&](const std::vector<backends::OutputView>& views) {
                      const auto* p = static_cast<const uint8_t*>(views.at(0).tensor.data());
                      out.assign(p, p + views.at(0).tensor.bytes());
                    });
  return out;
}

// Every dummy kind stacked many times on one value, fed signed zeros, NaN with a payload,
// infinities, subnormals and extremes: the output bits do not move. (ONNX Runtime removes the
// arithmetic kinds at load; the host arithmetic below checks their identities directly.)
TEST(Obfuscate, DummyKindsAreExactOnSpecialValues) {
  const std::vector<uint8_t> bytes = BuildSynthetic(false);
  const Model model = Model::FromMemory(bytes, "synthetic");
  const ObfuscateResult r = Obfuscate(model, Options(9, 200));
  EXPECT_EQ(r.report.dummy_kinds.size(), 8u) << "not every kind was drawn";
  const float nan_payload = std::bit_cast<float>(0x7fc01234u);
  const std::vector<float> special = {0.0f,
                                      -0.0f,
                                      nan_payload,
                                      -std::numeric_limits<float>::quiet_NaN(),
                                      std::numeric_limits<float>::infinity(),
                                      -std::numeric_limits<float>::infinity(),
                                      std::numeric_limits<float>::denorm_min(),
                                      -std::numeric_limits<float>::denorm_min(),
                                      std::numeric_limits<float>::max(),
                                      std::numeric_limits<float>::lowest(),
                                      1e-40f,
                                      0.1f};
  std::vector<float> input(3 * 8 * 8);
  for (size_t i = 0; i < input.size(); ++i) input[i] = special[i % special.size()];
  EXPECT_EQ(RunRaw(r.bytes, input), RunRaw(bytes, input));
  for (float x : special) {
    const uint32_t bits = std::bit_cast<uint32_t>(x);
    volatile float one = 1.0f, zero = 0.0f, neg_zero = -0.0f;
    EXPECT_EQ(std::bit_cast<uint32_t>(x * one), bits);
    EXPECT_EQ(std::bit_cast<uint32_t>(x / one), bits);
    EXPECT_EQ(std::bit_cast<uint32_t>(x - zero), bits);
    EXPECT_EQ(std::bit_cast<uint32_t>(x + neg_zero), bits);
  }
  EXPECT_NE(std::bit_cast<uint32_t>(-0.0f + 0.0f), std::bit_cast<uint32_t>(-0.0f))
      << "x + 0 would not be exact: that is why the tool adds -0";
}

TEST(Obfuscate, StripsEveryDocStringAndOrigin) {
  const std::vector<uint8_t> bytes = BuildSynthetic(false);
  const ObfuscateResult r = Obfuscate(Model::FromMemory(bytes, "synthetic"), Options(2, 0));
  const onnx::ModelProto obf = Parse(r.bytes);
  EXPECT_GT(DocStrings(Parse(bytes)), 4);
  EXPECT_EQ(DocStrings(obf), 0);
  EXPECT_GE(r.report.doc_strings_removed, 4);
  EXPECT_TRUE(obf.producer_name().empty() && obf.producer_version().empty());
  EXPECT_TRUE(obf.domain().empty());
  EXPECT_EQ(obf.model_version(), 0);
  EXPECT_EQ(obf.graph().name(), "main");
  const std::string text = obf.SerializeAsString();
  EXPECT_EQ(text.find("secret"), std::string::npos) << "an original name or field survived";
}

TEST(Obfuscate, RefusesSubgraphs) {
  const std::vector<uint8_t> bytes = BuildSynthetic(true);
  const Model model = Model::FromMemory(bytes, "with_if");
  try {
    Obfuscate(model, Options());
    ADD_FAILURE() << "a model with an If subgraph was obfuscated";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("subgraph"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("with_if"), std::string::npos) << e.what();
  }
}

TEST(ObfuscateCli, WritesVerifiedModelAndReport) {
  const std::string dir = MakeTempDir("obfuscate");
  const std::string out = dir + "/obf.onnx";
  const std::vector<std::string> args = {"obfuscate",
                                         "--model",
                                         ModelPath("yolov8n-dq"),
                                         "--out",
                                         out,
                                         "--seed",
                                         "5",
                                         "--dummy-layers",
                                         "3",
                                         "--latency-runs",
                                         "2",
                                         "--strip-metadata-except",
                                         "task,names,imgsz,stride"};
  const testing::ProcessResult run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  for (const char* line :
       {"seed         5\n", "dummy layers 3 inserted", "bit-identical", "latency      original",
        "metadata     kept: stride, task, imgsz, names", "dropped: description"}) {
    EXPECT_NE(run.out.find(line), std::string::npos) << line << "\n" << run.out;
  }
  // The CLI writes what the library computes for the same options.
  ObfuscateOptions o = Options(5, 3);
  o.keep_metadata = {"task", "names", "imgsz", "stride"};
  const ObfuscateResult r = Obfuscate(Model::FromFile(ModelPath("yolov8n-dq")), o);
  EXPECT_TRUE(Model::FromFile(out).bytes() == r.bytes);
}

TEST(ObfuscateCli, BadInputsExitWithOneLine) {
  const std::string dir = MakeTempDir("obfuscate_errors");
  const std::string model = ModelPath("yolov8n-dq");
  const std::string out = dir + "/err.onnx";
  const std::string garbage = dir + "/garbage.onnx";
  testing::WriteBytes({'n', 'o', 't', ' ', 'o', 'n', 'n', 'x'}, garbage);
  ExpectCliError({"obfuscate", "--model", garbage, "--out", out}, 3, "not a valid ONNX model");
  ExpectCliError({"obfuscate", "--model", dir + "/absent.onnx", "--out", out}, 3, "absent.onnx");
  for (const char* k : {"-1", "abc", "10001", "2.5"}) {
    ExpectCliError({"obfuscate", "--model", model, "--out", out, "--dummy-layers", k}, 2,
                   "--dummy-layers");
  }
  ExpectCliError({"obfuscate", "--model", model, "--out", out, "--seed", "x1"}, 2, "--seed");
  ExpectCliError({"obfuscate", "--model", model, "--out", out, "--seed", "18446744073709551616"}, 2,
                 "--seed");
  ExpectCliError({"obfuscate", "--model", model, "--out", out, "--strip-metadata-except", "a b"}, 2,
                 "--strip-metadata-except");
  ExpectCliError({"obfuscate", "--model", model, "--out", model}, 2, "--out");
  ExpectCliError({"obfuscate", "--model", model}, 2, "--out");
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace cvdeploy
