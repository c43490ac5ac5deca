// SPDX-License-Identifier: Apache-2.0
// Golden-set comparison: raw-output summaries and the matching of one input's recorded
// detections with a new run's (tolerances: docs/security.md "Golden-set integrity gate").
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "cvdeploy/error.h"
#include "eval/compare.h"
#include "eval/golden_internal.h"

namespace cvdeploy {

GoldenTolerance DefaultGoldenTolerance() {
  // About 10x the largest difference measured under a perturbation of the engine input far
  // larger than kernel rounding (docs/security.md "Golden-set integrity gate"); 1 vs 2
  // threads measured bit-identical.
  GoldenTolerance t;
  t.min_iou = 0.85;         // measured min 0.989 (1 - IoU: 0.011)
  t.max_conf_diff = 0.02;   // measured max 0.0018
  t.edge_conf = 0.02;       // a detection crosses the threshold only by moving this much
  t.max_raw_error = 0.008;  // measured max 0.00077
  t.max_kpt_error = 0.005;  // measured max 0.00013
  return t;
}

namespace golden {
namespace {

std::string Fmt(const char* format, double a, double b = 0, double c = 0) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), format, a, b, c);
  return buf;
}

std::string Describe(const Detection& d) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), " %.3f at [%.0f, %.0f, %.0f, %.0f]", d.confidence, d.box.x1,
                d.box.y1, d.box.x2, d.box.y2);
  return (d.class_name.empty() ? "class " + std::to_string(d.class_id) : d.class_name) + buf;
}

// Mean keypoint distance over the box diagonal of the recorded detection.
double KeypointError(const Detection& a, const Detection& b) {
  if (a.keypoints.size() != b.keypoints.size()) return INFINITY;
  if (a.keypoints.empty()) return 0;
  double sum = 0;
  for (size_t i = 0; i < a.keypoints.size(); ++i) {
    sum += std::hypot(a.keypoints[i].x - b.keypoints[i].x, a.keypoints[i].y - b.keypoints[i].y);
  }
  const double diag = std::max(1.0, static_cast<double>(std::hypot(a.box.Width(), a.box.Height())));
  return sum / static_cast<double>(a.keypoints.size()) / diag;
}

void CompareClassify(const Result& recorded, const Result& got, const GoldenTolerance& t,
                     CompareStats* stats, std::vector<std::string>* reasons) {
  auto top1 = [](const Result& r) -> const ClassScore* {
    if (r.detections.empty() || r.detections[0].top5.empty()) return nullptr;
    return &r.detections[0].top5[0];
  };
  const ClassScore* a = top1(recorded);
  const ClassScore* b = top1(got);
  if (!a && !b) return;
  ++stats->expected;
  if (!a || !b) {
    reasons->push_back(a ? "no top-1 class now" : "a top-1 class now but none recorded");
    return;
  }
  if (a->class_id != b->class_id) {
    reasons->push_back("top-1 class " + std::to_string(b->class_id) + " (" + b->class_name +
                       "), recorded " + std::to_string(a->class_id) + " (" + a->class_name + ")");
    return;
  }
  if (std::fabs(a->score - b->score) > t.max_conf_diff) {
    reasons->push_back(Fmt("top-1 score %.4f, recorded %.4f (tolerance %.4f)", b->score, a->score,
                           t.max_conf_diff));
    return;
  }
  ++stats->matched;
}

bool NearThreshold(const Detection& d, const PredictOptions& predict, const GoldenTolerance& t) {
  return std::fabs(d.confidence - predict.conf) <= t.edge_conf;
}

}  // namespace

GoldenOutputSummary SummarizeOutput(const std::string& name, const TensorView& tensor) {
  if (tensor.dtype() != DataType::kFloat32 || tensor.elements() == 0) {
    throw BadInput("output '" + name + "': golden summaries need a non-empty float32 output");
  }
  GoldenOutputSummary s;
  s.name = name;
  s.shape = tensor.shape();
  size_t n = tensor.elements();
  if (!s.shape.empty() && s.shape[0] > 1) {  // padding rows of a fixed batch axis: row 0 only
    n /= static_cast<size_t>(s.shape[0]);
    s.shape[0] = 1;
  }
  const float* x = tensor.Data<float>();
  double sum = 0, sum_abs = 0, sum_sq = 0;
  for (size_t i = 0; i < n; ++i) {
    sum += x[i];
    sum_abs += std::fabs(x[i]);
    sum_sq += static_cast<double>(x[i]) * x[i];
  }
  s.mean = sum / static_cast<double>(n);
  s.mean_abs = sum_abs / static_cast<double>(n);
  s.rms = std::sqrt(sum_sq / static_cast<double>(n));
  const size_t k = std::min(kSamples, n);
  for (size_t i = 0; i < k; ++i) s.samples.push_back(x[i * n / k]);
  return s;
}

