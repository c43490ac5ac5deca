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

#include "cvdeploy/compare.h"
#include "cvdeploy/eval.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/stats.h"
#include "cvdeploy/types.h"

namespace cvdeploy::eval {

// The report types are public (cvdeploy/compare.h).
using cvdeploy::Agreement;
using cvdeploy::ClassAgreement;
using cvdeploy::CompareOptions;
using cvdeploy::CompareReport;
using cvdeploy::CompareReportToJson;
using cvdeploy::DiffStats;
using cvdeploy::ImageAgreement;
using cvdeploy::OutputDiff;
using cvdeploy::OutputPart;
using cvdeploy::SpeedStats;

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

// Accumulates matchings image by image. Not thread-safe.
// `min_conf` is the upper edge of the confidence band (compare's --conf + --conf-band): every
// detection takes part in the matching, but only those at or above it are counted, so a
// detection near the threshold that the other model has just below it (or not at all) is no
// disagreement, while one the other model found at any confidence is an agreement. 0 counts all.
class AgreementAccumulator {
 public:
  explicit AgreementAccumulator(float min_iou, float min_conf = 0.f)
      : min_iou_(min_iou), min_conf_(min_conf) {}
  // Matches a.detections to b.detections (both in pixels of the same image) and adds the
  // counts; returns the image's matching, and its counted figures in `image` when given.
  DetectionMatching Add(const Result& a, const Result& b, ImageAgreement* image = nullptr);
  // `names` label the per-class entries (class id when out of range).
  Agreement Summary(const std::vector<std::string>& names) const;

 private:
  struct Counts {
    long a = 0, b = 0, matched = 0;
  };
  float min_iou_, min_conf_;
  long b_matched_ = 0;
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

// "[1,84,8400]": a shape for reports and messages.
std::string Dims(const std::vector<int64_t>& shape);

}  // namespace cvdeploy::eval
