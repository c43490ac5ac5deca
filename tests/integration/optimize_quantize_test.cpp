// SPDX-License-Identifier: Apache-2.0
// `cvdeploy quantize` on the sample models with a few calibration images: the result passes
// the ONNX checker, runs in ONNX Runtime, keeps the input/output names, shapes and metadata,
// is in QDQ form (int8 weights, uint8 activations) with the head decode left float, and
// detects what the float model detects on bus.jpg. A saved calibration table reproduces the
// same graph; error paths give exit codes 2/3 and one stderr line.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "model/onnx_model.h"
#include "optimize/calibration.h"
#include "optimize/quantize.h"
#include "support/assets.h"
#include "support/process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;

// A directory holding the first `n` coco128 images (sorted), as symlinks.
std::string CalibDir(int n) {
  const std::string dir = MakeTempDir("quant_calib");
  std::vector<fs::path> images;
  for (const auto& e : fs::directory_iterator(Asset("datasets/coco128/images"))) {
    images.push_back(e.path());
  }
  std::sort(images.begin(), images.end());
  for (int i = 0; i < n && i < static_cast<int>(images.size()); ++i) {
    fs::create_symlink(images[i], fs::path(dir) / images[i].filename());
  }
  return dir;
}

int CountLines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

std::map<std::string, int> OpCounts(const onnx::ModelProto& model) {
  std::map<std::string, int> counts;
  for (const auto& node : model.graph().node()) ++counts[node.op_type()];
  return counts;
}

const onnx::NodeProto* FindNode(const onnx::ModelProto& model, const std::string& name) {
  for (const auto& node : model.graph().node()) {
    if (node.name() == name) return &node;
  }
  return nullptr;
}

class QuantizeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("quantize"));
    calib_ = new std::string(CalibDir(4));
    const std::vector<std::string> args = {"quantize",
                                           "--model",
                                           Asset("models/yolov8n-dq.onnx"),
                                           "--calib",
                                           *calib_,
                                           "--out",
                                           *dir_ + "/v8_int8.onnx",
                                           "--save-calibration",
                                           *dir_ + "/v8_calib.json"};
    first_ = new ProcessResult(RunCli(args));
    ASSERT_EQ(first_->exit_code, 0) << DescribeRun(args, *first_);
  }
  static void TearDownTestSuite() {
    delete first_;
    delete dir_;
    delete calib_;
  }
  static std::string* dir_;
  static std::string* calib_;
  static ProcessResult* first_;
};
std::string* QuantizeTest::dir_ = nullptr;
std::string* QuantizeTest::calib_ = nullptr;
ProcessResult* QuantizeTest::first_ = nullptr;

