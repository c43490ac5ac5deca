// SPDX-License-Identifier: Apache-2.0
#include "train/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <opencv2/core.hpp>
#include <optional>
#include <random>

#include "cvdeploy/dataset_yaml.h"
#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "cvdeploy/file.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/system.h"
#include "optimize/quantize_gate.h"
#include "train/losses.h"
#include "train/model_weights.h"
#include "train/torch_graph.h"
#include "train/train_data.h"

namespace cvdeploy::train {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Dataset LoadLabelled(const std::string& path, const std::string& split) {
  if (EndsWith(path, ".yaml") || EndsWith(path, ".yml")) return LoadDatasetYaml(path, split);
  return LoadYoloDataset(path);
}

// The student's (and teacher's) raw head on a batch.
HeadOut RunHead(const TorchGraph& graph, const HeadTaps& taps, const torch::Tensor& images) {
  auto values =
      graph.Forward({{graph.InputNames().at(0), images}}, {taps.class_logits, taps.box_logits});
  RawHead raw = CanonicalHead(taps, values);
  return HeadOut{raw.cls, raw.box};
}

// The output graph with the student's current weights.
std::vector<uint8_t> CurrentBytes(const TrainJob& job, const TorchGraph& student) {
  if (job.student == job.output_graph) return student.WriteBack();
  return student.WriteBackInto(job.output_graph, job.name);
}

void CheckCompatible(const TrainJob& job, const HeadTaps& s, const HeadTaps& t) {
  if (s.nc != t.nc || s.reg_max != t.reg_max) {
    throw Error(ErrorCode::kBadInput, job.name + ": the student's head (" + std::to_string(s.nc) +
                                          " classes, " + std::to_string(s.reg_max) +
                                          " DFL bins) differs from the teacher " +
                                          job.teacher_name + "'s (" + std::to_string(t.nc) + ", " +
                                          std::to_string(t.reg_max) + ")");
  }
}

// Cosine decay from lr to lr/100 over the run, after a linear warm-up over the first tenth
// of the steps (at most 100).
double LearningRate(double lr, int step, int total) {
  const int warmup = std::max(1, std::min(100, total / 10));
  if (step < warmup) return lr * (step + 1) / warmup;
  const double t = static_cast<double>(step - warmup) / std::max(1, total - warmup);
  return lr * (0.01 + 0.99 * 0.5 * (1 + std::cos(M_PI * t)));
}

// Runs the produced model once in ONNX Runtime (the checker already passed).
void CheckRuns(const std::vector<uint8_t>& bytes, const std::string& name, int threads) {
  SessionOptions session;
  session.intra_op_threads = threads;
  auto predictor = Predictor::LoadFromMemory(bytes, name, session);
  cv::Mat image(320, 320, CV_8UC3, cv::Scalar(114, 114, 114));
  predictor->Predict(image);
}

// SGD with Nesterov momentum (Ultralytics' choice for long runs; its step is proportional to
// the gradient, so weights whose gradient is tiny stay put), or AdamW (a step of about lr for
// every weight, which on BatchNorm-folded Conv weights moves small ones far).
std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const std::vector<torch::Tensor>& params,
                                                       const TrainOptions& o) {
  if (o.optimizer == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        params,
        torch::optim::SGDOptions(o.lr).momentum(0.937).nesterov(true).weight_decay(o.weight_decay));
  }
  if (o.optimizer == "adamw") {
    return std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  }
  throw Error(ErrorCode::kInvalidArgument, "optimizer " + o.optimizer + " is not one of sgd, adamw",
              "optimizer");
}

void AddParts(const LossParts& parts, double weight, double* sums) {
  sums[0] += weight * parts.cls;
  sums[1] += weight * parts.box;
  sums[2] += weight * parts.dfl;
}

