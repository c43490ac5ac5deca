// SPDX-License-Identifier: Apache-2.0
#include "optimize/calibration_math.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace cvdeploy::optimize::calib {
namespace {

// floor() for values well inside the int64 range, without a libm call per element.
inline int64_t FloorIndex(double y) {
  const int64_t k = static_cast<int64_t>(y);
  return k - (y < static_cast<double>(k) ? 1 : 0);
}

uint64_t Total(const std::vector<uint64_t>& bins) {
  return std::accumulate(bins.begin(), bins.end(), uint64_t{0});
}

}  // namespace

int GridExponent(float lo, float hi, int max_bins) {
  max_bins = std::max(max_bins, 2);  // lo < 0 <= hi needs two bins whatever the width
  const double dlo = lo, dhi = hi;
  const double magnitude = std::max(std::fabs(dlo), std::fabs(dhi));
  int e = kMinBinExponent;
  // |x| < 2^(ilogb + 1) = 2^(e + 22): every index is below 2^22 in magnitude.
  if (magnitude > 0) e = std::max(e, std::ilogb(magnitude) - 21);
  // A width of 2^e holds the span in max_bins bins only if 2^e > span / max_bins: start at a
  // lower bound of that so the loop below runs a few times at most.
  const double span = dhi - dlo;
  if (span > 0) e = std::max(e, std::ilogb(span) - std::ilogb(static_cast<double>(max_bins)) - 1);
  for (;; ++e) {
    const double width = std::ldexp(1.0, e);
    if (FloorIndex(dhi / width) - FloorIndex(dlo / width) + 1 <= max_bins) return e;
  }
}

StreamingHistogram::StreamingHistogram(int max_bins) : max_bins_(std::max(max_bins, 2)) {}

