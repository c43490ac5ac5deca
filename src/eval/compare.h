// SPDX-License-Identifier: Apache-2.0
// Comparing two predictors on the same images (`cvdeploy compare`): raw output differences on
// one shared preprocessed input, detection agreement, mAP of each when labels exist, and the
// speed of each measured alternately in one run. Answers "is my model less accurate after
// conversion (fp16, int8, pruning, another provider)?".
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cvdeploy/eval.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/stats.h"
#include "cvdeploy/types.h"

namespace cvdeploy::eval {

// ---- Detection matching -------------------------------------------------------------------

// Axis-aligned IoU without the epsilon of AxisAlignedIouWithEpsilon (similarity.h), so that a
// threshold edge is exact (intersection 90, union 100 gives 0.9f); two identical boxes give 1 even
// when degenerate (zero area), so a model compared with itself matches every detection.
float ExactBoxIou(const BoxXYXY& a, const BoxXYXY& b);
// ProbIou of the rotated boxes when both detections have one (OBB), else ExactBoxIou.
float DetectionIou(const Detection& a, const Detection& b);

struct MatchedPair {
  int a = -1, b = -1;  // indices into the two detection lists
  float iou = 0;
};

struct DetectionMatching {
  std::vector<MatchedPair> pairs;             // in the order they were taken (best IoU first)
  std::vector<int> a_unmatched, b_unmatched;  // ascending indices
};

// Greedy one-to-one matching of one image's detections, best IoU first: every (a, b) pair of
// the same class with IoU >= `min_iou` (inclusive) is a candidate; candidates are taken in
// order of decreasing IoU, ties by lower a index (the more confident A detection, as results
// are sorted by confidence) then lower b index, skipping pairs whose a or b is already taken.
// Not Hungarian: with IoU >= 0.9 one box rarely has two candidates, and greedy-by-IoU is what
// NMS and mAP matching do too. Cost O(|a| |b| log) per image.
DetectionMatching MatchDetections(const std::vector<Detection>& a, const std::vector<Detection>& b,
                                  float min_iou);

// Share of A's detections found in B: matched / a_total; when A has none, 1 if B has none too
// (both agree there is nothing), else 0.
double AgreementValue(long matched, long a_total, long b_total);

struct ClassAgreement {
  int class_id = -1;
  std::string name;
  long a_total = 0, b_total = 0, matched = 0;
  double agreement = 1;  // AgreementValue of the three counts
};

struct Agreement {
  long a_total = 0, b_total = 0, matched = 0;
  double agreement = 1;         // AgreementValue(matched, a_total, b_total)
  double b_agreement = 1;       // the same seen from B: matched / b_total
  long images_all_matched = 0;  // images where every detection of A and B is matched
  // Over matched pairs (0 when none).
  double iou_mean = 0, iou_min = 0;
  double conf_delta_mean = 0, conf_delta_max = 0;  // |conf A - conf B|
  std::vector<ClassAgreement> per_class;           // classes seen in A or B, worst agreement first
  // Pose: distance in pixels between corresponding keypoints of matched pairs.
  long keypoints_compared = 0;
  double keypoint_distance_mean = 0, keypoint_distance_max = 0;
  // Segment: mask IoU (full resolution) of matched pairs that both have a mask.
  long masks_compared = 0;
  double mask_iou_mean = 0, mask_iou_min = 0;
};

// Accumulates matchings image by image. Not thread-safe.
class AgreementAccumulator {
 public:
  explicit AgreementAccumulator(float min_iou) : min_iou_(min_iou) {}
  // Matches a.detections to b.detections (both in pixels of the same image) and adds the
  // counts; returns the image's matching.
  DetectionMatching Add(const Result& a, const Result& b);
  // `names` label the per-class entries (class id when out of range).
  Agreement Summary(const std::vector<std::string>& names) const;

 private:
  struct Counts {
    long a = 0, b = 0, matched = 0;
  };
  float min_iou_;
  Counts total_;
  std::vector<Counts> classes_;  // by class id
  long images_all_matched_ = 0;
  double iou_sum_ = 0, iou_min_ = 1, conf_sum_ = 0, conf_max_ = 0;
  long keypoints_ = 0;
  double keypoint_sum_ = 0, keypoint_max_ = 0;
  long masks_ = 0;
  double mask_sum_ = 0, mask_min_ = 1;
};

// ---- Raw output differences ---------------------------------------------------------------

// Error statistics of B against A over many elements. Non-finite values (NaN, inf) are counted
// apart and left out of the error figures (JSON cannot carry them).
struct DiffStats {
  double max_abs_error = 0, sum_abs_error = 0, max_abs_a = 0;
  int64_t elements = 0, non_finite_a = 0, non_finite_b = 0;