TEST_F(QuantizeTest, ProducesACheckedQdqModelThatKeepsTheInterface) {
  const std::string path = *dir_ + "/v8_int8.onnx";
  const onnx::ModelProto original = optimize::LoadModel(Asset("models/yolov8n-dq.onnx"));
  const onnx::ModelProto q = optimize::LoadModel(path);
  EXPECT_NO_THROW(optimize::CheckModel(q, path));
  EXPECT_GE(optimize::DefaultOpset(q), 13);  // per-axis DequantizeLinear

  ASSERT_EQ(q.graph().input_size(), original.graph().input_size());
  ASSERT_EQ(q.graph().output_size(), original.graph().output_size());
  EXPECT_EQ(q.graph().input(0).SerializeAsString(), original.graph().input(0).SerializeAsString());
  EXPECT_EQ(q.graph().output(0).SerializeAsString(),
            original.graph().output(0).SerializeAsString());
  for (const auto& [key, value] : optimize::Metadata(original)) {
    EXPECT_EQ(optimize::Metadata(q)[key], value) << key;
  }
  const auto record = optimize::OptimizationRecord(q);
  ASSERT_FALSE(record.empty());
  EXPECT_EQ(record.back()["tool"], "quantize");
  EXPECT_EQ(record.back()["calibration_images"], 4);
  EXPECT_FALSE(record.back()["excluded"].empty());

  // QDQ form: every learned Conv reads int8 weights through a per-channel DequantizeLinear;
  // activations are uint8.
  const auto ops = OpCounts(q);
  EXPECT_GT(ops.at("QuantizeLinear"), 100);
  EXPECT_GT(ops.at("DequantizeLinear"), 100);
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : q.graph().initializer()) inits[t.name()] = &t;
  std::map<std::string, const onnx::NodeProto*> producer;
  for (const auto& n : q.graph().node()) {
    for (const auto& o : n.output()) producer[o] = &n;
  }
  int int8_convs = 0;
  for (const auto& n : q.graph().node()) {
    if (n.op_type() == "QuantizeLinear") {
      EXPECT_EQ(inits.at(n.input(2))->data_type(), onnx::TensorProto::UINT8) << n.name();
    }
    if (n.op_type() != "Conv" || !producer.count(n.input(1))) continue;
    const onnx::NodeProto* dq = producer.at(n.input(1));
    ASSERT_EQ(dq->op_type(), "DequantizeLinear");
    EXPECT_EQ(inits.at(dq->input(0))->data_type(), onnx::TensorProto::INT8);
    EXPECT_EQ(optimize::NumElements(*inits.at(dq->input(1))), inits.at(dq->input(0))->dims(0));
    ++int8_convs;
  }
  // 64 Convs: the DFL projection (decode) and the Conv on the image stay float.
  EXPECT_EQ(int8_convs, 62);
  for (const char* name : {"/model.22/dfl/conv/Conv", "/model.0/conv/Conv"}) {
    const onnx::NodeProto* conv = FindNode(q, name);
    ASSERT_NE(conv, nullptr) << name;
    EXPECT_TRUE(inits.count(conv->input(1))) << name << " should read its float weight";
  }
  EXPECT_EQ(producer.at("output0")->op_type(), "Concat");

  EXPECT_NE(first_->out.find("quantized"), std::string::npos) << first_->out;
  EXPECT_NE(first_->out.find("decode"), std::string::npos) << first_->out;
  EXPECT_LT(fs::file_size(path), fs::file_size(Asset("models/yolov8n-dq.onnx")) / 2);
}

TEST_F(QuantizeTest, DetectsWhatTheFloatModelDetects) {
  auto f = Predictor::Load(Asset("models/yolov8n-dq.onnx"));
  auto q = Predictor::Load(*dir_ + "/v8_int8.onnx");
  const cv::Mat image = ReadImage(Asset("images/bus.jpg"));
  const Result rf = f->Predict(image), rq = q->Predict(image);
  std::multiset<int> cf, cq;
  for (const auto& d : rf.detections) {
    if (d.confidence > 0.5f) cf.insert(d.class_id);
  }
  for (const auto& d : rq.detections) {
    if (d.confidence > 0.4f) cq.insert(d.class_id);
  }
  // Every confident float detection (4 persons and the bus) has an int8 counterpart.
  ASSERT_FALSE(cf.empty());
  for (int c : cf) {
    EXPECT_GE(cq.count(c), cf.count(c)) << "class " << c;
  }
}

TEST_F(QuantizeTest, SavedCalibrationReproducesTheGraph) {
  const std::vector<std::string> args = {"quantize",
                                         "--model",
                                         Asset("models/yolov8n-dq.onnx"),
                                         "--load-calibration",
                                         *dir_ + "/v8_calib.json",
                                         "--out",
                                         *dir_ + "/v8_int8_loaded.onnx"};
  const ProcessResult run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  const onnx::ModelProto a = optimize::LoadModel(*dir_ + "/v8_int8.onnx");
  const onnx::ModelProto b = optimize::LoadModel(*dir_ + "/v8_int8_loaded.onnx");
  // The record's timestamp may differ; the graph must not.
  EXPECT_TRUE(a.graph().SerializeAsString() == b.graph().SerializeAsString());
}

