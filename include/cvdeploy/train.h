// SPDX-License-Identifier: Apache-2.0
// Recovering accuracy in C++ (libtorch): knowledge distillation from a teacher model on
// unlabelled images, fine-tuning on labelled data, and quantization-aware training. Each takes
// serialized ONNX model bytes and returns {bytes, report} like the model tools (cvdeploy/
// tools.h): the same graph with trained weights written back into its initializers, checked
// and run by ONNX Runtime, with a training step in its `cvdeploy_optimizations` record.
//
// Built only when libtorch is present (CMake option CVDEPLOY_TRAINING, library
// cvdeploy_train, front end `cvdeploy-train`, which `cvdeploy distill|finetune|qat` runs).
// Loading libtorch costs a process ~0.4 s, so the main binary does not link it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace cvdeploy {

// One optimizer step or one epoch's end, for progress lines.
struct TrainProgress {
  int epoch = 0, epochs = 0;  // 1-based epoch
  int step = 0, steps = 0;    // step within the epoch, 1-based; steps 0: the epoch ended
  double loss = 0;            // running mean of the epoch's loss so far
  // Its parts (running means): distillation fills cls and box (the DFL distributions), the
  // detection loss cls, box (CIoU) and dfl, each times its gain.
  double cls_loss = 0, box_loss = 0, dfl_loss = 0;
  double hint_loss = 0;                // feature hints (TrainOptions::hint_weight), weighted
  double seconds = 0;                  // since training started
  double eta_seconds = 0;              // estimated remaining
  std::optional<double> val_map50_95;  // at an epoch's end with a validation set
};

// The detection loss's weight when labels are mixed into distillation. Measured on a 0.1-pruned
// yolov8n-dq (docs/optimization.md, "The losses measured against each other"): at 1 the detection
// loss (Ultralytics' gains, times the batch) outweighs the teacher's and at lr 1e-4 the student
// collapses (mAP 0.19 -> 0.03); 0.1 trails distillation alone, 0.01 matches it.
inline constexpr double kLabelLossWeight = 0.01;

struct TrainOptions {
  std::string images;  // training images (a directory; labels unused by distill)
  std::string data;    // labelled training set (YOLO dataset dir or YAML): finetune, mixed loss
  std::string val;     // labelled validation set: mAP50-95 every epoch, the best is kept
  int epochs = 10;
  int imgsz = 0;  // training letterbox long side; 0: the model's input size
  int batch = 8;
  std::string optimizer = "sgd";  // "sgd" (Nesterov momentum 0.937) or "adamw"
  double lr = 1e-4;  // measured: 1e-3 wrecks a BatchNorm-folded student (docs/optimization.md)
  double weight_decay = 5e-4;
  uint64_t seed = 0;
  int threads = 0;             // libtorch and ONNX Runtime threads; 0: physical cores
  int max_images = 0;          // use at most this many training images (0: all)
  int max_steps = 0;           // stop after this many optimizer steps in all (0: no limit)
  bool augment = true;         // flip, scale, HSV
  bool mosaic = false;         // 4-image mosaic
  std::string checkpoint_dir;  // empty: no checkpoints
  // distill with --data: the detection loss's weight; 0: none (the dataset's images only).
  double label_loss_weight = kLabelLossWeight;
  // Distillation: weight of the feature hints (FitNets), 0: none. Every block output the
  // student and teacher share by name (TorchGraph::BlockOutputs; a pruned student keeps the
  // teacher's names) gets a 1x1 regressor from the student's channels to the teacher's,
  // initialised by least squares on the first batch; the loss is the mean over blocks of the
  // regressed student's squared error relative to the teacher's mean square. The regressors
  // train with the student and are not exported.
  double hint_weight = 0;
  // The distillation loss (distill, qat): classes "bce" (the student's logits against the
  // teacher's probabilities as soft targets) or "kl" (the Bernoulli KL: BCE minus the teacher's
  // entropy, the same gradient); boxes "kl" (KL of the DFL bin distributions), "l1" (L1 of the
  // decoded side distances) or "iou" (1 - CIoU of the decoded boxes), each weighted per anchor
  // by the teacher's confidence. Measured against each other in docs/optimization.md.
  std::string cls_loss = "bce";
  std::string box_loss = "kl";
  std::function<void(const TrainProgress&)> progress;
  std::function<void(const std::string&)> log;
};