namespace {

// Minimum, maximum and whether a NaN is among n > 0 values.
void Scan(const float* x, size_t n, float& lo, float& hi, bool& nan) {
  size_t i = 0;
  lo = x[0];
  hi = x[0];
  nan = false;
#if defined(__SSE2__)
  if (n >= 8) {
    __m128 lo0 = _mm_loadu_ps(x), lo1 = _mm_loadu_ps(x + 4);
    __m128 hi0 = lo0, hi1 = lo1;
    __m128 nan_mask = _mm_or_ps(_mm_cmpunord_ps(lo0, lo0), _mm_cmpunord_ps(lo1, lo1));
    for (i = 8; i + 8 <= n; i += 8) {
      const __m128 a = _mm_loadu_ps(x + i), b = _mm_loadu_ps(x + i + 4);
      lo0 = _mm_min_ps(lo0, a);
      lo1 = _mm_min_ps(lo1, b);
      hi0 = _mm_max_ps(hi0, a);
      hi1 = _mm_max_ps(hi1, b);
      nan_mask = _mm_or_ps(nan_mask, _mm_or_ps(_mm_cmpunord_ps(a, a), _mm_cmpunord_ps(b, b)));
    }
    float l[4], h[4];
    _mm_storeu_ps(l, _mm_min_ps(lo0, lo1));
    _mm_storeu_ps(h, _mm_max_ps(hi0, hi1));
    lo = std::min({l[0], l[1], l[2], l[3]});
    hi = std::max({h[0], h[1], h[2], h[3]});
    nan = _mm_movemask_ps(nan_mask) != 0;
  }
#endif
  for (; i < n; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
    nan = nan || x[i] != x[i];
  }
}

// index[i] = floor(x[i] * inverse_width) - first, for values known to lie in the grid
// [first, last]. x * 2^-e is exact in float (a power-of-two scale; the grid keeps the result
// below 2^23), so its floor is the value's exact grid index. Clamping to [first, last] only
// matters for a negative value so tiny that the scaled product underflows to -0 (its floor
// would be 0, not -1): it keeps such a value inside the histogram.
void GridIndices(const float* x, size_t n, float inverse_width, int32_t first, int32_t last,
                 int32_t* index) {
  const auto first_f = static_cast<float>(first), last_f = static_cast<float>(last);
  size_t i = 0;
#if defined(__SSE2__)
  const __m128 scale = _mm_set1_ps(inverse_width), lo = _mm_set1_ps(first_f),
               hi = _mm_set1_ps(last_f);
  const __m128i offset = _mm_set1_epi32(first);
  for (; i + 4 <= n; i += 4) {
    __m128 y = _mm_mul_ps(_mm_loadu_ps(x + i), scale);
    y = _mm_min_ps(_mm_max_ps(y, lo), hi);
    __m128i t = _mm_cvttps_epi32(y);
    // Truncation rounds negatives up: subtract 1 (add the all-ones mask) where t > y.
    t = _mm_add_epi32(t, _mm_castps_si128(_mm_cmpgt_ps(_mm_cvtepi32_ps(t), y)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(index + i), _mm_sub_epi32(t, offset));
  }
#endif
  for (; i < n; ++i) {
    const float y = std::min(std::max(x[i] * inverse_width, first_f), last_f);
    auto t = static_cast<int32_t>(y);
    t -= static_cast<float>(t) > y ? 1 : 0;
    index[i] = t - first;
  }
}

}  // namespace

bool StreamingHistogram::Add(const float* values, size_t n) {
  // One pass over blocks that stay in L1 cache: each block's range is checked (regridding
  // when it widens the range, exact as the class comment explains), then binned. Counting
  // into four interleaved partial histograms (counts_) keeps runs of equal values (common:
  // activations cluster) from serializing on one counter.
  constexpr size_t kBlock = 2048;
  int32_t index[kBlock];
  float inverse_width = 0;
  int32_t first = 0, last = 0;
  size_t pending = 0;  // values in counts_ not yet in bins_
  const auto flush = [&] {
    if (pending == 0) return;
    for (size_t j = 0; j < bins_.size(); ++j) {
      bins_[j] +=
          uint64_t{counts_[4 * j]} + counts_[4 * j + 1] + counts_[4 * j + 2] + counts_[4 * j + 3];
    }
    pending = 0;
  };
  const auto prepare = [&] {
    inverse_width = static_cast<float>(std::ldexp(1.0, -exponent_));
    first = static_cast<int32_t>(first_);
    last = static_cast<int32_t>(first_ + static_cast<int64_t>(bins_.size()) - 1);
    counts_.assign(4 * bins_.size(), 0);
  };
  if (!Empty()) prepare();
  for (size_t start = 0; start < n; start += kBlock) {
    const size_t m = std::min(kBlock, n - start);
    const float* x = values + start;
    float lo = 0, hi = 0;
    bool nan = false;
    Scan(x, m, lo, hi, nan);
    if (nan || !(lo >= -kMaxMagnitude && hi <= kMaxMagnitude)) {
      flush();
      return false;
    }
    if (Empty() || lo < min_ || hi > max_) {
      flush();
      if (Empty()) {
        Regrid(lo, hi);
      } else {
        Regrid(std::min(lo, min_), std::max(hi, max_));
      }
      prepare();
    }
    GridIndices(x, m, inverse_width, first, last, index);
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
      ++counts_[4 * static_cast<size_t>(index[i])];
      ++counts_[4 * static_cast<size_t>(index[i + 1]) + 1];
      ++counts_[4 * static_cast<size_t>(index[i + 2]) + 2];
      ++counts_[4 * static_cast<size_t>(index[i + 3]) + 3];
    }
    for (; i < m; ++i) ++counts_[4 * static_cast<size_t>(index[i])];
    pending += m;
    if (pending > (size_t{1} << 30)) {  // far from overflowing a 32-bit partial count
      flush();
      prepare();
    }
  }
  flush();
  return true;
}

