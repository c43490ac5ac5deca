// SPDX-License-Identifier: Apache-2.0
// Data-drift monitoring: per-image input features and per-prediction output features, binned
// with FIXED edges (the tables below: part of the baseline format, never computed from data),
// a baseline of their histograms (JSON, "format": 1), a bounded sliding window of recent
// observations, and the Population Stability Index (PSI) of each feature against the baseline.
//
// Used by `cvdeploy profile-data` / `cvdeploy drift` (offline) and by the server (a window per
// served model version, fed by the workers after inference). Contracts:
//  - Extraction functions are pure and thread-safe; they never throw on pixel data they accept
//    (8-bit, 1/3/4 channels) and throw Error(kInvalidArgument) for other images.
//  - Baseline parsing takes untrusted bytes: any malformed document is Error(kBadInput)
//    "WHAT: reason" (fuzzed: tests/fuzz/drift_baseline_fuzz.cpp).
//  - DriftWindow is thread-safe (one mutex); its memory is bounded by its capacity times
//    (about 40 bytes + 10 bytes per recorded box, at most kMaxBoxesPerObservation boxes).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core.hpp>

#include "cvdeploy/types.h"

namespace cvdeploy::drift {

inline constexpr int kBaselineFormat = 1;

// The features, in report order. The first eight are measured once per image, kDetections once
// per prediction, the last five once per detected box.
enum Feature : int {
  kSize,           // megapixels of the original image
  kAspectRatio,    // width / height of the original image
  kBrightness,     // mean of the gray image, 0..255
  kContrast,       // standard deviation of the gray image, 0..255
  kSaturation,     // mean HSV saturation, 0..255
  kSharpness,      // variance of the Laplacian of the gray image scaled to kAnalysisSide
  kColourfulness,  // Hasler & Suesstrunk (2003) M = sigma_rgyb + 0.3 mu_rgyb, 0..~180
  kJpegQuality,    // IJG-equivalent quality 1..100 from the luminance DQT; -1: not a JPEG
  kDetections,     // detections in the prediction
  kClass,          // class id of each box (bin = class id; ids >= classes: the last bin)
  kConfidence,     // confidence of each box
  kBoxArea,        // box area / image area of each box
  kBoxX,           // box centre x / image width
  kBoxY,           // box centre y / image height
  kFeatureCount
};
inline constexpr int kImageFeatureCount = 8;  // kSize .. kJpegQuality

// Pixel features are computed on a copy whose longer side is at most this (INTER_LINEAR: a
// constant ~0.1 ms whatever the source size), so that they are cheap and nearly the same
// whether the image was decoded at full or at reduced (DCT-scaled) resolution.
inline constexpr int kAnalysisSide = 256;
// Boxes recorded per observation (the most confident first); kDetections counts them all.
inline constexpr int kMaxBoxesPerObservation = 100;
// Largest class count a baseline may declare (class bins are stored as 16-bit indices).
inline constexpr int kMaxClasses = 65534;

// Bin edges. A value v falls in bin i = number of edges <= v, so bin 0 is (-inf, e[0]), bin i
// is [e[i-1], e[i]) and the last bin [e[n-1], +inf); NaN falls in bin 0. kClass has no edges:
// one bin per class id plus one for ids >= classes.
inline constexpr double kSizeEdges[] = {0.05, 0.1, 0.5, 2, 8};
inline constexpr double kAspectRatioEdges[] = {0.5, 0.8, 0.95, 1.05, 1.25, 2.0};
inline constexpr double kBrightnessEdges[] = {48, 96, 144, 192};
inline constexpr double kContrastEdges[] = {16, 32, 48, 64, 80};
inline constexpr double kSaturationEdges[] = {16, 32, 64, 96, 128, 192};
inline constexpr double kSharpnessEdges[] = {25, 100, 400, 1600, 6400};
inline constexpr double kColourfulnessEdges[] = {16, 32, 64, 100};
inline constexpr double kJpegQualityEdges[] = {0, 50, 70, 80, 90, 96};
inline constexpr double kDetectionsEdges[] = {1, 3, 6, 11, 25};
inline constexpr double kConfidenceEdges[] = {0.4, 0.6, 0.8};
inline constexpr double kBoxAreaEdges[] = {0.003, 0.03, 0.3};
inline constexpr double kBoxCentreEdges[] = {0.2, 0.4, 0.6, 0.8};
// Few, wide bins on purpose: the PSI of two samples of one distribution grows with the number
// of bins (about (bins - 1)(1/n + 1/m)), and a drift check must stay quiet on a few dozen
// images of the baseline's own kind (docs/operations.md "Data drift").
//
// kClass is stored per class id, but compared (Compare) over kClassCompareBins bins: the
// baseline's kClassCompareBins most frequent classes (ties: the lower id) and one bin for all
// others; 80 sparse per-class bins would read as drift by sampling noise alone.
inline constexpr int kClassCompareBins = 5;

struct FeatureSpec {
  std::string_view name;  // as in the baseline, the reports and the metric label
  const double* edges;    // nullptr for kClass
  int edge_count;
  bool per_box;  // one value per detected box (else one per image)
};
// The spec of `feature` (0 <= feature < kFeatureCount).
const FeatureSpec& Spec(int feature);
// Bins of `feature` for a model with `classes` classes (edge_count + 1; classes + 1 for kClass).
int BinCount(int feature, int classes);
// The bin of `value` (kClass: the class id) for `feature`.
int BinOf(int feature, double value, int classes);

// ---- Features ----
struct ImageFeatures {
  double values[kImageFeatureCount] = {};  // indexed by Feature kSize .. kJpegQuality
};
struct BoxFeatures {
  int class_id = 0;
  double confidence = 0, area = 0, cx = 0, cy = 0;
};
struct Observation {
  ImageFeatures image;
  int detections = 0;
  std::vector<BoxFeatures> boxes;  // at most kMaxBoxesPerObservation
};

// Input features of one image. `image` is the decoded image (8-bit gray, BGR or BGRA), at full
// or reduced resolution; `original` its full size (from the header: size and aspect ratio);
// `encoded` / `encoded_size` the encoded bytes (for the JPEG quality; may be null).
ImageFeatures ExtractImageFeatures(const cv::Mat& image, cv::Size original, const uint8_t* encoded,
                                   size_t encoded_size);
// IJG-equivalent quality (1..100) of a JPEG from its first quantization table (the luminance
// one), compared with the IJG standard table scaled as libjpeg's jpeg_quality_scaling does;
// -1 when the bytes are not a JPEG or hold no 8x8 table before the first scan. Safe on any
// bytes (bounded reads), never throws.
int EstimateJpegQuality(const uint8_t* data, size_t size);
// Output features of one prediction on an image of the result's size.
void AddPredictionFeatures(const Result& result, Observation* observation);
// Both: the observation the server and the CLI record per image.
Observation Observe(const cv::Mat& image, cv::Size original, const uint8_t* encoded,
                    size_t encoded_size, const Result& result);

// ---- Histograms ----
struct Histograms {
  int classes = 1;
  std::array<std::vector<uint64_t>, kFeatureCount> counts;
  uint64_t images = 0;  // observations added
  uint64_t boxes = 0;   // boxes added (each per-box feature has this total)

