// SPDX-License-Identifier: Apache-2.0
// `cvdeploy golden record|check` end to end on yolov8n-dq with bus.jpg and zidane.jpg: the
// recorded model passes with 1 and 2 threads (either way round); a changed preprocessing
// contract, perturbed weights and a different model each fail with exit 7.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "model/onnx_model.h"
#include "support/assets.h"
#include "support/model_variants.h"
#include "support/process.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;
using testing::Asset;
using testing::DescribeRun;
using testing::MakeTempDir;
using testing::RunCli;

constexpr int kGoldenMismatch = 7;

const std::string& Images() {
  static const std::string dir = [] {
    const std::string d = MakeTempDir("golden-src");
    fs::copy_file(Asset("images/bus.jpg"), d + "/bus.jpg");
    fs::copy_file(Asset("images/zidane.jpg"), d + "/zidane.jpg");
    return d;
  }();
  return dir;
}

std::string WriteModel(const onnx::ModelProto& model, const std::string& tag) {
  return testing::WriteModelProto(model, tag);
}

void SetMetadata(onnx::ModelProto& model, const std::string& key, const std::string& value) {
  testing::SetModelMetadata(model, key, value);
}

// yolov8n-dq with its input's spatial axes made dynamic and its metadata imgsz set to 480:
// the same weights, but the preprocessing contract now letterboxes to 480x480. (A fixed
// input's dims win over metadata, so on the original graph the metadata alone changes
// nothing; and this export's head has the 640 anchor count baked into a Reshape, so the
// altered model loads but cannot run at 480: the check must report that, not crash.)
const std::string& ImgszModel() {
  static const std::string path = [] {
    onnx::ModelProto model = optimize::LoadModel(Asset("models/yolov8n-dq.onnx"));
    auto* shape = model.mutable_graph()
                      ->mutable_input(0)
                      ->mutable_type()
                      ->mutable_tensor_type()
                      ->mutable_shape();
    shape->mutable_dim(2)->set_dim_param("height");
    shape->mutable_dim(3)->set_dim_param("width");
    SetMetadata(model, "imgsz", "[480, 480]");
    return WriteModel(model, "golden-contract");
  }();
  return path;
}

// yolov8n-dq that expects BGR input instead of RGB (its first node reverses the channels):
// a preprocessing contract change that loads and runs at the same size, as a model
// exported from a BGR pipeline would.
const std::string& ChannelOrderModel() {
  static const std::string path = [] {
    onnx::ModelProto model = optimize::LoadModel(Asset("models/yolov8n-dq.onnx"));
    onnx::GraphProto* graph = model.mutable_graph();
    const std::string input = graph->input(0).name();
    const std::string swapped = input + "_bgr";
    for (onnx::NodeProto& node : *graph->mutable_node()) {
      for (std::string& in : *node.mutable_input()) {
        if (in == input) in = swapped;
      }
    }
    *graph->add_initializer() = optimize::Int64Tensor("golden_test_bgr", {3}, {2, 1, 0});
    onnx::NodeProto gather;
    gather.set_op_type("Gather");
    gather.set_name("golden_test_bgr_gather");
    gather.add_input(input);
    gather.add_input("golden_test_bgr");
    gather.add_output(swapped);
    onnx::AttributeProto* axis = gather.add_attribute();
    axis->set_name("axis");
    axis->set_type(onnx::AttributeProto::INT);
    axis->set_i(1);
    graph->mutable_node()->Add(std::move(gather));
    // Nodes must be in topological order: move the new one to the front.
    for (int i = graph->node_size() - 1; i > 0; --i) graph->mutable_node()->SwapElements(i, i - 1);
    return WriteModel(model, "golden-bgr");
  }();
  return path;
}

// yolov8n-dq with the weights of its last Conv (a head output layer) scaled by 1.05.
const std::string& PerturbedModel() {
  static const std::string path =
      testing::ModelWithScaledLastConv(Asset("models/yolov8n-dq.onnx"), 1.05f, "golden-perturbed");
  return path;
}

// The golden set of yolov8n-dq on bus.jpg and zidane.jpg, recorded with `threads`.
std::string Record(int threads) {
  const std::string out = MakeTempDir("golden-set") + "/golden";
  const std::vector<std::string> args = {
      "golden", "record", "--model",   Asset("models/yolov8n-dq.onnx"), "--images", Images(),
      "--out",  out,      "--threads", std::to_string(threads)};
  const auto run = RunCli(args);
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  return out;
}

nlohmann::json Check(const std::string& model, const std::string& golden, int threads,
                     int expected_exit) {
  const std::vector<std::string> args = {"golden",   "check", "--model",   model,
                                         "--golden", golden,  "--threads", std::to_string(threads),
                                         "--json"};
  const auto run = RunCli(args);
  EXPECT_EQ(run.exit_code, expected_exit) << DescribeRun(args, run);
  try {
    return nlohmann::json::parse(run.out);
  } catch (const std::exception&) {
    ADD_FAILURE() << "not JSON: " << DescribeRun(args, run);
    return {};
  }
}

const std::string& GoldenOneThread() {
  static const std::string dir = Record(1);
  return dir;
}

