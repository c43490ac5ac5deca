// SPDX-License-Identifier: Apache-2.0
// Fixed-edge binning, histograms, the smoothed PSI and the sliding window of cvdeploy/drift.h.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>

#include "cvdeploy/drift.h"
#include "cvdeploy/error.h"

namespace cvdeploy::drift {
namespace {

template <size_t N>
constexpr FeatureSpec Make(std::string_view name, const double (&edges)[N], bool per_box) {
  return FeatureSpec{name, edges, static_cast<int>(N), per_box};
}

const FeatureSpec kSpecs[kFeatureCount] = {
    Make("size", kSizeEdges, false),
    Make("aspect_ratio", kAspectRatioEdges, false),
    Make("brightness", kBrightnessEdges, false),
    Make("contrast", kContrastEdges, false),
    Make("saturation", kSaturationEdges, false),
    Make("sharpness", kSharpnessEdges, false),
    Make("colourfulness", kColourfulnessEdges, false),
    Make("jpeg_quality", kJpegQualityEdges, false),
    Make("detections", kDetectionsEdges, false),
    FeatureSpec{"class", nullptr, 0, true},
    Make("confidence", kConfidenceEdges, true),
    Make("box_area", kBoxAreaEdges, true),
    Make("box_x", kBoxCentreEdges, true),
    Make("box_y", kBoxCentreEdges, true),
};

void CheckClasses(int classes) {
  if (classes < 1 || classes > kMaxClasses) {
    throw InvalidArgument("drift: class count " + std::to_string(classes) + " outside [1, " +
                          std::to_string(kMaxClasses) + "]");
  }
}

}  // namespace

const FeatureSpec& Spec(int feature) { return kSpecs[feature]; }

int BinCount(int feature, int classes) {
  return feature == kClass ? classes + 1 : kSpecs[feature].edge_count + 1;
}

int BinOf(int feature, double value, int classes) {
  if (feature == kClass) {
    if (!(value >= 0)) return classes;  // negative or NaN: "other"
    return value >= classes ? classes : static_cast<int>(value);
  }
  if (std::isnan(value)) return 0;
  const FeatureSpec& s = kSpecs[feature];
  return static_cast<int>(std::upper_bound(s.edges, s.edges + s.edge_count, value) - s.edges);
}

Histograms::Histograms(int classes_in) : classes(classes_in) {
  CheckClasses(classes);
  for (int f = 0; f < kFeatureCount; ++f) counts[f].assign(BinCount(f, classes), 0);
}

void Histograms::Add(const Observation& o) {
  for (int f = 0; f < kImageFeatureCount; ++f) ++counts[f][BinOf(f, o.image.values[f], classes)];
  ++counts[kDetections][BinOf(kDetections, o.detections, classes)];
  const size_t n = std::min(o.boxes.size(), size_t{kMaxBoxesPerObservation});
  for (size_t i = 0; i < n; ++i) {
    const BoxFeatures& b = o.boxes[i];
    ++counts[kClass][BinOf(kClass, b.class_id, classes)];
    ++counts[kConfidence][BinOf(kConfidence, b.confidence, classes)];
    ++counts[kBoxArea][BinOf(kBoxArea, b.area, classes)];
    ++counts[kBoxX][BinOf(kBoxX, b.cx, classes)];
    ++counts[kBoxY][BinOf(kBoxY, b.cy, classes)];
  }
  ++images;
  boxes += n;
}

double Psi(const std::vector<uint64_t>& baseline, const std::vector<uint64_t>& window,
           const PsiOptions& options, double values_per_image) {
  if (baseline.empty() || baseline.size() != window.size()) {
    throw InvalidArgument("PSI: histograms of " + std::to_string(baseline.size()) + " and " +
                          std::to_string(window.size()) + " bins");
  }
  double m = 0, n = 0;
  for (uint64_t c : baseline) m += static_cast<double>(c);
  for (uint64_t c : window) n += static_cast<double>(c);
  if (n == 0) return 0;
  // Both sides mixed with the uniform distribution with the same weight lambda (additive
  // smoothing of `a` per bin on the baseline, in proportion on the window), then the window is
  // shrunk towards the baseline by the prior.
  const double bins = static_cast<double>(baseline.size());
  const double a = options.baseline_pseudocount;
  const double lambda = m + bins * a > 0 ? bins * a / (m + bins * a) : 1;
  const double prior = options.window_prior * values_per_image;
  double psi = 0;
  for (size_t i = 0; i < baseline.size(); ++i) {
    const double b = m > 0 ? static_cast<double>(baseline[i]) / m : 0;
    double q = (1 - lambda) * b + lambda / bins;
    const double c = (1 - lambda) * static_cast<double>(window[i]) / n + lambda / bins;
    double p = (n * c + prior * q) / (n + prior);
    q = std::max(q, options.epsilon);
    p = std::max(p, options.epsilon);
    psi += (p - q) * std::log(p / q);
  }
  return psi;
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kOk:
      return "ok";
    case Level::kWarn:
      return "warn";
    case Level::kAlert:
      return "alert";
  }
  return "ok";
}

