// SPDX-License-Identifier: Apache-2.0
// Datasets with labels and accuracy metrics (COCO-style mAP, Ultralytics conventions).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/types.h"

namespace cvdeploy {

// One labelled object. Coordinates are NORMALIZED to 0..1 of the image size (YOLO txt
// convention); COCO json labels are normalized with the sizes the json declares.
struct GroundTruth {
  int class_id = -1;
  BoxXYXY box;                                     // normalized x1,y1,x2,y2
  std::vector<std::vector<cv::Point2f>> polygons;  // segment labels, normalized
  std::vector<Keypoint> keypoints;                 // pose labels, normalized (v: 0/1/2)
};

struct LabelledImage {
  std::string image_path;
  std::vector<GroundTruth> labels;  // empty: background image
};

struct Dataset {
  std::vector<LabelledImage> images;
  std::vector<std::string> names;  // class names when the dataset declares them
  bool has_polygons = false;
  bool has_keypoints = false;
  // One line per label file with removed or refused lines ("FILE: N corrupt label line(s),
  // image ignored (first: FILE:LINE: reason)"), for the front end to show as warnings.
  std::vector<std::string> warnings;
};

// DIR/images + DIR/labels (YOLO txt "class cx cy w h [polygon | keypoints]", normalized).
// An image without a label file is a background image. Throws Error(kBadInput) naming the
// file and line for malformed labels (not numbers, wrong value counts, a fractional class
// id), a label path that is not a regular file, a missing images/ directory or no images.
// As Ultralytics' verify_image_label: duplicate label lines are removed, and an image with
// a corrupt label line (class id >= the number of classes, a value below -0.01, a
// coordinate above 1.01; and, beyond Ultralytics' check, a box width or height <= 0) is left
// out of the dataset; both are reported in Dataset::warnings. The number of classes is that of the
// dataset's YAML names when it has them, else `num_classes` (0: class ids are not checked). A
// pose line of 5 values is a box alone; `dir` may be a dataset YAML (cvdeploy/dataset_yaml.h).
Dataset LoadYoloDataset(const std::string& dir, int num_keypoints = 0, int num_classes = 0);
// COCO instances json + image directory. Categories map to `model_names` by name when all
// match, else by sorted category id order.
Dataset LoadCocoDataset(const std::string& json_path, const std::string& images_dir,
                        const std::vector<std::string>& model_names);

struct ClassMetrics {
  int class_id = -1;
  std::string name;
  int images = 0;     // images containing this class in the labels
  int instances = 0;  // labelled objects of this class
  double precision = 0, recall = 0, map50 = 0, map50_95 = 0;
};

struct Metrics {
  double precision = 0, recall = 0, map50 = 0, map50_95 = 0;  // means over classes present
  std::vector<ClassMetrics> per_class;  // classes present in the labels, by id
};

struct EvalReport {
  int images = 0, instances = 0;
  Metrics box;
  std::optional<Metrics> mask;  // segment models with polygon labels
  std::optional<Metrics> pose;  // pose models with keypoint labels (OKS)
};

// Accumulates matches image by image (10 IoU thresholds 0.50:0.05:0.95), then computes
// AP with the 101-point interpolated precision envelope. Not thread-safe.
// A value type: a copy holds everything added so far and is independent afterwards (Add to
// one leaves the other's Compute unchanged), so a copy is a snapshot. Moving transfers the
// records without copying them; a moved-from Evaluator may only be assigned to or destroyed.
class Evaluator {
 public:
  explicit Evaluator(std::vector<std::string> names, Task task = Task::kDetect);
  ~Evaluator();
  Evaluator(const Evaluator& other);
  Evaluator& operator=(const Evaluator& other);
  Evaluator(Evaluator&& other) noexcept;
  Evaluator& operator=(Evaluator&& other) noexcept;

  // `labels` normalized as loaded; `prediction` in pixels of a width x height image.
  void Add(const Result& prediction, const std::vector<GroundTruth>& labels, int width, int height);
  EvalReport Compute() const;

 private:
  struct State;  // names, task, counts and per-prediction records (src/eval/evaluator.cpp)
  std::unique_ptr<State> state_;
};

struct Validation {
  EvalReport report;
  StageTimes mean_ms;  // per image, decode included
};

// Runs `predictor` over every image of `dataset` (decoded with ReadImage) and evaluates the
// results with the model's names and task. `step`, when set, is called after each image.
// An image with more than `max_pixels` pixels (0: no limit) ends the run with ReadImage's
// LimitError. `on_result`, when set, receives each image and its predictions (original
// pixels) before they are evaluated (validate's --save-json). Used by `validate`, the
// quantization accuracy gate and `compare`. With a non-empty `decode_target`, JPEGs are
// decoded at the scale chosen for that letterbox target (ReadImageForModel; validate's
// --decode-scale) and results mapped back to the original size (RescaleResult).
Validation ValidateModel(
    const Predictor& predictor, const Dataset& dataset, const PredictOptions& options,
    const std::function<void()>& step = {}, uint64_t max_pixels = kDefaultMaxPixels,
    const std::function<void(const LabelledImage&, const Result&)>& on_result = {},
    cv::Size decode_target = {});

}  // namespace cvdeploy