// The placement follows the target CPU: the record names it and its decisions; quantized for
// a CPU without VNNI, the Conv on the image gets 7-bit weights and the next Conv keeps 8 bits.
TEST_F(QuantizeTest, TargetIsaDecisionsAreAppliedAndRecorded) {
  const nlohmann::ordered_json host =
      optimize::OptimizationRecord(optimize::LoadModel(*dir_ + "/v8_int8.onnx")).back()["isa"];
  EXPECT_EQ(host["source"], "host");
  EXPECT_FALSE(host["target"].get<std::string>().empty());
  EXPECT_GE(host["decisions"].size(), 3u);
  EXPECT_EQ(host["activations"], "uint8");
  EXPECT_EQ(host["input_conv"], "float");

  auto max_weight = [](const onnx::ModelProto& q, const std::string& conv_name) {
    std::map<std::string, const onnx::TensorProto*> inits;
    for (const auto& t : q.graph().initializer()) inits[t.name()] = &t;
    std::map<std::string, const onnx::NodeProto*> producer;
    for (const auto& n : q.graph().node()) producer[n.output(0)] = &n;
    const onnx::NodeProto* conv = FindNode(q, conv_name);
    EXPECT_NE(conv, nullptr) << conv_name;
    if (conv == nullptr || !producer.count(conv->input(1))) return -1;
    int m = 0;
    for (char c : inits.at(producer.at(conv->input(1))->input(0))->raw_data()) {
      m = std::max(m, std::abs(static_cast<int>(static_cast<int8_t>(c))));
    }
    return m;
  };
  for (const auto& [isa, input_bits] :
       std::vector<std::pair<std::string, int>>{{"avx2,fma", 7}, {"avx2,avx512f,avx512_vnni", 8}}) {
    const std::string out = *dir_ + "/v8_int8_isa.onnx";
    const std::vector<std::string> args = {"quantize",
                                           "--model",
                                           Asset("models/yolov8n-dq.onnx"),
                                           "--load-calibration",
                                           *dir_ + "/v8_calib.json",
                                           "--quantize-input-conv",
                                           "--target-isa",
                                           isa,
                                           "--out",
                                           out};
    const ProcessResult run = RunCli(args);
    ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
    EXPECT_NE(run.out.find("--target-isa " + isa), std::string::npos) << run.out;
    const onnx::ModelProto q = optimize::LoadModel(out);
    const nlohmann::ordered_json rec = optimize::OptimizationRecord(q).back()["isa"];
    EXPECT_EQ(rec["source"], "--target-isa") << isa;
    EXPECT_EQ(rec["input_conv"], input_bits == 7 ? "int8, 7-bit weights" : "int8, 8-bit weights");
    const int first = max_weight(q, "/model.0/conv/Conv");
    if (input_bits == 7) {
      EXPECT_LE(first, 64) << isa;
    } else {
      EXPECT_GT(first, 64) << isa;
    }
    EXPECT_GT(max_weight(q, "/model.1/conv/Conv"), 64) << isa;
  }
  const std::vector<std::string> bad = {"quantize",
                                        "--model",
                                        Asset("models/yolov8n-dq.onnx"),
                                        "--load-calibration",
                                        *dir_ + "/v8_calib.json",
                                        "--target-isa",
                                        "avx2,sse9",
                                        "--out",
                                        *dir_ + "/never.onnx"};
  const ProcessResult refused = RunCli(bad);
  EXPECT_EQ(refused.exit_code, 2) << DescribeRun(bad, refused);
  EXPECT_EQ(CountLines(refused.err), 1) << refused.err;
  EXPECT_NE(refused.err.find("sse9"), std::string::npos) << refused.err;
  EXPECT_FALSE(fs::exists(*dir_ + "/never.onnx"));
}