struct LoopState {
  TrainReport report;
  std::vector<uint8_t> best;
  std::optional<double> best_map;
  std::optional<Dataset> val;
  int step = 0;
  double loss_sum = 0;
  int loss_count = 0;
  double parts_sum[3] = {0, 0, 0};  // cls, box, dfl of the epoch so far
};

void EndEpoch(const TrainJob& job, const TrainOptions& o, const TorchGraph& student, int epoch,
              int threads, Clock::time_point start, LoopState& s) {
  TrainEpoch e;
  e.epoch = epoch;
  e.loss = s.loss_count > 0 ? s.loss_sum / s.loss_count : 0;
  // Without validation or checkpoints only the last epoch's weights are written (after the
  // loop): no write-back per epoch.
  std::vector<uint8_t> bytes;
  if (s.val || !o.checkpoint_dir.empty()) bytes = CurrentBytes(job, student);
  if (s.val) {
    e.val_map50_95 = optimize::ValidateBytes(bytes, job.name, *s.val, threads);
    if (!s.best_map || *e.val_map50_95 > *s.best_map) {
      s.best_map = e.val_map50_95;
      s.best = bytes;
      s.report.best_epoch = epoch;
    }
  } else {
    s.report.best_epoch = epoch;
  }
  if (!o.checkpoint_dir.empty()) {
    WriteFileAtomically(o.checkpoint_dir + "/epoch" + std::to_string(epoch) + ".onnx", bytes);
  }
  e.seconds = SecondsSince(start);
  s.report.epochs.push_back(e);
  if (o.progress) {
    TrainProgress p;
    p.epoch = epoch;
    p.epochs = o.epochs;
    p.loss = e.loss;
    p.seconds = e.seconds;
    p.val_map50_95 = e.val_map50_95;
    o.progress(p);
  }
}

}  // namespace

