// SPDX-License-Identifier: Apache-2.0
// The training entry points end to end on the sample models, kept short for CI (a few steps
// at imgsz 160-320 on 2-4 images): a distillation run that lowers its loss and writes a model
// that passes the ONNX checker, runs in ONNX Runtime and keeps names, shapes and metadata with
// a training step in its record; a QAT export whose Q/DQ structure equals quantize's; the
// failure paths.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/image.h"
#include "cvdeploy/model.h"
#include "cvdeploy/obfuscate.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/quantize.h"
#include "cvdeploy/tools.h"
#include "cvdeploy/train.h"
#include "model/onnx_model.h"
#include "support/assets.h"
#include "support/process.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;
using testing::Asset;

// A directory with the first n coco128 images (symlinks), as a YOLO dataset (images/, labels/).
std::string SmallDataset(size_t n, const std::string& tag) {
  const std::string root = testing::MakeTempDir(tag);
  fs::create_directories(root + "/images");
  fs::create_directories(root + "/labels");
  for (const std::string& stem : testing::CocoStems(n)) {
    fs::create_symlink(Asset("datasets/coco128/images/" + stem + ".jpg"),
                       root + "/images/" + stem + ".jpg");
    const std::string label = Asset("datasets/coco128") + "/labels/" + stem + ".txt";
    if (fs::exists(label)) fs::create_symlink(label, root + "/labels/" + stem + ".txt");
  }
  return root;
}

struct GraphFacts {
  std::vector<std::string> inputs, outputs, nodes;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> node_types;
};

GraphFacts Facts(const std::vector<uint8_t>& bytes) {
  onnx::ModelProto m = model::ParseModel(bytes, "model");
  GraphFacts f;
  for (const auto& v : m.graph().input()) f.inputs.push_back(v.DebugString());
  for (const auto& v : m.graph().output()) f.outputs.push_back(v.DebugString());
  for (const auto& n : m.graph().node()) {
    f.nodes.push_back(n.name());
    f.node_types.push_back(n.op_type());
  }
  f.metadata = model::Metadata(m);
  return f;
}

// yolov8n-dq (the teacher) and its copy pruned at `ratio` (the student).
struct TeacherAndStudent {
  std::vector<uint8_t> teacher, student;
};

TeacherAndStudent PrunedYolov8n(double ratio) {
  TeacherAndStudent pair;
  pair.teacher = ReadModelBytes(Asset("models/yolov8n-dq.onnx"));
  PruneOptions prune;
  prune.ratio = ratio;
  pair.student = Prune(pair.teacher, "yolov8n-dq", prune).bytes;
  return pair;
}

TrainOptions Short(const std::string& images, int steps) {
  TrainOptions o;
  o.images = images + "/images";
  o.epochs = steps;
  o.batch = 2;
  o.imgsz = 320;
  o.lr = 1e-3;
  o.augment = false;
  o.max_images = 2;
  o.seed = 1;
  return o;
}

TEST(TrainApi, DistillLowersTheLossAndKeepsTheGraph) {
  const auto [teacher, student] = PrunedYolov8n(0.3);
  const std::string data = SmallDataset(2, "distill_short");
  // One batch of the same two images each epoch: six steps must fit them better.
  TrainResult result = Distill(student, "pruned", teacher, "yolov8n-dq", Short(data, 6));
  EXPECT_EQ(result.report.method, "distill");
  EXPECT_EQ(result.report.steps, 6);
  EXPECT_EQ(result.report.images, 2);
  EXPECT_GT(result.report.trainable_tensors, 50);
  ASSERT_EQ(result.report.epochs.size(), 6u);
  EXPECT_LT(result.report.epochs.back().loss, result.report.epochs.front().loss)
      << "loss " << result.report.epochs.front().loss << " -> " << result.report.epochs.back().loss;

  // Same names, shapes (640x640 fixed, as the input) and metadata, plus the training step.
  GraphFacts before = Facts(student), after = Facts(result.bytes);
  EXPECT_EQ(after.inputs, before.inputs);
  EXPECT_EQ(after.outputs, before.outputs);
  EXPECT_EQ(after.nodes, before.nodes);
  for (const auto& [key, value] : before.metadata) {
    if (key == model::kOptimizationKey) continue;
    EXPECT_EQ(after.metadata[key], value) << key;
  }
  nlohmann::json record = nlohmann::json::parse(after.metadata[model::kOptimizationKey]);
  ASSERT_GE(record.size(), 2u);
  EXPECT_EQ(record.back()["tool"], "distill");
  EXPECT_EQ(record.back()["steps"], 6);
  EXPECT_EQ(record.back()["imgsz"], 320);
  EXPECT_EQ(record.back()["loss"], "bce(cls, teacher p) + kl(dfl bins)");
  // The weights changed, and the model runs in ONNX Runtime.
  EXPECT_NE(result.bytes, student);
  auto predictor = Predictor::LoadFromMemory(result.bytes, "distilled");
  Result r = predictor->Predict(ReadImage(Asset("images/bus.jpg")));
  (void)r;
}