void StreamingHistogram::Regrid(float new_min, float new_max) {
  const int exponent = GridExponent(new_min, new_max, max_bins_);
  const double width = std::ldexp(1.0, exponent);
  const int64_t first = FloorIndex(new_min / width);
  const int64_t last = FloorIndex(new_max / width);
  std::vector<uint64_t> bins(static_cast<size_t>(last - first + 1), 0);
  if (!bins_.empty()) {
    // The exponent never decreases as the range grows; doubling the width 2^shift times maps
    // fine index k to coarse index floor(k / 2^shift), an arithmetic shift.
    const int shift = exponent - exponent_;
    for (size_t j = 0; j < bins_.size(); ++j) {
      if (bins_[j] == 0) continue;
      const int64_t k = (first_ + static_cast<int64_t>(j)) >> shift;
      bins[static_cast<size_t>(k - first)] += bins_[j];
    }
  }
  bins_ = std::move(bins);
  exponent_ = exponent;
  first_ = first;
  min_ = new_min;
  max_ = new_max;
}

TensorStats StreamingHistogram::Stats() const {
  TensorStats stats;
  if (Empty()) return stats;
  stats.min = min_;
  stats.max = max_;
  // Indices are at most 2^22 in magnitude: both edges are exact floats.
  stats.hist_min = static_cast<float>(std::ldexp(static_cast<double>(first_), exponent_));
  stats.hist_max = static_cast<float>(
      std::ldexp(static_cast<double>(first_ + static_cast<int64_t>(bins_.size())), exponent_));
  stats.bins = bins_;
  return stats;
}

std::string CheckStats(const TensorStats& stats) {
  if (stats.bins.empty()) return "no histogram bins (no data collected)";
  if (!std::isfinite(stats.min) || !std::isfinite(stats.max) || !std::isfinite(stats.hist_min) ||
      !std::isfinite(stats.hist_max)) {
    return "non-finite min, max or histogram edge";
  }
  if (stats.min > stats.max) return "min is greater than max";
  if (!(stats.hist_min <= stats.min && stats.max <= stats.hist_max &&
        stats.hist_min < stats.hist_max)) {
    return "histogram range does not cover [min, max]";
  }
  if (Total(stats.bins) == 0) return "histogram holds no values";
  return "";
}

double HistogramQuantile(const TensorStats& stats, double q) {
  const uint64_t total = Total(stats.bins);
  const double target = q * static_cast<double>(total);
  const double width = (static_cast<double>(stats.hist_max) - stats.hist_min) /
                       static_cast<double>(stats.bins.size());
  double cumulative = 0;
  for (size_t j = 0; j < stats.bins.size(); ++j) {
    const double count = static_cast<double>(stats.bins[j]);
    if (count > 0 && cumulative + count >= target) {
      const double fraction = std::clamp((target - cumulative) / count, 0.0, 1.0);
      const double value = stats.hist_min + (static_cast<double>(j) + fraction) * width;
      return std::clamp(value, static_cast<double>(stats.min), static_cast<double>(stats.max));
    }
    cumulative += count;
  }
  return stats.max;
}

std::vector<double> SideHistogram(const TensorStats& stats, bool positive, double* width) {
  const size_t n = stats.bins.size();
  const double source_width =
      (static_cast<double>(stats.hist_max) - stats.hist_min) / static_cast<double>(n);
  const double extent = positive ? std::max(0.0, static_cast<double>(stats.max))
                                 : std::max(0.0, -static_cast<double>(stats.min));
  const double fine_bins = std::max(1.0, std::ceil(extent / source_width));
  const double limit = static_cast<double>(std::max(n, kMaxSideBins));
  const double factor = std::ceil(fine_bins / limit);
  const double w = source_width * factor;
  *width = w;
  const size_t size = std::max<size_t>(1, static_cast<size_t>(std::ceil(extent / w)));
  std::vector<double> side(size, 0.0);
  for (size_t j = 0; j < n; ++j) {
    if (stats.bins[j] == 0) continue;
    const double a = stats.hist_min + static_cast<double>(j) * source_width;
    const double b = a + source_width;
    // The part of [a, b) on this side, as an interval of |x|.
    const double lo = positive ? std::max(a, 0.0) : std::max(-b, 0.0);
    const double hi = positive ? b : -a;
    if (hi <= lo) continue;
    const double density = static_cast<double>(stats.bins[j]) / source_width;
    for (auto t = static_cast<size_t>(lo / w);; ++t) {
      const double edge_lo = static_cast<double>(t) * w;
      const double edge_hi = edge_lo + w;
      const double overlap = std::min(hi, edge_hi) - std::max(lo, edge_lo);
      if (overlap > 0) side[std::min(t, size - 1)] += density * overlap;
      if (edge_hi >= hi || t + 1 >= size) {
        // Mass past the last bin (the source bin that holds the extent reaches beyond it)
        // belongs to the last bin.
        const double rest = hi - std::max(lo, edge_hi);
        if (rest > 0 && t + 1 >= size) side[size - 1] += density * rest;
        break;
      }
    }
  }
  return side;
}