TrainResult RunTraining(const TrainJob& job, const TrainOptions& o) {
  const Clock::time_point start = Clock::now();
  const int threads = o.threads > 0 ? o.threads : PhysicalCores();
  torch::set_num_threads(threads);
  torch::manual_seed(static_cast<uint64_t>(o.seed));
  std::mt19937_64 rng(o.seed);

  TorchGraph student = TorchGraph::FromBytes(job.student, job.name);
  const HeadTaps student_taps = student.Head();
  std::optional<TorchGraph> teacher;
  HeadTaps teacher_taps;
  if (!job.teacher.empty()) {
    teacher.emplace(TorchGraph::FromBytes(job.teacher, job.teacher_name));
    teacher_taps = teacher->Head();
    CheckCompatible(job, student_taps, teacher_taps);
  }
  const bool labels = job.loss != LossKind::kDistill;
  TrainDataOptions data_options;
  data_options.imgsz = job.imgsz;
  data_options.augment = o.augment;
  data_options.mosaic = o.mosaic;
  data_options.max_images = o.max_images;
  TrainImages data = labels ? TrainImages::FromDataset(o.data, data_options)
                            : TrainImages::FromDirectory(o.images, data_options);
  if (data.size() == 0) {
    throw Error(ErrorCode::kBadInput, (labels ? o.data : o.images) + ": no training images");
  }

  LoopState s;
  s.report.method = job.method;
  s.report.images = static_cast<int>(data.size());
  s.report.trainable_tensors = student.TrainableTensorCount();
  s.report.trainable_parameters = student.ParameterCount();
  s.best = job.output_graph;
  if (!o.val.empty()) {
    s.val = LoadLabelled(o.val, "val");
    s.best_map = optimize::ValidateBytes(job.output_graph, job.name, *s.val, threads);
    s.report.val_map_before = s.best_map;
  }
  auto [anchors, strides] = MakeAnchors(job.imgsz, job.imgsz, student_taps.strides);
  std::unique_ptr<torch::optim::Optimizer> optimizer = MakeOptimizer(student.Parameters(), o);
  const int per_epoch = static_cast<int>(data.StepsPerEpoch(o.batch));
  int total = per_epoch * o.epochs;
  if (o.max_steps > 0) total = std::min(total, o.max_steps);
  DistillLossOptions distill_options;

  for (int epoch = 1; epoch <= o.epochs && s.step < total; ++epoch) {
    s.loss_sum = 0;
    s.loss_count = 0;
    std::fill(std::begin(s.parts_sum), std::end(s.parts_sum), 0.0);
    for (int i = 0; i < per_epoch && s.step < total; ++i) {
      Batch batch = data.NextBatch(o.batch, rng);
      HeadOut out = RunHead(student, student_taps, batch.images);
      torch::Tensor loss = torch::zeros({}, torch::kFloat32);
      if (teacher) {
        HeadOut target;
        {
          torch::NoGradGuard no_grad;
          target = RunHead(*teacher, teacher_taps, batch.images);
        }
        LossParts parts = DistillLoss(out, target, distill_options);
        loss = loss + parts.total;
        AddParts(parts, 1.0, s.parts_sum);
      }
      if (labels) {
        const double weight = job.loss == LossKind::kDetection ? 1.0 : o.label_loss_weight;
        const int64_t b = batch.images.size(0);
        LossParts parts = DetectionLoss(out, anchors, strides, batch.targets, b);
        loss = loss + weight * parts.total;
        AddParts(parts, weight, s.parts_sum);
      }
      const double lr = LearningRate(o.lr, s.step, total);
      for (auto& group : optimizer->param_groups()) group.options().set_lr(lr);
      optimizer->zero_grad();
      loss.backward();
      optimizer->step();
      const double value = loss.item<double>();
      if (!std::isfinite(value)) {
        throw Error(ErrorCode::kRuntime, job.name + ": the loss diverged (" +
                                             std::to_string(value) + ") at step " +
                                             std::to_string(s.step + 1) + ": lower --lr");
      }
      if (s.step == 0) s.report.initial_loss = value;
      s.report.final_loss = value;
      s.loss_sum += value;
      ++s.loss_count;
      ++s.step;
      if (o.progress) {
        TrainProgress p;
        p.epoch = epoch;
        p.epochs = o.epochs;
        p.step = i + 1;
        p.steps = per_epoch;
        p.loss = s.loss_sum / s.loss_count;
        p.cls_loss = s.parts_sum[0] / s.loss_count;
        p.box_loss = s.parts_sum[1] / s.loss_count;
        p.dfl_loss = s.parts_sum[2] / s.loss_count;
        p.seconds = SecondsSince(start);
        p.eta_seconds = p.seconds / s.step * (total - s.step);
        o.progress(p);
      }
    }
    EndEpoch(job, o, student, epoch, threads, start, s);
  }
  if (!s.val) s.best = CurrentBytes(job, student);
  s.report.steps = s.step;
  s.report.val_map_best = s.best_map;
  s.report.seconds = SecondsSince(start);

  nlohmann::ordered_json step = {{"tool", job.method}};
  for (auto& [key, value] : job.record.items()) step[key] = value;
  step["images"] = s.report.images;
  step["imgsz"] = job.imgsz;
  step["epochs"] = o.epochs;
  step["steps"] = s.report.steps;
  step["batch"] = o.batch;
  step["lr"] = o.lr;
  step["seed"] = o.seed;
  step["augment"] = o.augment;
  step["loss_initial"] = s.report.initial_loss;
  step["loss_final"] = s.report.final_loss;
  step["best_epoch"] = s.report.best_epoch;
  if (s.report.val_map_before) step["val_map50_95_before"] = *s.report.val_map_before;
  if (s.report.val_map_best) step["val_map50_95_best"] = *s.report.val_map_best;
  step["seconds"] = s.report.seconds;
  TrainResult result;
  result.bytes = AddTrainingRecord(s.best, job.name, std::move(step));
  CheckRuns(result.bytes, job.name, threads);
  result.report = std::move(s.report);
  return result;
}

}  // namespace cvdeploy::train
