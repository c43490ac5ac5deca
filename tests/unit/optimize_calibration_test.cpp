// SPDX-License-Identifier: Apache-2.0
// Calibration math against naive references written from the definitions, on synthetic
// samples: the streaming histogram equals one binning of all values at once whatever the
// order; the percentile and entropy ranges equal sorting the samples and a brute-force KL
// search within a bin width; edge cases; the table file's round trip and its validation.
#include "optimize/calibration.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "cvdeploy/error.h"
#include "model/onnx_model.h"
#include "optimize/calibration_math.h"
#include "support/assets.h"

namespace cvdeploy::optimize {
namespace {

using calib::StreamingHistogram;

TensorStats StatsOf(const std::vector<float>& values, int bins = 2048, size_t chunk = 4096) {
  StreamingHistogram h(bins);
  for (size_t i = 0; i < values.size(); i += chunk) {
    EXPECT_TRUE(h.Add(values.data() + i, std::min(chunk, values.size() - i)));
  }
  return h.Stats();
}

double BinWidth(const TensorStats& s) {
  return (static_cast<double>(s.hist_max) - s.hist_min) / static_cast<double>(s.bins.size());
}

std::vector<float> Normal(size_t n, double mean, double sigma, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> d(mean, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(d(rng));
  return v;
}

// Post-activation shapes the quantizer meets in YOLO models.
std::vector<float> Sigmoid(std::vector<float> v) {
  for (float& x : v) x = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(x))));
  return v;
}
std::vector<float> Silu(std::vector<float> v) {
  for (float& x : v) x = static_cast<float>(x / (1.0 + std::exp(-static_cast<double>(x))));
  return v;
}
std::vector<float> Relu(std::vector<float> v) {
  for (float& x : v) x = std::max(x, 0.f);
  return v;
}

void ExpectValidRange(const TensorRange& r, const TensorStats& s) {
  EXPECT_LE(r.lo, 0.f);
  EXPECT_GE(r.hi, 0.f);
  EXPECT_GT(r.hi, r.lo);
  EXPECT_GE(r.lo, std::min(s.min, 0.f));
  EXPECT_LE(r.hi, std::max(s.max, 0.f));
}

// ---- naive references --------------------------------------------------------------------

// Quantile of raw samples: the value of rank ceil(q n) (1-based), clamped to the samples.
double NaiveQuantile(std::vector<float> v, double q) {
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<long>(std::ceil(q * static_cast<double>(v.size())));
  return v[static_cast<size_t>(std::clamp(rank - 1, 0L, static_cast<long>(v.size()) - 1))];
}

// Histogram of |x| for one side of 0, from the raw samples, on bins of `width` from 0.
std::vector<double> NaiveSide(const std::vector<float>& v, bool positive, double width) {
  double extent = 0;
  for (float x : v) extent = std::max(extent, positive ? static_cast<double>(x) : -double(x));
  std::vector<double> h(std::max<size_t>(1, static_cast<size_t>(std::ceil(extent / width))), 0);
  for (float x : v) {
    if (positive && x >= 0) h[std::min(h.size() - 1, size_t(std::floor(x / width)))] += 1;
    // x < 0: |x| in (t w, (t+1) w] is bin t of the side (x in [-(t+1) w, -t w)).
    if (!positive && x < 0) h[std::min(h.size() - 1, size_t(std::ceil(-x / width) - 1))] += 1;
  }
  return h;
}