void CompareResults(const Result& recorded, const Result& got, const PredictOptions& predict,
                    const GoldenTolerance& t, CompareStats* stats,
                    std::vector<std::string>* reasons) {
  if (recorded.width != got.width || recorded.height != got.height) {
    reasons->push_back("image size " + std::to_string(got.width) + "x" +
                       std::to_string(got.height) + ", recorded " + std::to_string(recorded.width) +
                       "x" + std::to_string(recorded.height));
    return;
  }
  if (recorded.task == Task::kClassify || got.task == Task::kClassify) {
    if (recorded.task != got.task) {
      reasons->push_back("task " + std::string(TaskName(got.task)) + ", recorded " +
                         std::string(TaskName(recorded.task)));
      return;
    }
    return CompareClassify(recorded, got, t, stats, reasons);
  }
  const auto& a = recorded.detections;
  const auto& b = got.detections;
  stats->expected += a.size();
  // Matching by the axis-aligned boxes (for OBB their bounds): enough to tell a swapped model.
  std::vector<Detection> a_boxes(a.size()), b_boxes(b.size());
  for (size_t i = 0; i < a.size(); ++i)
    a_boxes[i].class_id = a[i].class_id, a_boxes[i].box = a[i].box;
  for (size_t i = 0; i < b.size(); ++i)
    b_boxes[i].class_id = b[i].class_id, b_boxes[i].box = b[i].box;
  const eval::DetectionMatching m =
      eval::MatchDetections(a_boxes, b_boxes, static_cast<float>(t.min_iou));
  for (const eval::MatchedPair& p : m.pairs) {
    const Detection& da = a[p.a];
    const Detection& db = b[p.b];
    const double dc = std::fabs(da.confidence - db.confidence);
    const double ke = KeypointError(da, db);
    if (dc > t.max_conf_diff) {
      reasons->push_back(
          "confidence of " + Describe(da) +
          Fmt(" is now %.4f (difference %.4f > %.4f)", db.confidence, dc, t.max_conf_diff));
    } else if (ke > t.max_kpt_error) {
      reasons->push_back("keypoints of " + Describe(da) +
                         Fmt(" moved %.4f of the box diagonal (> %.4f)", ke, t.max_kpt_error));
    } else {
      ++stats->matched;
    }
  }
  for (int i : m.a_unmatched) {
    if (NearThreshold(a[i], predict, t)) {
      continue;  // at the threshold: may legitimately drop out
    }
    reasons->push_back("recorded " + Describe(a[i]) +
                       " not found (IoU >= " + Fmt("%.2f", t.min_iou) + ", same class)");
  }
  for (int j : m.b_unmatched) {
    if (NearThreshold(b[j], predict, t)) continue;
    reasons->push_back("new detection " + Describe(b[j]) + " not in the record");
  }
}

void CompareOutputs(const std::vector<GoldenOutputSummary>& recorded,
                    const std::vector<GoldenOutputSummary>& got, const GoldenTolerance& t,
                    std::vector<std::string>* reasons) {
  constexpr double kEps = 1e-6;
  for (const GoldenOutputSummary& a : recorded) {
    const auto it = std::find_if(got.begin(), got.end(),
                                 [&](const GoldenOutputSummary& s) { return s.name == a.name; });
    if (it == got.end()) {
      reasons->push_back("output '" + a.name + "' is missing");
      continue;
    }
    const GoldenOutputSummary& b = *it;
    if (a.shape != b.shape || a.samples.size() != b.samples.size()) {
      reasons->push_back("output '" + a.name + "' has shape " + ShapeString(b.shape) +
                         ", recorded " + ShapeString(a.shape));
      continue;
    }
    double diff = 0, norm = 0;
    for (size_t i = 0; i < a.samples.size(); ++i) {
      const double d = static_cast<double>(b.samples[i]) - a.samples[i];
      diff += d * d;
      norm += static_cast<double>(a.samples[i]) * a.samples[i];
    }
    // NaN compares false: written so that a NaN is a failure.
    const double rel = std::sqrt(diff) / (std::sqrt(norm) + kEps);
    const double mean_rel = std::fabs(b.mean - a.mean) / (a.mean_abs + kEps);
    const double rms_rel = std::fabs(b.rms - a.rms) / (a.rms + kEps);
    if (!(rel <= t.max_raw_error)) {
      reasons->push_back("output '" + a.name + "': samples differ by " +
                         Fmt("%.3g relative (> %.3g)", rel, t.max_raw_error));
    } else if (!(mean_rel <= t.max_raw_error) || !(rms_rel <= t.max_raw_error)) {
      reasons->push_back(
          "output '" + a.name + "': " +
          Fmt("mean %.6g (recorded %.6g), rms differs by %.3g relative", b.mean, a.mean, rms_rel));
    }
  }
  for (const GoldenOutputSummary& b : got) {
    const bool known = std::any_of(recorded.begin(), recorded.end(),
                                   [&](const GoldenOutputSummary& s) { return s.name == b.name; });
    if (!known) reasons->push_back("output '" + b.name + "' is not in the record");
  }
}

}  // namespace golden
}  // namespace cvdeploy