struct TrainEpoch {
  int epoch = 0;
  double loss = 0;
  double seconds = 0;
  std::optional<double> val_map50_95;
};

struct TrainReport {
  std::string method;  // "distill", "finetune", "qat"
  int images = 0;      // training images used
  int steps = 0;
  double seconds = 0;
  double initial_loss = 0, final_loss = 0;
  std::vector<TrainEpoch> epochs;
  std::optional<double> val_map_before, val_map_best;
  int best_epoch = 0;         // 0: the starting weights were best
  int trainable_tensors = 0;  // initializers trained
  int64_t trainable_parameters = 0;
  std::vector<std::string> notes;  // one line each: loss chosen, caveats
};

struct TrainResult {
  std::vector<uint8_t> bytes;
  TrainReport report;
};

// True when this build can train (libtorch was found at build time).
bool TrainingAvailable();

// Distills `teacher_bytes` into `student_bytes` (same task, classes and head layout; the
// student may be pruned or smaller) on the images of options.images.
TrainResult Distill(const std::vector<uint8_t>& student_bytes, const std::string& student_name,
                    const std::vector<uint8_t>& teacher_bytes, const std::string& teacher_name,
                    const TrainOptions& options);

// finetune's learning rate: 10x below distillation's. The detection loss is summed over the batch
// (Ultralytics' convention), so its gradients are several times the distillation loss's: at 1e-4
// a 0.1-pruned yolov8n-dq collapsed (mAP 0.19 -> 0.002-0.03), at 1e-5 and 1e-6 it rose to 0.22
// and 0.24 (docs/optimization.md, "The losses measured against each other").
inline constexpr double kFinetuneLearningRate = 1e-5;

// TrainOptions with finetune's defaults (lr kFinetuneLearningRate).
inline TrainOptions FinetuneTrainDefaults() {
  TrainOptions t;
  t.lr = kFinetuneLearningRate;
  return t;
}

// Fine-tunes on labelled data only (options.data), Ultralytics-style detection loss. Pass
// FinetuneTrainDefaults() (lr 1e-5, `cvdeploy finetune`'s default), not TrainOptions{}, whose lr
// 1e-4 is distillation's and collapses a folded-BatchNorm model under this loss.
TrainResult Finetune(const std::vector<uint8_t>& model_bytes, const std::string& name,
                     const TrainOptions& options);

// QAT's learning rate: 10x below distillation's. Measured on yolo11n-dq (docs/optimization.md,
// "Measured (issue 20 targets)"): at 1e-4 and 3e-5 the fake-quantized weights drift below the
// PTQ starting point within a few epochs; at 1e-5 and 5e-6 they stay around it.
inline constexpr double kQatLearningRate = 1e-5;

// TrainOptions with QAT's defaults (lr kQatLearningRate).
inline TrainOptions QatTrainDefaults() {
  TrainOptions t;
  t.lr = kQatLearningRate;
  return t;
}

struct QatOptions {
  TrainOptions train = QatTrainDefaults();  // images: training images; the float model teaches
  std::string calib_dir;                    // calibration images for quantize's plan and scales
  int calib_size = 100;
};

// Quantization-aware training: quantize's plan and calibration, fake quantization at the
// exported Q/DQ positions and scales, distilled from the float model; returns the QDQ model.
TrainResult QuantizeAwareTrain(const std::vector<uint8_t>& model_bytes, const std::string& name,
                               const QatOptions& options);

}  // namespace cvdeploy