// KL(P || Q) for clipping `h` at `kept` bins with `levels` levels, building P and Q as full
// vectors exactly as described (TensorRT's procedure; each normalized, mixed with 1e-4 of the
// uniform distribution over all h.size() bins and renormalized over the kept ones).
double NaiveDivergence(const std::vector<double>& h, size_t kept, size_t levels) {
  std::vector<double> p(h.begin(), h.begin() + static_cast<long>(kept));
  for (size_t j = kept; j < h.size(); ++j) p[kept - 1] += h[j];
  std::vector<double> q(kept, 0);
  for (size_t g = 0; g < levels; ++g) {
    const size_t b = g * kept / levels, e = (g + 1) * kept / levels;
    double mass = 0, nonzero = 0;
    for (size_t j = b; j < e; ++j) {
      mass += h[j];
      nonzero += p[j] > 0;
    }
    for (size_t j = b; j < e; ++j) q[j] = p[j] > 0 ? mass / nonzero : 0;
  }
  const auto smooth = [&](std::vector<double> d) {
    double sum = 0;
    for (double x : d) sum += x;
    for (double& x : d) x = (1 - 1e-4) * x / sum + 1e-4 / double(h.size());
    sum = 0;
    for (double x : d) sum += x;
    for (double& x : d) x /= sum;
    return d;
  };
  double sq = 0;
  for (double x : q) sq += x;
  if (sq == 0) return std::numeric_limits<double>::infinity();
  const std::vector<double> ps = smooth(p), qs = smooth(q);
  double kl = 0;
  for (size_t j = 0; j < kept; ++j) kl += ps[j] * std::log(ps[j] / qs[j]);
  return kl;
}

// The entropy interval from raw samples: each side searched by brute force over every kept
// bin count with its share of 256 levels; sides under 16 levels and histograms with no more
// bins than levels kept whole.
std::pair<double, double> NaiveEntropy(const std::vector<float>& v, double width, double bins) {
  const double lo = *std::min_element(v.begin(), v.end());
  const double hi = *std::max_element(v.begin(), v.end());
  const double neg = std::max(0.0, -lo), pos = std::max(0.0, hi);
  const auto side = [&](bool positive) {
    const double extent = positive ? pos : neg;
    if (extent == 0) return 0.0;
    const long levels = std::lround(256 * extent / (neg + pos));
    if (levels < 16) return extent;
    // The side's bins: the histogram's, merged by the smallest factor that keeps the side
    // within max(histogram bins, 2048) bins.
    const double w = width * std::ceil(std::ceil(extent / width) / std::max(2048.0, bins));
    std::vector<double> h = NaiveSide(v, positive, w);
    size_t used = h.size();
    while (used > 0 && h[used - 1] == 0) --used;
    h.resize(used);
    if (used <= size_t(levels)) return extent;
    // Candidates clip at most half of the side's values.
    double total = 0, below = 0;
    for (double x : h) total += x;
    size_t first = size_t(levels);
    for (size_t j = 0; j < used; ++j) {
      below += h[j];
      if (below >= total / 2) {
        first = std::max(first, j + 1);
        break;
      }
    }
    size_t best = used;
    double best_kl = std::numeric_limits<double>::infinity();
    for (size_t kept = first; kept <= used; ++kept) {
      const double kl = NaiveDivergence(h, kept, size_t(levels));
      if (kl < best_kl) {
        best_kl = kl;
        best = kept;
      }
    }
    return std::min(double(best) * w, extent);
  };
  return {-side(false), side(true)};
}

// ---- method names ------------------------------------------------------------------------

TEST(CalibrationMethodTest, ParsesTheThreeNames) {
  for (const char* name : {"minmax", "percentile", "entropy"}) {
    EXPECT_STREQ(ToString(ParseCalibrationMethod(name)), name);
  }
}

TEST(CalibrationMethodTest, RejectsOtherNamesNamingThem) {
  for (const char* name : {"", "MinMax", "kl", "entropy "}) {
    try {
      ParseCalibrationMethod(name);
      ADD_FAILURE() << "accepted '" << name << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find(std::string("'") + name + "'"), std::string::npos)
          << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    }
  }
}

// ---- streaming histogram -----------------------------------------------------------------

