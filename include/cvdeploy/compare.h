// SPDX-License-Identifier: Apache-2.0
// Comparing two predictors on the same images (`cvdeploy compare`): raw output differences on
// one shared preprocessed input, detection agreement, mAP of each when labels exist, and the
// speed of each measured alternately in one run. The report is plain data a front end prints
// or serializes (CompareReportToJson).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cvdeploy/eval.h"
#include "cvdeploy/options.h"
#include "cvdeploy/types.h"

namespace cvdeploy {

class Predictor;

// Milliseconds: minimum, mean and numpy-style percentiles of `count` samples.
struct TimingSummary {
  double min = 0, mean = 0, p50 = 0, p90 = 0, p99 = 0;
  size_t count = 0;
};

struct ClassAgreement {
  int class_id = -1;
  std::string name;
  long a_total = 0, b_total = 0, matched = 0;
  double agreement = 1;  // AgreementValue of the three counts
};

// Counts are of the detections at or above the upper edge of the confidence band (conf +
// conf_band, CompareOptions); detections inside the band take part in the matching only.
struct Agreement {
  long a_total = 0, b_total = 0;
  long matched = 0;             // counted detections of A matched in B
  long b_matched = 0;           // counted detections of B matched in A
  double agreement = 1;         // AgreementValue(matched, a_total, b_total)
  double b_agreement = 1;       // the same seen from B: b_matched / b_total
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

struct CompareOptions {
  PredictOptions predict;  // thresholds of the compared detections (predict's by default)
  float match_iou = 0.5f;  // minimum IoU of a matched pair (same class)
  // Half-width of the confidence band around predict.conf: detections are decoded down to
  // conf - conf_band and counted from conf + conf_band up, so a detection at 0.26 in one model
  // and 0.24 in the other (conf 0.25) is not a disagreement. 0: the plain threshold.
  float conf_band = 0.05f;
  // Confidence threshold of the detections scored for mAP (labelled images only), as
  // `validate` (0.001): the same raw outputs decoded a second time, no extra inference.
  float map_conf = 0.001f;
};

struct SpeedStats {
  // Milliseconds per image. end_to_end = decode + preprocess + inference + postprocess;
  // decoding is done once and counted for both, preprocessing once per input geometry.
  TimingSummary decode, preprocess, inference, postprocess, end_to_end;
};

struct ImageAgreement {
  std::string path;
  long a_total = 0, b_total = 0, matched = 0;  // counted as in Agreement
  long b_matched = 0;
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
CompareReport Compare(const Predictor& a, const Predictor& b,
                      const std::vector<LabelledImage>& images, bool labelled,
                      const CompareOptions& options, const std::function<void()>& step = {});

// The report as JSON (images, outputs, detections, per-image counts, mAP, speed, notes); the
// `compare --json` document adds the models, data and thresholds around it.
nlohmann::ordered_json CompareReportToJson(const CompareReport& report);

// "[1,84,8400]": a shape as the compare report prints it.
std::string DimsText(const std::vector<int64_t>& shape);

}  // namespace cvdeploy
