// SPDX-License-Identifier: Apache-2.0
// Summary statistics of timing samples: min, mean and percentiles, as the benchmark reports
// them (cvdeploy bench, compare, the reports of cvdeploy/bench.h). Implemented in the core
// library (src/core/stats.cpp): evaluation uses it too, and it depends on nothing else.
#pragma once

#include <cstddef>
#include <vector>

namespace cvdeploy::bench {

// Distribution of a series of samples (milliseconds for timings). All zeros when empty.
struct Summary {
  double min = 0, mean = 0, p50 = 0, p90 = 0, p99 = 0;
  size_t count = 0;
};

// q-th percentile (q in [0, 100]) of `sorted` (ascending, non-empty), interpolating linearly
// between the closest ranks: numpy.percentile's default "linear" method, i.e. position
// q/100 * (n - 1). Throws InvalidArgument when q is outside [0, 100] (or NaN) or `sorted` is
// empty.
double Percentile(const std::vector<double>& sorted, double q);

// Min, mean, p50/p90/p99 and count of `samples` (any order). Empty -> all zeros, count 0.
Summary Summarize(std::vector<double> samples);

// `value` rounded half away from zero to `decimals` decimal places (for reports: the JSON stays
// numeric, without 0.30000000000000004 noise). Non-finite values are returned unchanged.
double RoundTo(double value, int decimals);

}  // namespace cvdeploy::bench