// Feature hints on a 0.3-pruned student: every block output is matched through a 1x1
// regressor that trains with the student and is not exported; the loss falls on a fixed batch.
TEST(TrainApi, DistillWithFeatureHints) {
  const auto [teacher, student] = PrunedYolov8n(0.3);
  const std::string data = SmallDataset(2, "distill_hints");
  TrainOptions o = Short(data, 6);
  o.lr = 1e-4;
  o.hint_weight = 1;
  double last_hint = -1;
  o.progress = [&](const TrainProgress& p) {
    if (p.steps > 0) last_hint = p.hint_loss;
  };
  TrainResult result = Distill(student, "pruned", teacher, "yolov8n-dq", o);
  ASSERT_EQ(result.report.epochs.size(), 6u);
  EXPECT_LT(result.report.epochs.back().loss, result.report.epochs.front().loss)
      << "loss " << result.report.epochs.front().loss << " -> " << result.report.epochs.back().loss;
  EXPECT_GT(last_hint, 0);  // the hint part is in the loss and reported
  ASSERT_FALSE(result.report.notes.empty());
  EXPECT_NE(result.report.notes.back().find("feature hints on 16 block outputs"), std::string::npos)
      << result.report.notes.back();
  GraphFacts before = Facts(student), after = Facts(result.bytes);
  EXPECT_EQ(after.nodes, before.nodes);  // no regressor in the exported graph
  EXPECT_EQ(after.outputs, before.outputs);
  nlohmann::json record = nlohmann::json::parse(after.metadata[model::kOptimizationKey]);
  EXPECT_EQ(record.back()["hints"], 16);
  EXPECT_EQ(record.back()["hint_weight"], 1.0);
  // Without hints the record says nothing about them.
  TrainOptions plain = Short(data, 1);
  TrainResult no_hints = Distill(student, "pruned", teacher, "yolov8n-dq", plain);
  nlohmann::json plain_record =
      nlohmann::json::parse(Facts(no_hints.bytes).metadata[model::kOptimizationKey]);
  EXPECT_FALSE(plain_record.back().contains("hints"));
}

// The alternative distillation losses train too and are recorded as chosen.
TEST(TrainApi, DistillWithTheAlternativeLosses) {
  const auto [teacher, student] = PrunedYolov8n(0.1);
  const std::string data = SmallDataset(2, "distill_losses");
  for (const auto& [cls, box, name] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"kl", "l1", "kl(cls, teacher p) + l1(decoded sides)"},
           {"bce", "iou", "bce(cls, teacher p) + (1 - ciou)(decoded boxes)"}}) {
    TrainOptions o = Short(data, 4);
    o.lr = 1e-4;
    o.cls_loss = cls;
    o.box_loss = box;
    TrainResult result = Distill(student, "pruned", teacher, "yolov8n-dq", o);
    ASSERT_EQ(result.report.epochs.size(), 4u) << box;
    EXPECT_LT(result.report.epochs.back().loss, result.report.epochs.front().loss)
        << box << ": loss " << result.report.epochs.front().loss << " -> "
        << result.report.epochs.back().loss;
    nlohmann::json record =
        nlohmann::json::parse(Facts(result.bytes).metadata[model::kOptimizationKey]);
    EXPECT_EQ(record.back()["loss"], name);
  }
}