TEST(StreamingHistogramTest, EqualsOneBinningOnTheFinalGridWhateverTheOrder) {
  // Chunks of growing spread, so the grid coarsens several times along the way.
  std::vector<float> values;
  for (int c = 0; c < 6; ++c) {
    const std::vector<float> chunk = Normal(5000, 0.3 * c, std::pow(3.0, c) * 0.01, 7 + c);
    values.insert(values.end(), chunk.begin(), chunk.end());
  }
  const TensorStats forward = StatsOf(values, 1024, 5000);
  std::vector<float> reversed(values.rbegin(), values.rend());
  const TensorStats backward = StatsOf(reversed, 1024, 5000);
  std::vector<float> shuffled = values;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(3));
  const TensorStats random = StatsOf(shuffled, 1024, 777);
  for (const TensorStats* s : {&backward, &random}) {
    EXPECT_EQ(s->min, forward.min);
    EXPECT_EQ(s->max, forward.max);
    EXPECT_EQ(s->hist_min, forward.hist_min);
    EXPECT_EQ(s->hist_max, forward.hist_max);
    EXPECT_EQ(s->bins, forward.bins);
  }

  // Naive: the smallest power-of-two width whose 0-anchored grid holds [min, max] in 1024
  // bins, every value binned once by floor(x / width).
  const float lo = *std::min_element(values.begin(), values.end());
  const float hi = *std::max_element(values.begin(), values.end());
  int e = -100;
  while (std::floor(hi / std::ldexp(1.0, e)) - std::floor(lo / std::ldexp(1.0, e)) + 1 > 1024) ++e;
  const double w = std::ldexp(1.0, e);
  const auto first = static_cast<long>(std::floor(lo / w));
  std::vector<uint64_t> naive(static_cast<size_t>(std::floor(hi / w)) - first + 1, 0);
  for (float x : values) ++naive[static_cast<size_t>(static_cast<long>(std::floor(x / w)) - first)];
  EXPECT_EQ(forward.bins, naive);
  EXPECT_EQ(forward.min, lo);
  EXPECT_EQ(forward.max, hi);
  EXPECT_DOUBLE_EQ(forward.hist_min, first * w);
  EXPECT_DOUBLE_EQ(BinWidth(forward), w);
  // The power-of-two width wastes at most half of the bins.
  EXPECT_GT(forward.bins.size(), 512u);
  EXPECT_LE(forward.bins.size(), 1024u);
}

TEST(StreamingHistogramTest, CoversMinAndMax) {
  for (const auto& v :
       {Normal(10000, 5, 1, 1), Normal(10000, -3, 0.001, 2), Relu(Normal(999, 0, 1, 3)),
        std::vector<float>(10, 0.f), std::vector<float>(10, -2.5f)}) {
    const TensorStats s = StatsOf(v, 256);
    EXPECT_EQ(calib::CheckStats(s), "");
    EXPECT_LE(s.hist_min, s.min);
    EXPECT_GT(s.hist_max, s.max);
    EXPECT_LE(s.bins.size(), 256u);
    uint64_t total = 0;
    for (uint64_t b : s.bins) total += b;
    EXPECT_EQ(total, v.size());
  }
}

TEST(StreamingHistogramTest, RefusesNonFiniteValues) {
  StreamingHistogram h(64);
  const float good[] = {1.f, 2.f};
  ASSERT_TRUE(h.Add(good, 2));
  const float nan[] = {1.f, std::numeric_limits<float>::quiet_NaN()};
  const float inf[] = {-std::numeric_limits<float>::infinity(), 0.f};
  const float huge[] = {0.f, 1e31f};
  EXPECT_FALSE(h.Add(nan, 2));
  EXPECT_FALSE(h.Add(inf, 2));
  EXPECT_FALSE(h.Add(huge, 2));
  EXPECT_EQ(h.Stats().max, 2.f);  // nothing of the refused chunks was added
  EXPECT_EQ(h.Stats().bins.size() > 0, true);
}

// ---- ranges ------------------------------------------------------------------------------

