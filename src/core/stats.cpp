// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "cvdeploy/error.h"

namespace cvdeploy::bench {

double Percentile(const std::vector<double>& sorted, double q) {
  if (!(q >= 0.0 && q <= 100.0)) {
    throw InvalidArgument("percentile must be in [0, 100], got " + std::to_string(q));
  }
  if (sorted.empty()) throw InvalidArgument("percentile of an empty series");
  const double position = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(position));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double fraction = position - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * fraction;
}

Summary Summarize(std::vector<double> samples) {
  Summary s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  s.count = samples.size();
  s.min = samples.front();
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(s.count);
  s.p50 = Percentile(samples, 50);
  s.p90 = Percentile(samples, 90);
  s.p99 = Percentile(samples, 99);
  return s;
}

double RoundTo(double value, int decimals) {
  if (!std::isfinite(value)) return value;
  const double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

}  // namespace cvdeploy::bench