// finetune (labels only) and distill with labels mixed in: the detection loss is reported (its
// DFL part) and the fixed batch is fitted better (lr 1e-4 here: a handful of steps on one
// batch measure the mechanics, not the recovery).
TEST(TrainApi, FinetuneAndDistillWithLabels) {
  const std::vector<uint8_t> model = ReadModelBytes(Asset("models/yolov8n-dq.onnx"));
  const std::string data = SmallDataset(2, "finetune_short");
  TrainOptions o = Short(data, 5);
  o.images.clear();
  o.data = data;
  o.lr = 1e-4;
  double dfl = 0;
  o.progress = [&](const TrainProgress& p) {
    if (p.steps > 0) dfl = p.dfl_loss;
  };
  TrainResult tuned = Finetune(model, "yolov8n-dq", o);
  EXPECT_EQ(tuned.report.method, "finetune");
  ASSERT_EQ(tuned.report.epochs.size(), 5u);
  EXPECT_LT(tuned.report.epochs.back().loss, tuned.report.epochs.front().loss)
      << "loss " << tuned.report.epochs.front().loss << " -> " << tuned.report.epochs.back().loss;
  EXPECT_GT(dfl, 0);
  nlohmann::json record =
      nlohmann::json::parse(Facts(tuned.bytes).metadata[model::kOptimizationKey]);
  EXPECT_EQ(record.back()["tool"], "finetune");
  EXPECT_EQ(record.back()["data"], data);
  Predictor::LoadFromMemory(tuned.bytes, "tuned")->Predict(ReadImage(Asset("images/bus.jpg")));

  dfl = 0;
  o.epochs = 1;
  TrainResult mixed = Distill(model, "student", model, "teacher", o);
  EXPECT_GT(dfl, 0);  // the detection loss is in
  nlohmann::json mixed_record =
      nlohmann::json::parse(Facts(mixed.bytes).metadata[model::kOptimizationKey]);
  EXPECT_EQ(mixed_record.back()["tool"], "distill");
  EXPECT_EQ(mixed_record.back()["label_loss_weight"], kLabelLossWeight);
}

TEST(TrainApi, SameSeedSameModel) {
  const std::vector<uint8_t> teacher = ReadModelBytes(Asset("models/yolov8n-dq.onnx"));
  const std::string data = SmallDataset(2, "distill_seed");
  TrainOptions o = Short(data, 1);
  o.imgsz = 160;
  o.augment = true;
  TrainResult a = Distill(teacher, "a", teacher, "t", o);
  TrainResult b = Distill(teacher, "a", teacher, "t", o);
  EXPECT_EQ(a.report.final_loss, b.report.final_loss);
  onnx::ModelProto ma = model::ParseModel(a.bytes, "a"), mb = model::ParseModel(b.bytes, "b");
  ASSERT_EQ(ma.graph().initializer_size(), mb.graph().initializer_size());
  for (int i = 0; i < ma.graph().initializer_size(); ++i) {
    EXPECT_EQ(ma.graph().initializer(i).SerializeAsString(),
              mb.graph().initializer(i).SerializeAsString())
        << ma.graph().initializer(i).name();
  }
}

TEST(TrainApi, QatKeepsQuantizesStructure) {
  const std::vector<uint8_t> model = ReadModelBytes(Asset("models/yolo11n-dq.onnx"));
  const std::string data = SmallDataset(2, "qat_short");
  QuantizeOptions q;
  q.calib_dir = data + "/images";
  q.calib_size = 2;
  const std::vector<uint8_t> ptq = Quantize(model, "yolo11n-dq", q).bytes;
  QatOptions o;
  o.train = Short(data, 1);
  o.train.imgsz = 0;  // the model's 640: Q/DQ scales are the exported model's
  o.train.batch = 1;
  o.train.max_steps = 1;
  o.calib_dir = data + "/images";
  o.calib_size = 2;
  TrainResult result = QuantizeAwareTrain(model, "yolo11n-dq", o);
  EXPECT_EQ(result.report.steps, 1);
  GraphFacts a = Facts(ptq), b = Facts(result.bytes);
  EXPECT_EQ(b.node_types, a.node_types);
  EXPECT_EQ(b.nodes, a.nodes);
  EXPECT_NE(result.bytes, ptq);
  nlohmann::json record = nlohmann::json::parse(b.metadata[model::kOptimizationKey]);
  EXPECT_EQ(record.back()["tool"], "qat");
  EXPECT_EQ(record[record.size() - 2]["tool"], "quantize");
  auto predictor = Predictor::LoadFromMemory(result.bytes, "qat");
  predictor->Predict(ReadImage(Asset("images/bus.jpg")));
}

// QAT's and finetune's learning rates default to 10x below distillation's, in the API and on the
// command line; the label weight's default shows in distill's help.
TEST(TrainApi, QatDefaultsToItsOwnLearningRate) {
  EXPECT_EQ(QatOptions{}.train.lr, kQatLearningRate);
  EXPECT_LT(kQatLearningRate, TrainOptions{}.lr);
  const testing::ProcessResult qat = testing::RunCli({"qat", "--help"});
  ASSERT_EQ(qat.exit_code, 0) << qat.err;
  EXPECT_NE(qat.out.find("=1e-05"), std::string::npos) << qat.out;
  const testing::ProcessResult distill = testing::RunCli({"distill", "--help"});
  ASSERT_EQ(distill.exit_code, 0) << distill.err;
  EXPECT_NE(distill.out.find("=0.0001"), std::string::npos) << distill.out;
  EXPECT_NE(distill.out.find("--box-loss"), std::string::npos) << distill.out;
  EXPECT_TRUE(std::regex_search(distill.out, std::regex(R"(--label-weight[^\n]*=0\.01\b)")))
      << distill.out;
  EXPECT_EQ(FinetuneTrainDefaults().lr, kFinetuneLearningRate);
  EXPECT_LT(kFinetuneLearningRate, TrainOptions{}.lr);
  const testing::ProcessResult finetune = testing::RunCli({"finetune", "--help"});
  ASSERT_EQ(finetune.exit_code, 0) << finetune.err;
  EXPECT_NE(finetune.out.find("=1e-05"), std::string::npos) << finetune.out;
}