// The neck's nearest Resizes run as uint8 Transpose/Reshape/Expand (ORT's uint8 Resize is a
// per-element loop); the model computes exactly what it computes with Resize.
TEST_F(QuantizeTest, UpsamplingIsRewrittenWithoutChangingTheOutput) {
  const onnx::ModelProto q = optimize::LoadModel(*dir_ + "/v8_int8.onnx");
  const auto ops = OpCounts(q);
  EXPECT_EQ(ops.count("Resize"), 0u);
  EXPECT_EQ(ops.at("Expand"), 2);
  EXPECT_NE(first_->out.find("2 nearest Resize run as uint8"), std::string::npos) << first_->out;
  EXPECT_EQ(optimize::OptimizationRecord(q).back()["uint8_upsampling"], 2);

  const onnx::ModelProto prepared = optimize::PrepareForQuantization(
      optimize::LoadModel(Asset("models/yolov8n-dq.onnx")), "yolov8n-dq");
  const optimize::CalibrationTable table = optimize::LoadCalibration(*dir_ + "/v8_calib.json");
  optimize::QuantizeOptions options;
  const optimize::QuantPlan plan = optimize::PlanQuantization(prepared, options);
  const std::string with = *dir_ + "/v8_upsample_rewritten.onnx";
  const std::string without = *dir_ + "/v8_upsample_resize.onnx";
  core::WriteFileAtomically(
      with, optimize::SerializeModel(optimize::ApplyQuantization(prepared, plan, table, options)));
  options.rewrite_upsample = false;
  const onnx::ModelProto resize_model = optimize::ApplyQuantization(prepared, plan, table, options);
  EXPECT_EQ(OpCounts(resize_model).at("Resize"), 2);
  core::WriteFileAtomically(without, optimize::SerializeModel(resize_model));

  auto a = Predictor::Load(with);
  auto b = Predictor::Load(without);
  std::vector<float> input(3 * 640 * 640);
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<float>((i * 7919) % 256) / 255;
  const TensorView view(DataType::kFloat32, {1, 3, 640, 640}, input.data());
  const std::vector<Predictor::Output> oa = a->Infer(view);
  const std::vector<Predictor::Output> ob = b->Infer(view);
  ASSERT_EQ(oa.size(), ob.size());
  const auto values = [](const Tensor& t) {
    return std::vector<float>(t.Data<float>(), t.Data<float>() + t.elements());
  };
  for (size_t k = 0; k < oa.size(); ++k) {
    EXPECT_EQ(values(oa[k].tensor), values(ob[k].tensor)) << "output " << k;
  }
  const cv::Mat image = ReadImage(Asset("images/bus.jpg"));
  const Result ra = a->Predict(image), rb = b->Predict(image);
  ASSERT_EQ(ra.detections.size(), rb.detections.size());
  for (size_t i = 0; i < ra.detections.size(); ++i) {
    EXPECT_EQ(ra.detections[i].confidence, rb.detections[i].confidence);
    EXPECT_EQ(ra.detections[i].box.x1, rb.detections[i].box.x1);
    EXPECT_EQ(ra.detections[i].box.y2, rb.detections[i].box.y2);
  }
}

TEST_F(QuantizeTest, ExcludeKeepsNamedNodesFloatAndOtherMethodsWork) {
  const std::string out = *dir_ + "/v8_excl.onnx";
  const std::vector<std::string> args = {"quantize",
                                         "--model",
                                         Asset("models/yolov8n-dq.onnx"),
                                         "--load-calibration",
                                         *dir_ + "/v8_calib.json",
                                         "--out",
                                         out,
                                         "--method",
                                         "entropy",
                                         "--per-tensor",
                                         "--exclude",
                                         "/model.2/cv1/conv/Conv,/model.22/cv3.0/cv3.0.2/Conv"};
  const ProcessResult run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  const onnx::ModelProto q = optimize::LoadModel(out);
  std::set<std::string> inits;
  for (const auto& t : q.graph().initializer()) inits.insert(t.name());
  for (const char* name : {"/model.2/cv1/conv/Conv", "/model.22/cv3.0/cv3.0.2/Conv"}) {
    const onnx::NodeProto* conv = FindNode(q, name);
    ASSERT_NE(conv, nullptr) << name;
    EXPECT_TRUE(inits.count(conv->input(1))) << name << " should keep its float weight";
  }
  EXPECT_NE(run.out.find("--exclude"), std::string::npos) << run.out;
  EXPECT_EQ(optimize::OptimizationRecord(q).back()["method"], "entropy");
}