TEST(ComputeRangeTest, MinMaxIsTheRangeWidenedToZero) {
  const TensorStats two_sided = StatsOf(Normal(20000, 0, 2, 5));
  TensorRange r = ComputeRange(two_sided, CalibrationMethod::kMinMax);
  EXPECT_EQ(r.lo, two_sided.min);
  EXPECT_EQ(r.hi, two_sided.max);
  const TensorStats positive = StatsOf(Normal(20000, 10, 1, 6));
  r = ComputeRange(positive, CalibrationMethod::kMinMax);
  EXPECT_EQ(r.lo, 0.f);
  EXPECT_EQ(r.hi, positive.max);
  const TensorStats negative = StatsOf(Normal(20000, -10, 1, 7));
  r = ComputeRange(negative, CalibrationMethod::kMinMax);
  EXPECT_EQ(r.lo, negative.min);
  EXPECT_EQ(r.hi, 0.f);
}

TEST(ComputeRangeTest, PercentileMatchesSortedSamplesWithinABin) {
  std::vector<std::vector<float>> cases = {Normal(200000, 0.5, 2, 11),
                                           Silu(Normal(200000, 0, 3, 12)),
                                           Sigmoid(Normal(100000, -1, 2, 13))};
  for (size_t c = 0; c < cases.size(); ++c) {
    const TensorStats s = StatsOf(cases[c]);
    for (double p : {99.0, 99.9, 99.99, 100.0}) {
      const TensorRange r = ComputeRange(s, CalibrationMethod::kPercentile, p);
      const double lo = std::min(0.0, NaiveQuantile(cases[c], 1 - p / 100));
      const double hi = std::max(0.0, NaiveQuantile(cases[c], p / 100));
      SCOPED_TRACE("case " + std::to_string(c) + " p " + std::to_string(p));
      EXPECT_NEAR(r.lo, lo, BinWidth(s));
      EXPECT_NEAR(r.hi, hi, BinWidth(s));
      ExpectValidRange(r, s);
    }
    // 100 is exactly minmax.
    const TensorRange all = ComputeRange(s, CalibrationMethod::kPercentile, 100);
    const TensorRange minmax = ComputeRange(s, CalibrationMethod::kMinMax);
    EXPECT_EQ(all.lo, minmax.lo);
    EXPECT_EQ(all.hi, minmax.hi);
  }
}

TEST(ComputeRangeTest, EntropyMatchesBruteForceKlSearchWithinABin) {
  std::vector<float> with_outliers = Normal(100000, 0, 1, 23);
  with_outliers.push_back(40.f);
  with_outliers.push_back(-25.f);
  std::vector<std::vector<float>> cases = {
      Normal(50000, 0.2, 1.5, 21),       // two-sided: 128 levels a side
      Relu(Normal(50000, 0, 2, 22)),     // one-sided: 256 levels
      Silu(Normal(50000, 0.5, 3, 24)),   // tail of 7 levels kept whole, 249 searched
      Sigmoid(Normal(50000, 0, 3, 25)),  // one-sided in [0, 1]
      with_outliers,                     // both sides clipped
      Normal(50000, 6, 1, 26),           // away from zero
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    SCOPED_TRACE("case " + std::to_string(c));
    // As Calibrate collects them by default (num_bins 2048: at most 4096 bins).
    const TensorStats s = StatsOf(cases[c], 4096);
    const TensorRange r = ComputeRange(s, CalibrationMethod::kEntropy);
    const auto [lo, hi] = NaiveEntropy(cases[c], BinWidth(s), double(s.bins.size()));
    EXPECT_NEAR(r.lo, lo, BinWidth(s));
    EXPECT_NEAR(r.hi, hi, BinWidth(s));
    ExpectValidRange(r, s);
  }
}

TEST(ComputeRangeTest, FastDivergencesEqualTheDirectOnes) {
  std::mt19937 rng(71);
  std::uniform_real_distribution<double> uniform(0, 1);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<double> h(200 + trial * 37);
    for (double& x : h) x = uniform(rng) < 0.3 ? 0 : std::floor(uniform(rng) * 1000);
    if (trial % 3 == 0) std::fill(h.end() - 40, h.end() - 1, 0.0);  // empty bins before the tail
    const int levels = 16 + 10 * trial;
    const std::vector<double> fast = calib::ClippingDivergences(h, levels);
    ASSERT_EQ(fast.size(), h.size() - size_t(levels) + 1);
    for (size_t kept = size_t(levels); kept <= h.size(); ++kept) {
      const double direct = calib::ClippingDivergence(h, kept, levels);
      EXPECT_NEAR(fast[kept - size_t(levels)], direct, 1e-12 + 1e-9 * direct) << kept;
      EXPECT_NEAR(direct, NaiveDivergence(h, kept, size_t(levels)), 1e-12 + 1e-9 * direct);
    }
  }
}

