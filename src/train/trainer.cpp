// SPDX-License-Identifier: Apache-2.0
#include "train/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <opencv2/core.hpp>
#include <optional>
#include <random>
#include <set>

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

// The student's (and teacher's) raw head on a batch, and the tensors named in `extra` (into
// `extra_out`).
HeadOut RunHead(const TorchGraph& graph, const HeadTaps& taps, const torch::Tensor& images,
                const std::vector<std::string>& extra = {},
                std::map<std::string, torch::Tensor>* extra_out = nullptr) {
  std::vector<std::string> names = {taps.class_logits, taps.box_logits};
  names.insert(names.end(), extra.begin(), extra.end());
  auto values = graph.Forward({{graph.InputNames().at(0), images}}, names);
  RawHead raw = CanonicalHead(taps, values);
  if (extra_out) {
    extra_out->clear();
    for (const std::string& t : extra) (*extra_out)[t] = values.at(t);
  }
  return HeadOut{raw.cls, raw.box};
}

// A feature hint (FitNets): the student's block output, mapped to the teacher's channels by a
// trainable 1x1 convolution, against the teacher's block output of the same name.
struct Hint {
  std::string tensor;
  torch::Tensor weight;  // [C_teacher, C_student, 1, 1], requires_grad
};

// Hints for every block output both graphs have, with the same batch and spatial size and a
// float type. Each regressor starts at the least-squares map from the student's channels to
// the teacher's on `images` (normal equations with a ridge, in double): for a pruned
// student that is the selection of its kept channels plus the best linear stand-in for the
// removed ones, so the hint loss starts at what pruning actually lost.
// Throws Error(kBadInput) when no block output is shared (the student was not made from the
// teacher, or its names were changed).
std::vector<Hint> MakeHints(const TrainJob& job, const TorchGraph& student,
                            const HeadTaps& student_taps, const TorchGraph& teacher,
                            const HeadTaps& teacher_taps, const torch::Tensor& images) {
  const std::vector<std::string> theirs = teacher.BlockOutputs();
  const std::set<std::string> teacher_outputs(theirs.begin(), theirs.end());
  std::vector<std::string> common;
  for (const std::string& t : student.BlockOutputs()) {
    if (teacher_outputs.count(t) > 0) common.push_back(t);
  }
  std::map<std::string, torch::Tensor> s, t;
  torch::NoGradGuard no_grad;
  RunHead(student, student_taps, images, common, &s);
  RunHead(teacher, teacher_taps, images, common, &t);
  std::vector<Hint> hints;
  for (const std::string& name : common) {
    const torch::Tensor& a = s.at(name);
    const torch::Tensor& b = t.at(name);
    if (a.dim() != 4 || b.dim() != 4 || !a.is_floating_point() || !b.is_floating_point() ||
        a.size(0) != b.size(0) || a.size(2) != b.size(2) || a.size(3) != b.size(3)) {
      continue;
    }
    const int64_t cs = a.size(1), ct = b.size(1);
    const torch::Tensor x = a.to(torch::kDouble).transpose(0, 1).reshape({cs, -1});
    const torch::Tensor y = b.to(torch::kDouble).transpose(0, 1).reshape({ct, -1});
    const double n = static_cast<double>(x.size(1));
    torch::Tensor gram = x.matmul(x.t()) / n;
    // Ridge 1e-2 of the mean channel power: with 1e-4 the maps of correlated channels reached
    // coefficients of 20-34, whose gradients into the student made the loss diverge within a
    // few steps (measured on a 0.3-pruned yolov8n-dq); at 1e-2 they stay below 5.
    const double ridge = 1e-2 * gram.diagonal().mean().item<double>() + 1e-12;
    gram = gram + ridge * torch::eye(cs, torch::kDouble);
    const torch::Tensor map = torch::linalg_solve(gram, x.matmul(y.t()) / n);  // [cs, ct]
    torch::Tensor w = map.t().to(torch::kFloat32).reshape({ct, cs, 1, 1}).contiguous();
    hints.push_back({name, w.set_requires_grad(true)});
  }
  if (hints.empty()) {
    throw Error(ErrorCode::kBadInput, job.name + ": no block output shared with the teacher " +
                                          job.teacher_name +
                                          " for feature hints (--hint-weight needs a student made "
                                          "from the teacher, e.g. by prune)");
  }
  return hints;
}

// The report's note on the hints in use.
std::string HintNote(size_t count, double weight) {
  char text[160];
  std::snprintf(text, sizeof text,
                "feature hints on %zu block outputs (1x1 regressors, least-squares start), "
                "weight %g",
                count, weight);
  return text;
}

