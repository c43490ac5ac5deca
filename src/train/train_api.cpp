// SPDX-License-Identifier: Apache-2.0
// The public training entry points (cvdeploy/train.h): each prepares a TrainJob (which graph
// is trained, at which size, against what) and runs the one loop (train/trainer.h).
#include "cvdeploy/train.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "cvdeploy/error.h"
#include "cvdeploy/quantize.h"
#include "cvdeploy/tools.h"
#include "train/model_weights.h"
#include "train/trainer.h"

namespace cvdeploy {
namespace {

// The graph to train at `imgsz` x `imgsz` in batches of `batch`: the model itself when its
// input already has that fixed size and batch 1 is asked, else its conversion with a dynamic
// batch axis (Ultralytics exports bake batch 1 into reshapes) and/or dynamic height and width
// (they bake 640x640 into anchors and reshapes), as `cvdeploy convert --dynamic` does; the
// trained weights go back into the original graph.
std::vector<uint8_t> GraphForTraining(const std::vector<uint8_t>& bytes, const std::string& name,
                                      int imgsz, int batch) {
  const train::ImageInputDims dims = train::ImageInput(bytes, name);
  std::vector<uint8_t> graph = bytes;
  if (batch > 1 && dims.batch == 1) graph = MakeBatchDynamic(graph, name).bytes;
  if (dims.height != 0 && (dims.height != imgsz || dims.width != imgsz)) {
    graph = MakeShapeDynamic(graph, name).bytes;
  }
  return graph;
}

int TrainingSize(const std::vector<uint8_t>& bytes, const std::string& name, int imgsz) {
  if (imgsz > 0) {
    if (imgsz % 32 != 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  "imgsz " + std::to_string(imgsz) + " is not a multiple of the stride 32",
                  "imgsz");
    }
    return imgsz;
  }
  const train::ImageInputDims dims = train::ImageInput(bytes, name);
  return dims.height > 0 ? static_cast<int>(std::max(dims.height, dims.width)) : 640;
}

void CheckCommon(const TrainOptions& o) {
  if (o.epochs < 1) throw Error(ErrorCode::kInvalidArgument, "epochs must be at least 1", "epochs");
  if (o.batch < 1) throw Error(ErrorCode::kInvalidArgument, "batch must be at least 1", "batch");
  if (!(o.lr > 0)) throw Error(ErrorCode::kInvalidArgument, "lr must be positive", "lr");
  if (!std::isfinite(o.label_loss_weight) || o.label_loss_weight < 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "label_loss_weight must be a finite number >= 0, got " +
                    std::to_string(o.label_loss_weight),
                "label_loss_weight");
  }
  if (o.cls_loss != "bce" && o.cls_loss != "kl") {
    throw Error(ErrorCode::kInvalidArgument, "cls_loss must be bce or kl, got '" + o.cls_loss + "'",
                "cls_loss");
  }
  if (o.box_loss != "kl" && o.box_loss != "l1" && o.box_loss != "iou") {
    throw Error(ErrorCode::kInvalidArgument,
                "box_loss must be kl, l1 or iou, got '" + o.box_loss + "'", "box_loss");
  }
}

// How the distillation loss is recorded in cvdeploy_optimizations.
std::string DistillLossName(const TrainOptions& o) {
  const std::string box = o.box_loss == "kl"   ? "kl(dfl bins)"
                          : o.box_loss == "l1" ? "l1(decoded sides)"
                                               : "(1 - ciou)(decoded boxes)";
  return o.cls_loss + "(cls, teacher p) + " + box;
}

}  // namespace

bool TrainingAvailable() { return true; }

TrainResult Distill(const std::vector<uint8_t>& student_bytes, const std::string& student_name,
                    const std::vector<uint8_t>& teacher_bytes, const std::string& teacher_name,
                    const TrainOptions& options) {
  CheckCommon(options);
  if (options.images.empty() && options.data.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "distill needs training images (--images DIR)",
                "images");
  }
  train::TrainJob job;
  job.method = "distill";
  job.name = student_name;
  job.teacher_name = teacher_name;
  job.imgsz = TrainingSize(student_bytes, student_name, options.imgsz);
  job.output_graph = student_bytes;
  job.student = GraphForTraining(student_bytes, student_name, job.imgsz, options.batch);
  job.teacher = GraphForTraining(teacher_bytes, teacher_name, job.imgsz, options.batch);
  TrainOptions o = options;
  if (!o.data.empty()) {
    job.loss = train::LossKind::kDistillAndDetection;
  }
  job.record = {{"teacher", teacher_name}, {"loss", DistillLossName(o)}};
  if (!o.data.empty()) job.record["label_loss_weight"] = o.label_loss_weight;
  return train::RunTraining(job, o);
}

TrainResult Finetune(const std::vector<uint8_t>& model_bytes, const std::string& name,
                     const TrainOptions& options) {
  CheckCommon(options);
  if (options.data.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "finetune needs a labelled dataset (--data)", "data");
  }
  train::TrainJob job;
  job.method = "finetune";
  job.name = name;
  job.imgsz = TrainingSize(model_bytes, name, options.imgsz);
  job.output_graph = model_bytes;
  job.student = GraphForTraining(model_bytes, name, job.imgsz, options.batch);
  job.loss = train::LossKind::kDetection;
  job.record = {{"loss", "tal + bce + ciou + dfl (7.5, 0.5, 1.5)"}, {"data", options.data}};
  return train::RunTraining(job, options);
}

TrainResult QuantizeAwareTrain(const std::vector<uint8_t>& model_bytes, const std::string& name,
                               const QatOptions& options) {
  CheckCommon(options.train);
  if (options.calib_dir.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "qat needs calibration images (--calib DIR)", "calib");
  }
  if (options.train.images.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "qat needs training images (--images DIR)", "images");
  }
  const train::ImageInputDims dims = train::ImageInput(model_bytes, name);
  train::TrainJob job;
  job.method = "qat";
  job.name = name;
  job.teacher_name = name + " (float)";
  job.imgsz = TrainingSize(model_bytes, name, options.train.imgsz);
  if (dims.height > 0 && (dims.height != job.imgsz || dims.width != job.imgsz)) {
    throw Error(ErrorCode::kInvalidArgument,
                name + ": qat trains at the model's input size " + std::to_string(dims.height) +
                    "x" + std::to_string(dims.width) +
                    " (the Q/DQ scales are the exported model's)",
                "imgsz");
  }
  QuantizeOptions q;
  q.calib_dir = options.calib_dir;
  q.calib_size = options.calib_size;
  q.threads = options.train.threads;
  q.log = options.train.log;
  QuantizeResult quantized = Quantize(model_bytes, name, q);
  job.output_graph = quantized.bytes;
  job.student = GraphForTraining(quantized.bytes, name, job.imgsz, options.train.batch);
  job.teacher = GraphForTraining(model_bytes, name, job.imgsz, options.train.batch);
  job.record = {{"teacher", "the float model"},
                {"loss", DistillLossName(options.train)},
                {"fake_quant", "quantize's Q/DQ positions and scales, straight-through estimator"},
                {"calibration_images", quantized.report.calibration_images},
                {"quantized_nodes", quantized.report.quantized_nodes.size()}};
  return train::RunTraining(job, options.train);
}

}  // namespace cvdeploy