double ClippingDivergence(const std::vector<double>& hist, size_t kept, int levels) {
  const size_t n = hist.size();
  double outliers = 0;
  for (size_t j = kept; j < n; ++j) outliers += hist[j];
  double kept_mass = 0;
  for (size_t j = 0; j < kept; ++j) kept_mass += hist[j];
  const double p_total = kept_mass + outliers;
  if (p_total <= 0) return 0;
  if (kept_mass <= 0) return std::numeric_limits<double>::infinity();
  const auto p_at = [&](size_t j) { return hist[j] + (j + 1 == kept ? outliers : 0.0); };
  const double uniform = kSmoothing / static_cast<double>(n);
  const double keep = 1.0 - kSmoothing;
  // Both smoothed distributions sum to z over the kept bins before renormalization.
  const double z = keep + uniform * static_cast<double>(kept);
  double divergence = 0;
  const auto level_count = static_cast<size_t>(levels);
  for (size_t g = 0; g < level_count; ++g) {
    const size_t begin = g * kept / level_count, end = (g + 1) * kept / level_count;
    double mass = 0;
    size_t nonzero = 0;
    for (size_t j = begin; j < end; ++j) {
      mass += hist[j];
      nonzero += p_at(j) > 0 ? 1 : 0;
    }
    if (nonzero == 0) continue;
    const double v = keep * (mass / static_cast<double>(nonzero)) / kept_mass + uniform;
    for (size_t j = begin; j < end; ++j) {
      const double pj = p_at(j);
      if (pj <= 0) continue;  // P and Q both `uniform` there: no divergence
      const double u = keep * pj / p_total + uniform;
      divergence += u * std::log(u / v);
    }
  }
  return divergence / z;
}