  void Add(float a, float b);
  double MeanAbsError() const { return elements ? sum_abs_error / elements : 0.0; }
  // max_abs_error relative to the output's scale (max |A|); max_abs_error itself when A is 0.
  double MaxRelativeError() const {
    return max_abs_a > 0 ? max_abs_error / max_abs_a : max_abs_error;
  }
};

// A named range of rows [begin, end) of axis 1 of a [B, C, N] output (YOLO heads: boxes,
// class scores, mask coefficients or keypoints), whose errors are reported apart because
// their scales differ (pixels vs probabilities).
struct OutputPart {
  std::string name;
  int64_t begin = 0, end = 0;
};

struct OutputDiff {
  std::string name;
  std::vector<int64_t> shape_a, shape_b;  // as last seen ([] when the model lacks the output)
  bool compared = false;                  // false: `skipped` says why
  std::string skipped;
  DiffStats total;
  std::vector<std::pair<OutputPart, DiffStats>> parts;
};

// Compares outputs by name, batch item 0 of each (the rest of a fixed batch is padding).
// Outputs whose per-item shapes differ, or that one model lacks, are skipped with a reason.
// Not thread-safe.
class OutputDiffAccumulator {
 public:
  void SetParts(const std::string& output, std::vector<OutputPart> parts);
  void Add(const std::vector<NamedTensorView>& a, const std::vector<NamedTensorView>& b);
  // Records the outputs as not comparable for this image (e.g. the inputs differ); an output
  // skipped once stays skipped, since a partial figure would mislead.
  void Skip(const std::vector<NamedTensorView>& a, const std::vector<NamedTensorView>& b,
            const std::string& reason);
  // A's outputs in model order, then those only B has.
  std::vector<OutputDiff> Summary() const { return outputs_; }

 private:
  OutputDiff& Entry(const std::string& name);
  std::vector<OutputDiff> outputs_;
  std::vector<std::pair<std::string, std::vector<OutputPart>>> parts_;
};

// ---- The whole comparison -----------------------------------------------------------------

struct CompareOptions {
  PredictOptions predict;  // thresholds of the compared detections (predict's by default)
  float match_iou = 0.9f;  // minimum IoU of a matched pair (same class)
  // Confidence threshold of the detections scored for mAP (labelled images only), as
  // `validate` (0.001): the same raw outputs decoded a second time, no extra inference.
  float map_conf = 0.001f;
};

struct SpeedStats {
  // Milliseconds per image. end_to_end = decode + preprocess + inference + postprocess;
  // decoding is done once and counted for both, preprocessing once per input geometry.
  bench::Summary decode, preprocess, inference, postprocess, end_to_end;
};

struct ImageAgreement {
  std::string path;
  long a_total = 0, b_total = 0, matched = 0;
};

struct CompareReport {
  int images = 0;
  std::vector<OutputDiff> outputs;
  Agreement detections;
  std::vector<ImageAgreement> per_image;   // in input order
  std::optional<EvalReport> map_a, map_b;  // labelled images only
  SpeedStats speed_a, speed_b;
  std::vector<std::string> notes;  // what was compared how, when not the obvious
};

// Runs `a` and `b` on every image (decoded once with ReadImage, letterboxed exactly as
// Predictor::Predict does, once per input geometry), each model once per image: the raw
// outputs of Predictor::Infer feed the output comparison and are decoded into detections
// (PredictOptions as given) for the agreement, and, when `labelled`, decoded again at
// map_conf for an Evaluator per model (the images' labels; same figures as ValidateModel).
// Models run alternately, A first on even images and B first on odd ones, after one untimed
// warm-up run each, so that machine noise hits both equally. `step` is called after each image.
// Throws Error(kInvalidArgument) for a classify model or options out of range, Error(kBadInput)
// for an unreadable image.
CompareReport CompareModels(const Predictor& a, const Predictor& b,
                            const std::vector<LabelledImage>& images, bool labelled,
                            const CompareOptions& options, const std::function<void()>& step = {});

// {"images", "outputs", "detections", "map" (labelled only), "speed", "notes"}. Errors are not
// rounded (an fp32 round-off of 1e-7 must stay visible); milliseconds to 0.001.
nlohmann::ordered_json CompareReportToJson(const CompareReport& report);

// "[1,84,8400]": a shape for reports and messages.
std::string Dims(const std::vector<int64_t>& shape);

}  // namespace cvdeploy::eval
