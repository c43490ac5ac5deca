// SPDX-License-Identifier: Apache-2.0
// Average precision and P/R/F1 summaries from matched predictions, following Ultralytics'
// ap_per_class / compute_ap ('interp' method) so numbers are comparable with `yolo val`.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "cvdeploy/eval.h"

namespace cvdeploy::eval {

inline constexpr int kNumThresholds = 10;
// COCO IoU (or OKS) thresholds 0.50:0.05:0.95, written out so comparisons are exact.
inline constexpr std::array<double, kNumThresholds> kThresholds = {0.50, 0.55, 0.60, 0.65, 0.70,
                                                                   0.75, 0.80, 0.85, 0.90, 0.95};

// One prediction after matching: bit t of `tp` is set when it is a true positive at
// kThresholds[t].
struct PredictionRecord {
  float confidence = 0;
  int class_id = -1;
  uint16_t tp = 0;
};

// Labelled objects of one class over the whole dataset.
struct LabelCount {
  int instances = 0;
  int images = 0;  // images with at least one instance
};

// numpy.interp: piecewise-linear interpolation of (xp, fp) at x. `xp` must be ascending;
// duplicates are allowed and resolved like numpy (the last xp[j] <= x is the left end).
// Returns `left` below xp[0] and `right` above xp.back().
double Interp(double x, std::span<const double> xp, std::span<const double> fp, double left,
              double right);

// Ultralytics compute_ap: sentinels (recall 0, precision 1) and (recall 1, precision 0),
// precision envelope non-increasing from the right, trapezoid over 101 recall points.
// `recall` and `precision` are cumulative curves in confidence order. Note that the final
// sentinel makes a perfect curve integrate to 0.995, not 1, exactly as Ultralytics does.
double ComputeAp(std::span<const double> recall, std::span<const double> precision);

// Ultralytics smooth(): box filter of odd width round(n * 2 * fraction) / 2 * 2 + 1 with
// edge padding, so the output has the input's length.
std::vector<double> Smooth(std::span<const double> y, double fraction);

// Ultralytics ap_per_class over every class present in `labels` (classes with labels but
// no predictions count as 0). P and R are taken at the confidence maximizing the smoothed
// mean F1 on a 1000-point grid. Predictions of classes absent from the labels are ignored.
// `names[id]` names a class when present, else its id is used.
Metrics ComputeMetrics(const std::vector<PredictionRecord>& predictions,
                       const std::map<int, LabelCount>& labels,
                       const std::vector<std::string>& names);

}  // namespace cvdeploy::eval