std::vector<double> ClippingDivergences(const std::vector<double>& hist, int levels) {
  const size_t n = hist.size();
  const auto level_count = static_cast<size_t>(levels);
  std::vector<double> result;
  if (n < level_count) return result;
  const double uniform = kSmoothing / static_cast<double>(n);
  const double keep = 1.0 - kSmoothing;
  // Running totals over bins [0, j): mass, nonzero bins, smoothed P mass u and u log u of
  // the nonzero bins (P as if nothing were clipped: only the last kept bin differs).
  std::vector<double> mass(n + 1, 0), nonzero(n + 1, 0), u_sum(n + 1, 0), u_log_u(n + 1, 0);
  for (size_t j = 0; j < n; ++j) mass[j + 1] = mass[j] + hist[j];
  const double p_total = mass[n];
  const auto smoothed = [&](double p) { return keep * p / p_total + uniform; };
  for (size_t j = 0; j < n; ++j) {
    const bool nz = hist[j] > 0;
    const double u = nz ? smoothed(hist[j]) : 0.0;
    nonzero[j + 1] = nonzero[j] + (nz ? 1 : 0);
    u_sum[j + 1] = u_sum[j] + u;
    u_log_u[j + 1] = u_log_u[j] + (nz ? u * std::log(u) : 0.0);
  }
  result.reserve(n - level_count + 1);
  for (size_t kept = level_count; kept <= n; ++kept) {
    const double kept_mass = mass[kept];
    if (p_total <= 0) {
      result.push_back(0);
      continue;
    }
    if (kept_mass <= 0) {
      result.push_back(std::numeric_limits<double>::infinity());
      continue;
    }
    const size_t last = kept - 1;
    const double last_p = hist[last] + (p_total - kept_mass);
    double divergence = 0;
    for (size_t g = 0; g < level_count; ++g) {
      const size_t begin = g * kept / level_count, end = (g + 1) * kept / level_count;
      double count = nonzero[end] - nonzero[begin];
      double sum_u = u_sum[end] - u_sum[begin];
      double sum_u_log_u = u_log_u[end] - u_log_u[begin];
      if (end == kept) {
        // The last kept bin also holds the clipped mass.
        if (hist[last] > 0) {
          const double u = smoothed(hist[last]);
          count -= 1;
          sum_u -= u;
          sum_u_log_u -= u * std::log(u);
        }
        if (last_p > 0) {
          const double u = smoothed(last_p);
          count += 1;
          sum_u += u;
          sum_u_log_u += u * std::log(u);
        }
      }
      if (count <= 0) continue;
      const double level_mass = mass[end] - mass[begin];
      const double v = keep * (level_mass / count) / kept_mass + uniform;
      divergence += sum_u_log_u - std::log(v) * sum_u;
    }
    result.push_back(divergence / (keep + uniform * static_cast<double>(kept)));
  }
  return result;
}

double EntropyThreshold(const std::vector<double>& hist, double width, double extent, int levels) {
  size_t used = hist.size();
  while (used > 0 && hist[used - 1] <= 0) --used;
  const auto level_count = static_cast<size_t>(levels);
  if (used <= level_count) return extent;
  const std::vector<double> trimmed(hist.begin(), hist.begin() + static_cast<long>(used));
  const std::vector<double> divergences = ClippingDivergences(trimmed, levels);
  // Clip at most half of the side's values. Further in, P is mostly the spike of clipped
  // mass in its last bin and Q, from the few values kept, can be a spike in the same place:
  // a near-zero divergence for a useless interval (values far from 0, as in [5, 10], clipped
  // to their minimum).
  const double total = std::accumulate(trimmed.begin(), trimmed.end(), 0.0);
  size_t median = 0;
  for (double cumulative = trimmed[0]; cumulative < 0.5 * total; cumulative += trimmed[++median]) {
  }
  const size_t first = std::max(level_count, median + 1) - level_count;
  const auto best =
      std::min_element(divergences.begin() + static_cast<long>(first), divergences.end());
  const size_t kept = level_count + static_cast<size_t>(best - divergences.begin());
  return std::min(static_cast<double>(kept) * width, extent);
}

std::pair<double, double> PercentileInterval(const TensorStats& stats, double percentile) {
  const double q = percentile / 100.0;
  return {HistogramQuantile(stats, 1.0 - q), HistogramQuantile(stats, q)};
}

std::pair<double, double> EntropyInterval(const TensorStats& stats) {
  const double negative = std::max(0.0, -static_cast<double>(stats.min));
  const double positive = std::max(0.0, static_cast<double>(stats.max));
  const double total = negative + positive;
  if (total <= 0) return {0.0, 0.0};
  const auto threshold = [&](bool side_positive) {
    const double extent = side_positive ? positive : negative;
    if (extent <= 0) return 0.0;
    const auto levels = static_cast<int>(std::lround(kUint8Levels * extent / total));
    if (levels < kMinSearchLevels) return extent;
    double width = 0;
    const std::vector<double> side = SideHistogram(stats, side_positive, &width);
    return EntropyThreshold(side, width, extent, levels);
  };
  return {-threshold(false), threshold(true)};
}

}  // namespace cvdeploy::optimize::calib
