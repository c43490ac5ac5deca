// SPDX-License-Identifier: Apache-2.0
// The one training loop behind Distill, Finetune and QuantizeAwareTrain (cvdeploy/train.h):
// batches from TrainImages, the student (and teacher) run by TorchGraph, the loss chosen by
// the job, AdamW, per-epoch validation keeping the best weights, checkpoints, progress.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cvdeploy/train.h"

namespace cvdeploy::train {

enum class LossKind { kDistill, kDetection, kDistillAndDetection };

struct TrainJob {
  std::string method;                 // "distill", "finetune", "qat" (record and report)
  std::string name;                   // the student, for messages
  std::vector<uint8_t> output_graph;  // the graph the weights are written into (returned)
  std::vector<uint8_t> student;       // the graph trained (output_graph or its dynamic form)
  std::vector<uint8_t> teacher;       // empty without a teacher
  std::string teacher_name;
  LossKind loss = LossKind::kDistill;
  int imgsz = 640;                // training letterbox (square)
  nlohmann::ordered_json record;  // extra fields of the optimization record step
};

TrainResult RunTraining(const TrainJob& job, const TrainOptions& options);

}  // namespace cvdeploy::train
