// SPDX-License-Identifier: Apache-2.0
// Evaluator: per-image matching (box, and mask or OKS by task) into compact records, then
// one AP computation per metric family at Compute().
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "eval/average_precision.h"
#include "eval/mask_iou.h"
#include "eval/matching.h"
#include "eval/similarity.h"

namespace cvdeploy {

using eval::PredictionRecord;

struct Evaluator::State {
  std::vector<std::string> names;
  Task task = Task::kDetect;
  int images = 0;
  int instances = 0;
  std::map<int, eval::LabelCount> label_counts;
  // One record per prediction per metric family; the records are all Compute() needs, so
  // memory stays O(predictions) whatever the image sizes.
  std::vector<PredictionRecord> box, mask, pose;
  bool saw_polygons = false;
  bool saw_keypoints = false;
};

namespace {

// Ultralytics scales the OKS object area by 0.53 (a box covers more than the person).
constexpr double kOksAreaScale = 0.53;

BoxXYXY ToPixels(const BoxXYXY& b, int width, int height) {
  return {b.x1 * width, b.y1 * height, b.x2 * width, b.y2 * height};
}

// Fills the labels x predictions matrix only where classes agree; other pairs stay 0
// and never match, which is also what keeps the work small at conf 0.001.
template <typename Fn>
std::vector<double> SimilarityMatrix(const std::vector<int>& label_classes,
                                     const std::vector<int>& prediction_classes, Fn&& fn) {
  const size_t num_predictions = prediction_classes.size();
  std::vector<double> similarity(label_classes.size() * num_predictions, 0.0);
  for (size_t l = 0; l < label_classes.size(); ++l) {
    for (size_t p = 0; p < num_predictions; ++p) {
      if (label_classes[l] == prediction_classes[p]) similarity[l * num_predictions + p] = fn(l, p);
    }
  }
  return similarity;
}

void Append(std::vector<PredictionRecord>& records, const std::vector<Detection>& detections,
            const std::vector<uint16_t>& tp) {
  for (size_t p = 0; p < detections.size(); ++p) {
    records.push_back({detections[p].confidence, detections[p].class_id, tp[p]});
  }
}

}  // namespace

Evaluator::Evaluator(std::vector<std::string> names, Task task)
    : state_(std::make_unique<State>()) {
  state_->names = std::move(names);
  state_->task = task;
}

Evaluator::~Evaluator() = default;
Evaluator::Evaluator(const Evaluator& other) : state_(std::make_unique<State>(*other.state_)) {}
Evaluator& Evaluator::operator=(const Evaluator& other) {
  if (this != &other) state_ = std::make_unique<State>(*other.state_);
  return *this;
}
Evaluator::Evaluator(Evaluator&& other) noexcept = default;
Evaluator& Evaluator::operator=(Evaluator&& other) noexcept = default;

void Evaluator::Add(const Result& prediction, const std::vector<GroundTruth>& labels, int width,
                    int height) {
  State& s = *state_;
  if (width <= 0) width = prediction.width;
  if (height <= 0) height = prediction.height;
  if (width <= 0 || height <= 0) {
    throw InvalidArgument("Evaluator::Add: image size unknown (width and height must be > 0)");
  }

  std::vector<int> label_classes;
  std::vector<BoxXYXY> label_boxes;
  std::set<int> classes_here;
  for (const GroundTruth& label : labels) {
    if (label.class_id < 0) throw InvalidArgument("Evaluator::Add: label with negative class id");
    label_classes.push_back(label.class_id);
    label_boxes.push_back(ToPixels(label.box, width, height));
    classes_here.insert(label.class_id);
    s.label_counts[label.class_id].instances++;
    s.saw_polygons = s.saw_polygons || !label.polygons.empty();
    s.saw_keypoints = s.saw_keypoints || !label.keypoints.empty();
  }
  for (int class_id : classes_here) s.label_counts[class_id].images++;
  s.images++;
  s.instances += static_cast<int>(labels.size());

  const std::vector<Detection>& detections = prediction.detections;
  std::vector<int> prediction_classes;
  prediction_classes.reserve(detections.size());
  std::vector<float> confidences;
  confidences.reserve(detections.size());
  for (const Detection& d : detections) {
    prediction_classes.push_back(d.class_id);
    confidences.push_back(d.confidence);
  }

  const auto box_iou = SimilarityMatrix(label_classes, prediction_classes, [&](size_t l, size_t p) {
    return eval::AxisAlignedIouWithEpsilon(label_boxes[l], detections[p].box);
  });
  Append(s.box, detections,
         eval::MatchCocoStyle(box_iou, label_classes, prediction_classes, confidences));

  if (s.task == Task::kSegment) {
    std::vector<eval::RegionMask> label_masks;
    for (const GroundTruth& label : labels) {
      label_masks.push_back(eval::RasterizeLabel(label, width, height));
    }
    // Only predictions whose class is labelled here can match; skip the others' masks.
    std::vector<eval::RegionMask> prediction_masks(detections.size());
    for (size_t p = 0; p < detections.size(); ++p) {
      if (classes_here.count(detections[p].class_id)) {
        prediction_masks[p] = eval::PredictionMask(detections[p], width, height);
      }
    }
    const auto mask_iou = SimilarityMatrix(
        label_classes, prediction_classes,
        [&](size_t l, size_t p) { return eval::MaskIou(label_masks[l], prediction_masks[p]); });
    Append(s.mask, detections,
           eval::MatchCocoStyle(mask_iou, label_classes, prediction_classes, confidences));
  }

  if (s.task == Task::kPose) {
    std::vector<std::vector<Keypoint>> label_points(labels.size());
    std::vector<std::vector<double>> sigmas(labels.size());
    for (size_t l = 0; l < labels.size(); ++l) {
      for (Keypoint k : labels[l].keypoints) {
        k.x *= width;
        k.y *= height;
        label_points[l].push_back(k);
      }
      sigmas[l] = eval::KeypointSigmas(label_points[l].size());
    }
    const auto oks = SimilarityMatrix(label_classes, prediction_classes, [&](size_t l, size_t p) {
      const double area = static_cast<double>(label_boxes[l].Area()) * kOksAreaScale;
      return eval::Oks(label_points[l], detections[p].keypoints, area, sigmas[l]);
    });
    Append(s.pose, detections,
           eval::MatchCocoStyle(oks, label_classes, prediction_classes, confidences));
  }
}

EvalReport Evaluator::Compute() const {
  const State& s = *state_;
  EvalReport report;
  report.images = s.images;
  report.instances = s.instances;
  report.box = eval::ComputeMetrics(s.box, s.label_counts, s.names);
  if (s.task == Task::kSegment && s.saw_polygons) {
    report.mask = eval::ComputeMetrics(s.mask, s.label_counts, s.names);
  }
  if (s.task == Task::kPose && s.saw_keypoints) {
    report.pose = eval::ComputeMetrics(s.pose, s.label_counts, s.names);
  }
  return report;
}

}  // namespace cvdeploy