TEST(QuantizeYolo11Test, QuantizesAndRuns) {
  const std::string dir = MakeTempDir("quantize11");
  const std::string out = dir + "/y11_int8.onnx";
  const std::vector<std::string> args = {"quantize", "--model",   Asset("models/yolo11n-dq.onnx"),
                                         "--calib",  CalibDir(2), "--out",
                                         out,        "--method",  "minmax"};
  const ProcessResult run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  const onnx::ModelProto q = optimize::LoadModel(out);
  EXPECT_NO_THROW(optimize::CheckModel(q, out));
  auto predictor = Predictor::Load(out);
  const Result r = predictor->Predict(ReadImage(Asset("images/bus.jpg")));
  int persons = 0;
  for (const auto& d : r.detections) persons += d.class_id == 0 && d.confidence > 0.4f;
  EXPECT_GE(persons, 3);
}

// Segmentation and pose heads: their decode stays float, the mask prototypes and keypoint
// convolutions are quantized, and the int8 model finds the float model's people on bus.jpg
// with masks and keypoints.
TEST(QuantizeOtherTasksTest, SegmentAndPoseModelsQuantizeAndKeepTheirOutputs) {
  const std::string dir = MakeTempDir("quantize_tasks");
  const std::string calib = CalibDir(4);
  const cv::Mat image = ReadImage(Asset("images/bus.jpg"));
  for (const std::string name : {"yolov8n-seg-dq", "yolo11n-pose-dq"}) {
    const std::string in = Asset("models/" + name + ".onnx");
    const std::string out = dir + "/" + name + "_int8.onnx";
    const std::vector<std::string> args = {"quantize", "--model", in, "--calib",
                                           calib,      "--out",   out};
    const ProcessResult run = RunCli(args);
    ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
    const onnx::ModelProto original = optimize::LoadModel(in);
    const onnx::ModelProto q = optimize::LoadModel(out);
    EXPECT_NO_THROW(optimize::CheckModel(q, out));
    ASSERT_EQ(q.graph().output_size(), original.graph().output_size()) << name;
    for (int i = 0; i < q.graph().output_size(); ++i) {
      EXPECT_EQ(q.graph().output(i).SerializeAsString(),
                original.graph().output(i).SerializeAsString())
          << name << " output " << i;
    }
    EXPECT_GT(OpCounts(q).at("DequantizeLinear"), 100) << name;

    auto predictor = Predictor::Load(out);
    const Result r = predictor->Predict(image);
    int persons = 0;
    for (const auto& d : r.detections) {
      if (d.class_id != 0 || d.confidence < 0.4f) continue;
      ++persons;
      if (name == "yolov8n-seg-dq") {
        EXPECT_GT(cv::countNonZero(d.mask), 0) << name;
      } else {
        EXPECT_EQ(d.keypoints.size(), 17u) << name;
      }
    }
    EXPECT_GE(persons, 3) << name;
  }
}