TEST(ComputeRangeTest, OneSidedTensorsKeepZeroAsTheLowerBound) {
  for (const auto& v : {Sigmoid(Normal(30000, 0, 2, 31)), Relu(Normal(30000, 1, 2, 32))}) {
    const TensorStats s = StatsOf(v);
    for (CalibrationMethod m : {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile,
                                CalibrationMethod::kEntropy}) {
      const TensorRange r = ComputeRange(s, m);
      EXPECT_EQ(r.lo, 0.f) << ToString(m);
      ExpectValidRange(r, s);
    }
  }
  // A SiLU's short negative tail stays whole under entropy (too few levels to clip).
  const std::vector<float> silu = Silu(Normal(30000, 0, 4, 33));
  const TensorStats s = StatsOf(silu);
  EXPECT_EQ(ComputeRange(s, CalibrationMethod::kEntropy).lo, s.min);
  EXPECT_LT(s.min, -0.2f);
}

TEST(ComputeRangeTest, PercentileAndEntropyClipAHugeOutlierMinMaxKeepsIt) {
  std::vector<float> v = Relu(Normal(100000, 0, 1, 41));
  v.push_back(1000.f);
  const TensorStats s = StatsOf(v);
  EXPECT_EQ(ComputeRange(s, CalibrationMethod::kMinMax).hi, 1000.f);
  const TensorRange p = ComputeRange(s, CalibrationMethod::kPercentile, 99.99);
  EXPECT_NEAR(p.hi, NaiveQuantile(v, 0.9999), BinWidth(s));
  EXPECT_LT(p.hi, 10.f);
  // Entropy cannot clip below `levels` bins (1000 / 2048 * 256 at the finest grid): it still
  // drops most of the outlier's span.
  const TensorRange e = ComputeRange(s, CalibrationMethod::kEntropy);
  EXPECT_LT(e.hi, 300.f);
  EXPECT_GT(e.hi, 3.f);
}

TEST(ComputeRangeTest, ConstantAndZeroTensors) {
  for (float value : {3.5f, -0.25f, 1e-20f}) {
    const TensorStats s = StatsOf(std::vector<float>(1000, value));
    for (CalibrationMethod m : {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile,
                                CalibrationMethod::kEntropy}) {
      const TensorRange r = ComputeRange(s, m);
      EXPECT_EQ(r.lo, std::min(value, 0.f)) << ToString(m) << " " << value;
      EXPECT_EQ(r.hi, std::max(value, 0.f)) << ToString(m) << " " << value;
    }
  }
  const TensorStats zero = StatsOf(std::vector<float>(1000, 0.f));
  for (CalibrationMethod m :
       {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile, CalibrationMethod::kEntropy}) {
    const TensorRange r = ComputeRange(zero, m);
    EXPECT_EQ(r.lo, 0.f);
    EXPECT_EQ(r.hi, 1.f);
  }
}