// Mean over hints of |regressed student - teacher|^2 / mean(teacher^2).
torch::Tensor HintLoss(const std::vector<Hint>& hints,
                       const std::map<std::string, torch::Tensor>& student,
                       const std::map<std::string, torch::Tensor>& teacher) {
  torch::Tensor sum = torch::zeros({}, torch::kFloat32);
  for (const Hint& h : hints) {
    const torch::Tensor& target = teacher.at(h.tensor);
    const torch::Tensor mapped = torch::conv2d(student.at(h.tensor), h.weight);
    sum = sum + (mapped - target).pow(2).mean() / target.pow(2).mean().clamp_min(1e-8);
  }
  return hints.empty() ? sum : sum / static_cast<double>(hints.size());
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
  double parts_sum[4] = {0, 0, 0, 0};  // cls, box, dfl, hints of the epoch so far
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

// Progress after `step` of `steps` in `epoch` (running means of the epoch so far, and the ETA
// over `total` steps).
TrainProgress StepProgress(const TrainOptions& o, int epoch, int step, int steps, int total,
                           Clock::time_point start, const LoopState& s) {
  TrainProgress p;
  p.epoch = epoch;
  p.epochs = o.epochs;
  p.step = step;
  p.steps = steps;
  p.loss = s.loss_sum / s.loss_count;
  p.cls_loss = s.parts_sum[0] / s.loss_count;
  p.box_loss = s.parts_sum[1] / s.loss_count;
  p.dfl_loss = s.parts_sum[2] / s.loss_count;
  p.hint_loss = s.parts_sum[3] / s.loss_count;
  p.seconds = SecondsSince(start);
  p.eta_seconds = p.seconds / s.step * (total - s.step);
  return p;
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
  // Feature hints need the first batch to set up their regressors; it is drawn here and
  // trained on as the first step.
  std::vector<Hint> hints;
  std::optional<Batch> first;
  if (o.hint_weight > 0 && teacher) {
    first = data.NextBatch(o.batch, rng);
    hints = MakeHints(job, student, student_taps, *teacher, teacher_taps, first->images);
    s.report.notes.push_back(HintNote(hints.size(), o.hint_weight));
  }
  std::vector<std::string> hint_tensors;
  std::vector<torch::Tensor> trained = student.Parameters();
  for (const Hint& h : hints) {
    hint_tensors.push_back(h.tensor);
    trained.push_back(h.weight);
  }
  std::unique_ptr<torch::optim::Optimizer> optimizer = MakeOptimizer(trained, o);
  const int per_epoch = static_cast<int>(data.StepsPerEpoch(o.batch));
  int total = per_epoch * o.epochs;
  if (o.max_steps > 0) total = std::min(total, o.max_steps);
  DistillLossOptions distill_options;
  distill_options.cls_loss = o.cls_loss;
  distill_options.box_loss = o.box_loss;

  for (int epoch = 1; epoch <= o.epochs && s.step < total; ++epoch) {
    s.loss_sum = 0;
    s.loss_count = 0;
    std::fill(std::begin(s.parts_sum), std::end(s.parts_sum), 0.0);
    for (int i = 0; i < per_epoch && s.step < total; ++i) {
      Batch batch = first ? std::move(*first) : data.NextBatch(o.batch, rng);
      first.reset();
      std::map<std::string, torch::Tensor> student_features, teacher_features;
      HeadOut out = RunHead(student, student_taps, batch.images, hint_tensors, &student_features);
      torch::Tensor loss = torch::zeros({}, torch::kFloat32);
      if (teacher) {
        HeadOut target;
        {
          torch::NoGradGuard no_grad;
          target = RunHead(*teacher, teacher_taps, batch.images, hint_tensors, &teacher_features);
        }
        LossParts parts = DistillLoss(out, target, distill_options);
        loss = loss + parts.total;
        AddParts(parts, 1.0, s.parts_sum);
        if (!hints.empty()) {
          const torch::Tensor hint =
              o.hint_weight * HintLoss(hints, student_features, teacher_features);
          loss = loss + hint;
          s.parts_sum[3] += hint.item<double>();
        }
      }
      const double weight = job.loss == LossKind::kDetection ? 1.0 : o.label_loss_weight;
      if (labels && weight > 0) {
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
      if (o.progress) o.progress(StepProgress(o, epoch, i + 1, per_epoch, total, start, s));
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
  if (!hints.empty()) {
    step["hint_weight"] = o.hint_weight;
    step["hints"] = hints.size();
  }
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
