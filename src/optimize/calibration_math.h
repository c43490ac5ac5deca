// SPDX-License-Identifier: Apache-2.0
// The arithmetic of calibration, kept apart from the model runs so the tests can check it
// on synthetic data: the streaming histogram that collects a tensor's values, and the
// percentile and entropy (KL divergence) searches that turn a histogram into a clipping
// interval. Public entry points are in calibration.h; this header is internal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "optimize/calibration.h"

namespace cvdeploy::optimize::calib {

// Smallest exponent of the histogram bin width 2^e (all-zero tensors get this width).
inline constexpr int kMinBinExponent = -100;
// Grid indices stay within this in magnitude, so that every bin edge k * 2^e is a float.
inline constexpr int64_t kMaxGridIndex = int64_t{1} << 22;
// Values beyond this magnitude (2^100, about 1.3e30) are refused like infinities.
inline constexpr float kMaxMagnitude = 0x1p100f;

// Exponent e of the smallest bin width 2^e such that the grid of bins [k 2^e, (k+1) 2^e)
// (k integer, anchored at 0) spans [lo, hi] in at most `max_bins` bins and every index k of
// a value in [lo, hi] stays below kMaxGridIndex in magnitude. Depends only on lo and hi,
// and never decreases when [lo, hi] grows.
int GridExponent(float lo, float hi, int max_bins);

// A histogram that accepts values in chunks (one image's activation at a time) without
// knowing the final range in advance. Its bins lie on the 0-anchored power-of-two grid of
// GridExponent(min, max): when a chunk widens the range beyond what the current width can
// hold in `max_bins` bins, the width doubles and pairs of bins merge, which is exact because
// the coarser grid's edges are edges of the finer one. So the final histogram is the one that
// binning all values at once on the final grid would give: it depends on the multiset of
// values only, never on the order of the chunks. It covers [min, max] with between about
// max_bins/2 and max_bins bins (the power-of-two width overshoots by less than 2x).
class StreamingHistogram {
 public:
  explicit StreamingHistogram(int max_bins);
  // Adds n values. Returns false when one of them is NaN or beyond kMaxMagnitude (infinite,
  // or so large that the histogram edges would overflow float); the values before the block
  // of 2048 holding it may have been added, so a caller discards the histogram then.
  bool Add(const float* values, size_t n);
  bool Empty() const { return bins_.empty(); }
  // min, max, the histogram trimmed to the bins between them, and its edges.
  TensorStats Stats() const;

 private:
  void Regrid(float new_min, float new_max);

  int max_bins_;
  float min_ = 0, max_ = 0;
  int exponent_ = kMinBinExponent;  // bin width 2^exponent_
  int64_t first_ = 0;               // grid index of bins_[0] (= floor(min_ / width))
  std::vector<uint64_t> bins_;      // grid indices first_ .. floor(max_ / width)
  std::vector<uint32_t> counts_;    // Add's scratch: four interleaved partial histograms
};

// Checks that `stats` holds data and is consistent (finite, min <= max, histogram covering
// [min, max] with a positive total). Returns "" or the reason, for messages.
std::string CheckStats(const TensorStats& stats);

// The q-quantile (q in [0, 1]) of the histogram, interpolating linearly inside the bin
// that holds it and clamped to [min, max].
double HistogramQuantile(const TensorStats& stats, double q);

// Mass of the values on one side of 0, as a histogram of |x| on bins [j w, (j+1) w) from 0 to
// the side's extent (max or -min; at least one bin). `positive` selects x >= 0, else x < 0.
// w is the width of the stats' bins times the smallest integer factor that keeps the side
// within max(stats bins, kMaxSideBins) bins (a range far from 0, e.g. [100, 101], would
// otherwise need ~100 times more); it is returned in `width`. A source bin straddling a
// target edge is split in proportion to the overlap (never the case for the 0-anchored
// grid of StreamingHistogram, where the side is exact).
inline constexpr size_t kMaxSideBins = 2048;
std::vector<double> SideHistogram(const TensorStats& stats, bool positive, double* width);

// KL divergence, as in TensorRT's entropy calibrator, between the reference distribution P
// of clipping `hist` (bins of |x| from 0; n = hist.size()) at `kept` bins (the mass of the
// bins beyond is added to the last kept bin) and the candidate Q that quantizing the kept
// bins to `levels` levels gives: level g holds bins [g kept / levels, (g+1) kept / levels)
// (integer division), and its mass is spread evenly over those of its bins where P is
// nonzero (the clipped mass is missing from Q). Smoothing: each distribution is normalized,
// mixed with kSmoothing of the uniform distribution over the n bins ((1 - s) p + s / n on
// every kept bin) and renormalized, so P > 0 where Q = 0 costs much but not infinitely;
// bins where P is 0 then carry the same mass in both and add nothing. Infinity when every
// value lies beyond `kept`. Requires levels <= kept <= n. Direct O(n) evaluation.
inline constexpr double kSmoothing = 1e-4;
double ClippingDivergence(const std::vector<double>& hist, size_t kept, int levels);

// ClippingDivergence(hist, kept, levels) for every kept in [levels, hist.size()] (index
// kept - levels), in O(levels) per candidate from prefix sums instead of O(n): the smoothed
// P of every bin but the last kept one does not depend on `kept`, so its sums over a level
// come from running totals. Equal to the direct evaluation up to rounding.
std::vector<double> ClippingDivergences(const std::vector<double>& hist, int levels);

// The clipping threshold of one side: `kept` * width for the kept count in [levels, used]
// (used: the histogram without its trailing empty bins, which is also the n of the
// smoothing) that keeps at least the bin holding the side's median (clipping at most half of
// the values) with the smallest divergence (the first on ties), clamped to `extent`. When
// `used` is no more than `levels` (quantization at least as fine as the histogram), the
// extent itself.
double EntropyThreshold(const std::vector<double>& hist, double width, double extent, int levels);

// Levels of uint8 (256) that one side of the entropy search works with; a side with fewer
// is left unclipped (see ComputeRange in calibration.cpp).
inline constexpr int kUint8Levels = 256;
inline constexpr int kMinSearchLevels = 16;

// Unwidened clipping intervals of the three methods.
std::pair<double, double> PercentileInterval(const TensorStats& stats, double percentile);
std::pair<double, double> EntropyInterval(const TensorStats& stats);

}  // namespace cvdeploy::optimize::calib