TEST(ComputeRangeTest, WorksOnHistogramsOffTheZeroGrid) {
  // A hand-made histogram whose bins straddle 0 (as a table written by another tool might).
  TensorStats s;
  s.min = -1.f;
  s.max = 3.f;
  s.hist_min = -1.f;
  s.hist_max = 3.f;
  s.bins = std::vector<uint64_t>(300, 10);
  s.bins[0] = 1;
  s.bins[299] = 1;
  for (CalibrationMethod m :
       {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile, CalibrationMethod::kEntropy}) {
    ExpectValidRange(ComputeRange(s, m), s);
  }
  // The uniform body: percentile 99 cuts about 1% of 4 off each end.
  const TensorRange p = ComputeRange(s, CalibrationMethod::kPercentile, 99);
  EXPECT_NEAR(p.hi, 3.f - 0.04f, 2 * BinWidth(s));
  EXPECT_NEAR(p.lo, -1.f + 0.04f, 2 * BinWidth(s));
  // Mass of each side survives the fold onto |x|.
  double width = 0;
  const std::vector<double> pos = calib::SideHistogram(s, true, &width);
  const std::vector<double> neg = calib::SideHistogram(s, false, &width);
  double total_pos = 0, total_neg = 0;
  for (double m : pos) total_pos += m;
  for (double m : neg) total_neg += m;
  EXPECT_NEAR(total_neg + total_pos, 2982.0, 1e-6);
  EXPECT_NEAR(total_neg, 1 + 74 * 10.0, 1e-6);  // bins [-1, 0): 75 of width 4/300
}

TEST(ComputeRangeTest, RejectsBadPercentileAndEmptyStats) {
  const TensorStats s = StatsOf(Normal(100, 0, 1, 51));
  for (double p : {50.0, 10.0, 100.5, std::nan("")}) {
    try {
      ComputeRange(s, CalibrationMethod::kPercentile, p);
      ADD_FAILURE() << "accepted percentile " << p;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    }
  }
  EXPECT_NO_THROW(ComputeRange(s, CalibrationMethod::kMinMax, 10.0));  // only percentile uses it
  try {
    ComputeRange(TensorStats{}, CalibrationMethod::kMinMax);
    ADD_FAILURE() << "accepted empty stats";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput) << e.what();
  }
}

// ---- table file --------------------------------------------------------------------------

CalibrationTable SampleTable() {
  CalibrationTable t;
  t.model_sha256 = std::string(64, 'a');
  t.images = 2;
  t.image_names = {"b \"quoted\".jpg", "\xc3\xa9t\xc3\xa9.png"};
  t.stats["/model.0/conv/Conv_output_0"] = StatsOf(Normal(3000, 0.1f, 1.3f, 61));
  t.stats["images"] = StatsOf(Sigmoid(Normal(3000, 0, 1, 62)), 100);
  t.stats["odd"] = StatsOf({0.1f, 1.f / 3.f, 1e30f, -1e-30f}, 64);
  return t;
}

TEST(CalibrationTableTest, SaveLoadRoundTripIsExact) {
  const CalibrationTable t = SampleTable();
  const std::string path = testing::MakeTempDir("calib") + "/table.json";
  SaveCalibration(t, path);
  const CalibrationTable u = LoadCalibration(path);
  EXPECT_EQ(u.model_sha256, t.model_sha256);
  EXPECT_EQ(u.images, t.images);
  EXPECT_EQ(u.image_names, t.image_names);
  ASSERT_EQ(u.stats.size(), t.stats.size());
  for (const auto& [name, s] : t.stats) {
    const TensorStats& v = u.stats.at(name);
    EXPECT_EQ(std::memcmp(&v.min, &s.min, sizeof(float)), 0) << name;
    EXPECT_EQ(std::memcmp(&v.max, &s.max, sizeof(float)), 0) << name;
    EXPECT_EQ(std::memcmp(&v.hist_min, &s.hist_min, sizeof(float)), 0) << name;
    EXPECT_EQ(std::memcmp(&v.hist_max, &s.hist_max, sizeof(float)), 0) << name;
    EXPECT_EQ(v.bins, s.bins) << name;
  }
}