// A model whose batch axis `convert --dynamic-batch` made dynamic (opset 12: the Softmax
// 12 -> 13 conversion needs shapes inferred first) quantizes, keeps the dynamic batch, and a
// batch of two gives what the images give one by one.
TEST(QuantizeDynamicBatchTest, QuantizesAndBatchesExactly) {
  const std::string dir = MakeTempDir("quantize_dynamic");
  const std::string dynamic = dir + "/v8_dynamic.onnx";
  const std::string out = dir + "/v8_dynamic_int8.onnx";
  const std::vector<std::string> convert = {"convert",  "--model", Asset("models/yolov8n-dq.onnx"),
                                            "--output", dynamic,   "--dynamic-batch"};
  const ProcessResult converted = RunCli(convert);
  ASSERT_EQ(converted.exit_code, 0) << DescribeRun(convert, converted);
  const std::vector<std::string> args = {"quantize",  "--model", dynamic, "--calib",
                                         CalibDir(2), "--out",   out};
  const ProcessResult run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  const onnx::ModelProto q = optimize::LoadModel(out);
  EXPECT_FALSE(q.graph().input(0).type().tensor_type().shape().dim(0).dim_param().empty());
  EXPECT_EQ(OpCounts(q).count("Resize"), 0u);

  auto predictor = Predictor::Load(out);
  const std::vector<cv::Mat> images = {ReadImage(Asset("images/bus.jpg")),
                                       ReadImage(Asset("images/zidane.jpg"))};
  const std::vector<Result> batch = predictor->PredictBatch(images);
  ASSERT_EQ(batch.size(), 2u);
  for (size_t i = 0; i < images.size(); ++i) {
    const Result single = predictor->Predict(images[i]);
    ASSERT_EQ(single.detections.size(), batch[i].detections.size()) << "image " << i;
    EXPECT_FALSE(single.detections.empty());
    for (size_t k = 0; k < single.detections.size(); ++k) {
      EXPECT_EQ(single.detections[k].class_id, batch[i].detections[k].class_id);
      EXPECT_EQ(single.detections[k].confidence, batch[i].detections[k].confidence);
      EXPECT_EQ(single.detections[k].box.x1, batch[i].detections[k].box.x1);
      EXPECT_EQ(single.detections[k].box.y2, batch[i].detections[k].box.y2);
    }
  }
}

// Error paths: exit code and one line on stderr naming the problem; nothing written.
struct ErrorCase {
  std::string label;
  std::vector<std::string> args;
  int exit_code;
  std::string message;
};

TEST_F(QuantizeTest, ErrorPaths) {
  const std::string model = Asset("models/yolov8n-dq.onnx");
  const std::string out = *dir_ + "/never.onnx";
  const std::string not_onnx = *dir_ + "/not_onnx.onnx";
  core::WriteFileAtomically(not_onnx, {'h', 'e', 'l', 'l', 'o'});
  const std::string calib = *calib_;
  const std::vector<ErrorCase> cases = {
      {"missing calib dir",
       {"quantize", "--model", model, "--calib", *dir_ + "/nope", "--out", out},
       3,
       "--calib"},
      {"no calibration source", {"quantize", "--model", model, "--out", out}, 2, "--calib"},
      {"bad method",
       {"quantize", "--model", model, "--calib", calib, "--out", out, "--method", "median"},
       2,
       "median"},
      {"bad percentile",
       {"quantize", "--model", model, "--calib", calib, "--out", out, "--percentile", "20"},
       2,
       "--percentile"},
      {"unknown exclude",
       {"quantize", "--model", model, "--calib", calib, "--out", out, "--exclude", "/no/such"},
       2,
       "/no/such"},
      {"not an onnx model",
       {"quantize", "--model", not_onnx, "--calib", calib, "--out", out},
       3,
       "not an ONNX model"},
      {"missing model",
       {"quantize", "--model", *dir_ + "/missing.onnx", "--calib", calib, "--out", out},
       3,
       "missing.onnx"},
      {"table of another model",
       {"quantize", "--model", Asset("models/yolo11n-dq.onnx"), "--load-calibration",
        *dir_ + "/v8_calib.json", "--out", out},
       3,
       "another model"},
      {"corrupt table",
       {"quantize", "--model", model, "--load-calibration", not_onnx, "--out", out},
       3,
       not_onnx},
      {"missing val dir",
       {"quantize", "--model", model, "--calib", calib, "--out", out, "--val", *dir_ + "/noval"},
       3,
       "--val"},
  };
  for (const auto& c : cases) {
    const ProcessResult run = RunCli(c.args);
    EXPECT_EQ(run.exit_code, c.exit_code) << c.label << "\n" << DescribeRun(c.args, run);
    EXPECT_EQ(CountLines(run.err), 1) << c.label << "\n" << run.err;
    EXPECT_NE(run.err.find(c.message), std::string::npos) << c.label << "\n" << run.err;
  }
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace cvdeploy::testing