// The command line: finetune end to end through `cvdeploy`, and the loss choices' usage errors.
TEST(TrainCli, FinetuneRunsAndLossChoicesAreChecked) {
  const std::string data = SmallDataset(1, "finetune_cli");
  const std::string out = testing::MakeTempDir("finetune_cli_out");
  const testing::ProcessResult tuned =
      testing::RunCli({"finetune", "--model", Asset("models/yolov8n-dq.onnx"), "--data", data,
                       "--epochs", "1", "--batch", "1", "--imgsz", "160", "--max-steps", "1",
                       "--out", out + "/tuned.onnx", "--json", out + "/report.json"});
  ASSERT_EQ(tuned.exit_code, 0) << tuned.err;
  EXPECT_TRUE(fs::exists(out + "/tuned.onnx"));
  nlohmann::json report = nlohmann::json::parse(ReadFileBytes(out + "/report.json"));
  EXPECT_EQ(report["method"], "finetune");
  EXPECT_EQ(report["steps"], 1);
  const testing::ProcessResult bad =
      testing::RunCli({"distill", "--student", Asset("models/yolov8n-dq.onnx"), "--teacher",
                       Asset("models/yolov8n-dq.onnx"), "--images", data + "/images", "--box-loss",
                       "giou", "--out", out + "/never.onnx"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("--box-loss"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(out + "/never.onnx"));
}

// Distill(student, teacher, options) throws an Error with `code` whose message contains every
// one of `parts`.
void ExpectDistillError(const std::vector<uint8_t>& student, const std::vector<uint8_t>& teacher,
                        const TrainOptions& options, ErrorCode code,
                        const std::vector<std::string>& parts) {
  try {
    Distill(student, "s", teacher, "t", options);
    ADD_FAILURE() << "no error (expected " << parts.front() << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  }
}

TEST(TrainApi, FailurePaths) {
  const std::vector<uint8_t> model = ReadModelBytes(Asset("models/yolov8n-dq.onnx"));
  const std::vector<uint8_t> pose = ReadModelBytes(Asset("models/yolo11n-pose-dq.onnx"));
  const std::string data = SmallDataset(1, "train_fail");
  TrainOptions o = Short(data, 1);
  // A teacher with another head (1 class vs 80) is refused before training.
  ExpectDistillError(model, pose, o, ErrorCode::kBadInput, {"teacher"});
  TrainOptions no_images = o;
  no_images.images = testing::MakeTempDir("train_empty");
  EXPECT_THROW(Distill(model, "s", model, "t", no_images), Error);
  TrainOptions bad_size = o;
  bad_size.imgsz = 100;
  ExpectDistillError(model, model, bad_size, ErrorCode::kInvalidArgument,
                     {"imgsz 100 is not a multiple of the stride 32"});
  EXPECT_THROW(Finetune(model, "m", o), Error);  // no --data
  TrainOptions negative = o;
  negative.label_loss_weight = -1;
  ExpectDistillError(model, model, negative, ErrorCode::kInvalidArgument, {"label_loss_weight"});
  TrainOptions bad_box = o;
  bad_box.box_loss = "giou";
  ExpectDistillError(model, model, bad_box, ErrorCode::kInvalidArgument,
                     {"box_loss must be", "giou"});
  TrainOptions bad_cls = o;
  bad_cls.cls_loss = "l2";
  ExpectDistillError(model, model, bad_cls, ErrorCode::kInvalidArgument,
                     {"cls_loss must be", "l2"});
  const std::vector<uint8_t> junk = {1, 2, 3};
  EXPECT_THROW(Distill(junk, "junk", model, "t", o), Error);
  // Feature hints need block outputs shared by name: an obfuscated copy has none.
  const std::vector<uint8_t> renamed =
      Obfuscate(Model::FromMemory(model, "yolov8n-dq"), ObfuscateOptions{}).bytes;
  TrainOptions hints = o;
  hints.hint_weight = 1;
  ExpectDistillError(renamed, model, hints, ErrorCode::kBadInput,
                     {"no block output shared with the teacher t"});
}

}  // namespace
}  // namespace cvdeploy