std::string WriteText(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

void ExpectBadTable(const std::string& path, const std::string& reason) {
  try {
    LoadCalibration(path);
    ADD_FAILURE() << path << " loaded; expected: " << reason;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.code(), ErrorCode::kBadInput) << what;
    EXPECT_EQ(what.rfind(path, 0), 0u) << what;
    EXPECT_NE(what.find(reason), std::string::npos) << what << " (expected: " << reason << ")";
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(CalibrationTableTest, LoadRejectsMalformedFilesNamingPathAndReason) {
  const std::string dir = testing::MakeTempDir("calib-bad");
  ExpectBadTable(dir + "/missing.json", "No such file");
  ExpectBadTable(WriteText(dir, "empty.json", ""), "empty");
  ExpectBadTable(WriteText(dir, "text.json", "hello"), "not JSON");
  ExpectBadTable(WriteText(dir, "array.json", "[1, 2]"), "not a JSON object");
  ExpectBadTable(WriteText(dir, "other.json", R"({"format": "other"})"), "format");
  // Issue 12, item 2: nesting is bounded before parsing, and a number beyond double
  // (nlohmann's out_of_range, which escaped as a non-cvdeploy error) is "not JSON".
  ExpectBadTable(
      WriteText(dir, "deep.json",
                "{\"format\": " + std::string(100000, '[') + std::string(100000, ']') + "}"),
      "JSON nested deeper than 64 levels");
  ExpectBadTable(WriteText(dir, "huge.json", R"({"format": 1e400})"), "not JSON");
  // A directory or a FIFO is refused, never read.
  ExpectBadTable(testing::MakeTempDir("calib-dir"), "is a directory");

  const std::string good_path = dir + "/good.json";
  SaveCalibration(SampleTable(), good_path);
  std::ifstream in(good_path);
  const nlohmann::json good = nlohmann::json::parse(in);
  int n = 0;
  const auto bad = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& why) {
    nlohmann::json j = good;
    edit(j);
    ExpectBadTable(WriteText(dir, "bad" + std::to_string(n++) + ".json", j.dump()), why);
  };
  bad([](auto& j) { j["version"] = 2; }, "version 2");
  bad([](auto& j) { j.erase("version"); }, "missing \"version\"");
  bad([](auto& j) { j["model_sha256"] = "abc"; }, "model_sha256");
  bad([](auto& j) { j["images"] = 0; }, "\"images\"");
  bad([](auto& j) { j["images"] = 3; }, "2 names for 3 images");
  bad([](auto& j) { j["image_names"] = {1, 2}; }, "image_names");
  bad([](auto& j) { j["tensors"] = 5; }, "\"tensors\"");
  const std::string t = "images";
  bad([&](auto& j) { j["tensors"][t].erase("bins"); }, "tensor 'images': missing \"bins\"");
  bad([&](auto& j) { j["tensors"][t]["bins"][0] = -1; }, "not a count");
  bad([&](auto& j) { j["tensors"][t]["bins"] = nlohmann::json::array(); }, "no histogram bins");
  bad([&](auto& j) { j["tensors"][t]["min"] = "x"; }, "\"min\" is not a number");
  bad([&](auto& j) { j["tensors"][t]["max"] = 1e300; }, "out of the float range");
  bad([&](auto& j) { j["tensors"][t]["min"] = 2.0; }, "min is greater than max");
  bad([&](auto& j) { j["tensors"][t]["hist_max"] = 0.5; }, "does not cover");
  bad(
      [&](auto& j) {
        j["tensors"][t]["bins"] = std::vector<int>(j["tensors"][t]["bins"].size(), 0);
      },
      "holds no values");
}

// The optimization record in ONNX metadata is model input too: a record nested deeper than
// 64 levels is ignored like an unparsable one (a caller would dump it recursively).
TEST(OnnxMetadataJsonTest, DeeplyNestedOptimizationRecordIsIgnored) {
  onnx::ModelProto model;
  auto* prop = model.add_metadata_props();
  prop->set_key(optimize::kOptimizationKey);
  prop->set_value(std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_TRUE(optimize::OptimizationRecord(model).empty());
  prop->set_value(R"([{"tool": "quantize"}])");
  ASSERT_EQ(optimize::OptimizationRecord(model).size(), 1u);
}

TEST(CalibrationTableTest, SaveNamesAnUnwritablePath) {
  const std::string path = testing::MakeTempDir("calib-save") + "/no/such/dir/table.json";
  try {
    SaveCalibration(SampleTable(), path);
    ADD_FAILURE() << "saved to " << path;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kRuntime);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cvdeploy::optimize