Level LevelOf(double psi, const Thresholds& t) {
  if (psi >= t.alert) return Level::kAlert;
  if (psi >= t.warn) return Level::kWarn;
  return Level::kOk;
}

std::vector<int> TopClasses(const std::vector<uint64_t>& class_counts, int k) {
  std::vector<int> ids;
  for (size_t i = 0; i + 1 < class_counts.size(); ++i) {
    if (class_counts[i] > 0) ids.push_back(static_cast<int>(i));
  }
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int a, int b) { return class_counts[a] > class_counts[b]; });
  if (ids.size() > static_cast<size_t>(std::max(k, 0))) ids.resize(std::max(k, 0));
  return ids;
}

std::vector<uint64_t> CollapseClasses(const std::vector<uint64_t>& class_counts,
                                      const std::vector<int>& top) {
  std::vector<uint64_t> out;
  uint64_t total = 0, kept = 0;
  for (uint64_t c : class_counts) total += c;
  for (int id : top) {
    const uint64_t c =
        id >= 0 && static_cast<size_t>(id) < class_counts.size() ? class_counts[id] : 0;
    out.push_back(c);
    kept += c;
  }
  out.push_back(total - kept);
  return out;
}

DriftReport Compare(const Baseline& baseline, const Histograms& window, const Thresholds& t,
                    const PsiOptions& options) {
  const Histograms& b = baseline.histograms;
  if (b.classes != window.classes) {
    throw InvalidArgument("drift: the baseline has " + std::to_string(b.classes) +
                          " classes, the model " + std::to_string(window.classes));
  }
  DriftReport report;
  report.images = window.images;
  // Per-box features: the prior is worth window_prior images, i.e. that many images' boxes.
  const double boxes_per_image =
      b.images > 0 ? std::max(1.0, static_cast<double>(b.boxes) / b.images) : 1.0;
  for (int f = 0; f < kFeatureCount; ++f) {
    FeatureDrift d;
    d.name = kSpecs[f].name;
    const double scale = kSpecs[f].per_box ? boxes_per_image : 1.0;
    if (f == kClass) {
      const std::vector<int> top = TopClasses(b.counts[f], kClassCompareBins);
      d.psi = Psi(CollapseClasses(b.counts[f], top), CollapseClasses(window.counts[f], top),
                  options, scale);
    } else {
      d.psi = Psi(b.counts[f], window.counts[f], options, scale);
    }
    d.level = LevelOf(d.psi, t);
    report.alert = report.alert || d.level == Level::kAlert;
    report.features.push_back(d);
  }
  return report;
}

DriftWindow::DriftWindow(size_t capacity, int classes) : capacity_(capacity), counts_(classes) {
  if (capacity == 0) throw InvalidArgument("drift window: capacity must be at least 1");
}

void DriftWindow::Count(const Entry& e, int sign) {
  const auto step = [sign](uint64_t& c) { c = sign > 0 ? c + 1 : c - 1; };
  for (int f = 0; f <= kImageFeatureCount; ++f) step(counts_.counts[f][e.image_bins[f]]);
  for (const auto& b : e.box_bins) {
    step(counts_.counts[kClass][b[0]]);
    step(counts_.counts[kConfidence][b[1]]);
    step(counts_.counts[kBoxArea][b[2]]);
    step(counts_.counts[kBoxX][b[3]]);
    step(counts_.counts[kBoxY][b[4]]);
  }
  counts_.images = sign > 0 ? counts_.images + 1 : counts_.images - 1;
  counts_.boxes = sign > 0 ? counts_.boxes + e.box_bins.size() : counts_.boxes - e.box_bins.size();
}

void DriftWindow::Add(const Observation& o) {
  const int classes = counts_.classes;
  Entry e;
  for (int f = 0; f < kImageFeatureCount; ++f) {
    e.image_bins[f] = static_cast<uint8_t>(BinOf(f, o.image.values[f], classes));
  }
  e.image_bins[kDetections] = static_cast<uint8_t>(BinOf(kDetections, o.detections, classes));
  const size_t n = std::min(o.boxes.size(), size_t{kMaxBoxesPerObservation});
  e.box_bins.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const BoxFeatures& b = o.boxes[i];
    e.box_bins.push_back({static_cast<uint16_t>(BinOf(kClass, b.class_id, classes)),
                          static_cast<uint16_t>(BinOf(kConfidence, b.confidence, classes)),
                          static_cast<uint16_t>(BinOf(kBoxArea, b.area, classes)),
                          static_cast<uint16_t>(BinOf(kBoxX, b.cx, classes)),
                          static_cast<uint16_t>(BinOf(kBoxY, b.cy, classes))});
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (ring_.size() == capacity_) {
    Count(ring_.front(), -1);
    ring_.pop_front();
  }
  Count(e, +1);
  ring_.push_back(std::move(e));
}

Histograms DriftWindow::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

size_t DriftWindow::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ring_.size();
}

}  // namespace cvdeploy::drift