  explicit Histograms(int classes = 1);
  void Add(const Observation& observation);
};

// A baseline: the histograms of a representative image set, and where they came from.
struct Baseline {
  std::string model;  // file name of the model that profiled it (informational)
  float conf = 0.25f, iou = 0.7f;
  Histograms histograms;
};
// JSON (format 1): {"format": 1, "model", "conf", "iou", "classes", "images", "boxes",
// "features": {NAME: {"edges": [...], "counts": [...]}}}; edges are checked against the tables
// above on reading, so a baseline made with other edges is refused, not misread.
std::string BaselineToJson(const Baseline& baseline);
// Throws Error(kBadInput) "WHAT: reason" for anything malformed: not JSON, too deep, missing or
// unknown keys, another format, edges that differ from this build's, counts of the wrong
// length, negative or non-integer counts, totals that disagree with "images" / "boxes".
Baseline BaselineFromJson(std::string_view text, const std::string& what);
// Baselines larger than this are refused before they are read.
inline constexpr uint64_t kMaxBaselineBytes = 8 << 20;
Baseline ReadBaseline(const std::string& path);

// ---- PSI ----
// PSI = sum_i (p_i - q_i) ln(p_i / q_i), q the baseline's and p the window's bin fractions.
// Small samples read as drift by sampling noise alone (the expected PSI of two samples of one
// distribution is about (bins - 1)(1/n + 1/m)), so both sides are smoothed first:
//  - baseline: additive smoothing, q_i = (b_i + baseline_pseudocount) / (m + bins * pseudocount);
//  - window: shrunk towards the baseline by a prior worth `window_prior` images,
//    p_i = (c_i + prior' q_i) / (n + prior'), prior' = window_prior x (the feature's values
//    per image in the baseline), so a full window of N >> window_prior is barely changed;
//  - then every fraction is at least `epsilon` (the documented floor for empty bins).
// With pseudocount 0, prior 0 this is the textbook PSI with an epsilon floor.
struct PsiOptions {
  double baseline_pseudocount = 0.5;
  double window_prior = 20;
  double epsilon = 1e-4;
};
// `baseline` and `window` are counts of the same bins; `values_per_image` scales the prior
// (1 for image features). Identical distributions give 0; an empty window gives 0.
// Throws Error(kInvalidArgument) when the sizes differ or are zero.
double Psi(const std::vector<uint64_t>& baseline, const std::vector<uint64_t>& window,
           const PsiOptions& options = {}, double values_per_image = 1);

enum class Level { kOk, kWarn, kAlert };
std::string_view LevelName(Level level);  // "ok", "warn", "alert"
struct Thresholds {
  double warn = 0.1;
  double alert = 0.25;
};
Level LevelOf(double psi, const Thresholds& thresholds);

struct FeatureDrift {
  std::string_view name;
  double psi = 0;
  Level level = Level::kOk;
};
struct DriftReport {
  std::vector<FeatureDrift> features;  // kFeatureCount entries, in Feature order
  uint64_t images = 0;                 // observations in the window
  bool alert = false;                  // some feature reached the alert threshold
};
// The kClass histogram of `class_counts` (classes + 1 bins) over the compared bins: the
// counts of `top` (class ids), then the rest. TopClasses: the `k` most frequent ids of a
// class histogram (ties: the lower id; the "other" bin never), fewer when it has fewer classes.
std::vector<int> TopClasses(const std::vector<uint64_t>& class_counts, int k);
std::vector<uint64_t> CollapseClasses(const std::vector<uint64_t>& class_counts,
                                      const std::vector<int>& top);
// PSI of every feature (kClass over the collapsed bins) and its level.
// Throws Error(kInvalidArgument) when the class counts differ.
DriftReport Compare(const Baseline& baseline, const Histograms& window,
                    const Thresholds& thresholds, const PsiOptions& options = {});

// The last `capacity` observations, as bin indices in a ring, with running counts (adding is
// O(boxes), a snapshot O(bins)). Thread-safe.
class DriftWindow {
 public:
  // Throws Error(kInvalidArgument) for capacity 0 or classes outside [1, kMaxClasses].
  DriftWindow(size_t capacity, int classes);
  void Add(const Observation& observation);
  Histograms Snapshot() const;
  size_t size() const;
  size_t capacity() const { return capacity_; }

 private:
  struct Entry {
    std::array<uint8_t, kImageFeatureCount + 1> image_bins{};  // + kDetections
    std::vector<std::array<uint16_t, 5>> box_bins;             // class, conf, area, x, y
  };
  void Count(const Entry& entry, int sign);

  const size_t capacity_;
  mutable std::mutex mu_;
  std::deque<Entry> ring_;
  Histograms counts_;
};

}  // namespace cvdeploy::drift