TEST(CliGoldenTest, RecordWritesTheSetAndTheImages) {
  const std::string& dir = GoldenOneThread();
  EXPECT_TRUE(fs::is_regular_file(dir + "/bus.jpg"));
  EXPECT_TRUE(fs::is_regular_file(dir + "/zidane.jpg"));
  std::ifstream in(dir + "/golden.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(ss.str());
  EXPECT_EQ(j["format_version"], 1);
  ASSERT_EQ(j["records"].size(), 2u);
  EXPECT_EQ(j["records"][0]["input"], "bus.jpg");
  EXPECT_GE(j["records"][0]["result"]["detections"].size(), 4u);  // people and the bus
  EXPECT_EQ(j["records"][0]["outputs"][0]["samples"].size(), 64u);
}

TEST(CliGoldenTest, RecordedModelPassesWithOneAndTwoThreads) {
  for (int threads : {1, 2}) {
    const nlohmann::json r = Check(Asset("models/yolov8n-dq.onnx"), GoldenOneThread(), threads, 0);
    EXPECT_TRUE(r.value("passed", false));
    EXPECT_EQ(r["failures"].size(), 0u) << r.dump();
    EXPECT_GT(r.value("detections_matched", 0), 0);
  }
  // The other way round: recorded with 2 threads, checked with 1.
  const nlohmann::json r = Check(Asset("models/yolov8n-dq.onnx"), Record(2), 1, 0);
  EXPECT_TRUE(r.value("passed", false)) << r.dump();
}

TEST(CliGoldenTest, TextOutputSaysOkPerInput) {
  const std::vector<std::string> args = {
      "golden",   "check",           "--model",   Asset("models/yolov8n-dq.onnx"),
      "--golden", GoldenOneThread(), "--threads", "2"};
  const auto run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  EXPECT_NE(run.out.find("bus.jpg: OK"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("zidane.jpg: OK"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("golden set: passed"), std::string::npos) << run.out;
}

bool HasFinding(const nlohmann::json& report, const std::string& input, const std::string& part) {
  for (const auto& f : report["failures"]) {
    if (f["input"] == input && f["reason"].get<std::string>().find(part) != std::string::npos)
      return true;
  }
  return false;
}

TEST(CliGoldenTest, ChangedImgszMetadataFails) {
  const nlohmann::json r = Check(ImgszModel(), GoldenOneThread(), 2, kGoldenMismatch);
  EXPECT_FALSE(r.value("passed", true));
  EXPECT_TRUE(HasFinding(r, "", "preprocessing contract changed: model input 480x480"))
      << r.dump(1);
  EXPECT_TRUE(HasFinding(r, "bus.jpg", "cannot run")) << r.dump(1);
}

// A fixed input's dimensions win over the imgsz metadata, so changing only the metadata changes
// no pixel of the preprocessing; the model file is still not the one recorded, and its
// contract (the metadata entry) is compared on its own: the check fails naming it.
TEST(CliGoldenTest, MetadataOnlyImgszChangeFailsAsAContractChange) {
  onnx::ModelProto model = optimize::LoadModel(Asset("models/yolov8n-dq.onnx"));
  SetMetadata(model, "imgsz", "[480, 480]");
  const nlohmann::json r =
      Check(WriteModel(model, "golden-meta-only"), GoldenOneThread(), 2, kGoldenMismatch);
  EXPECT_FALSE(r.value("passed", true));
  EXPECT_TRUE(HasFinding(r, "", "preprocessing contract changed: metadata imgsz is '[480, 480]'"))
      << r.dump(1);
  // Only the contract: every input still reproduces its outputs.
  for (const auto& f : r["failures"]) EXPECT_EQ(f["input"], "") << r.dump(1);
}

TEST(CliGoldenTest, ChangedChannelOrderFails) {
  const nlohmann::json r = Check(ChannelOrderModel(), GoldenOneThread(), 2, kGoldenMismatch);
  EXPECT_FALSE(r.value("passed", true));
  // Same size, task and classes: only the outputs tell.
  for (const auto& f : r["failures"]) EXPECT_NE(f["input"], "") << r.dump(1);
  EXPECT_TRUE(HasFinding(r, "bus.jpg", "output0")) << r.dump(1);
  EXPECT_TRUE(HasFinding(r, "zidane.jpg", "output0")) << r.dump(1);
}

TEST(CliGoldenTest, PerturbedWeightsFail) {
  const nlohmann::json r = Check(PerturbedModel(), GoldenOneThread(), 2, kGoldenMismatch);
  EXPECT_FALSE(r.value("passed", true));
  EXPECT_FALSE(r["failures"].empty());
  for (const auto& f : r["failures"]) EXPECT_NE(f["input"], "") << r.dump(1);  // same contract
}

TEST(CliGoldenTest, DifferentModelFails) {
  const nlohmann::json r =
      Check(Asset("models/yolo11n-dq.onnx"), GoldenOneThread(), 2, kGoldenMismatch);
  EXPECT_FALSE(r.value("passed", true));
  EXPECT_TRUE(HasFinding(r, "bus.jpg", "output0")) << r.dump(1);
}

TEST(CliGoldenTest, ChangedInputFileFails) {
  const std::string dir = MakeTempDir("golden-copy") + "/golden";
  fs::copy(GoldenOneThread(), dir);
  fs::copy_file(Asset("images/bus.jpg"), dir + "/zidane.jpg", fs::copy_options::overwrite_existing);
  const nlohmann::json r = Check(Asset("models/yolov8n-dq.onnx"), dir, 2, kGoldenMismatch);
  EXPECT_TRUE(HasFinding(r, "zidane.jpg", "sha256")) << r.dump(1);
}

TEST(CliGoldenTest, MalformedGoldenJsonIsBadInput) {
  const std::string dir = MakeTempDir("golden-bad") + "/golden";
  fs::copy(GoldenOneThread(), dir);
  std::ofstream(dir + "/golden.json") << R"({"format": "cvdeploy-golden", "format_version": 2})";
  testing::ExpectCliError(
      {"golden", "check", "--model", Asset("models/yolov8n-dq.onnx"), "--golden", dir}, 3,
      "unsupported version 2");
}

}  // namespace
}  // namespace cvdeploy
