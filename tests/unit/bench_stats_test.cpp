// SPDX-License-Identifier: Apache-2.0
// Benchmark statistics: percentiles against numpy.percentile's default (linear) values.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "cvdeploy/error.h"
#include "cvdeploy/stats.h"

namespace cvdeploy::bench {
namespace {

// numpy: np.percentile(np.arange(1, 11), [0, 50, 90, 99, 100]) = [1, 5.5, 9.1, 9.91, 10].
TEST(BenchStats, PercentileOneToTenMatchesNumpy) {
  const std::vector<double> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_DOUBLE_EQ(Percentile(v, 0), 1.0);
  EXPECT_DOUBLE_EQ(Percentile(v, 50), 5.5);
  EXPECT_NEAR(Percentile(v, 90), 9.1, 1e-12);
  EXPECT_NEAR(Percentile(v, 99), 9.91, 1e-12);
  EXPECT_DOUBLE_EQ(Percentile(v, 100), 10.0);
  EXPECT_NEAR(Percentile(v, 25), 3.25, 1e-12);
}

// np.percentile([0.5, 2.5, 10, 100], [25, 90]) = [2.0, 73.0].
TEST(BenchStats, PercentileUnevenGaps) {
  const std::vector<double> v = {0.5, 2.5, 10, 100};
  EXPECT_NEAR(Percentile(v, 25), 2.0, 1e-12);
  EXPECT_NEAR(Percentile(v, 90), 73.0, 1e-12);
}

TEST(BenchStats, SingleElement) {
  const Summary s = Summarize({7.0});
  EXPECT_EQ(s.count, 1u);
  EXPECT_DOUBLE_EQ(s.min, 7.0);
  EXPECT_DOUBLE_EQ(s.mean, 7.0);
  EXPECT_DOUBLE_EQ(s.p50, 7.0);
  EXPECT_DOUBLE_EQ(s.p90, 7.0);
  EXPECT_DOUBLE_EQ(s.p99, 7.0);
}

// np.percentile([1, 3], [50, 90, 99]) = [2.0, 2.8, 2.98].
TEST(BenchStats, TwoElements) {
  const Summary s = Summarize({3.0, 1.0});
  EXPECT_EQ(s.count, 2u);
  EXPECT_DOUBLE_EQ(s.min, 1.0);
  EXPECT_DOUBLE_EQ(s.mean, 2.0);
  EXPECT_NEAR(s.p50, 2.0, 1e-12);
  EXPECT_NEAR(s.p90, 2.8, 1e-12);
  EXPECT_NEAR(s.p99, 2.98, 1e-12);
}

// np.percentile([5, 1, 4, 2, 3], [50, 90, 99]) = [3.0, 4.6, 4.96].
TEST(BenchStats, UnsortedInputIsSorted) {
  const Summary s = Summarize({5, 1, 4, 2, 3});
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.min, 1.0);
  EXPECT_DOUBLE_EQ(s.mean, 3.0);
  EXPECT_NEAR(s.p50, 3.0, 1e-12);
  EXPECT_NEAR(s.p90, 4.6, 1e-12);
  EXPECT_NEAR(s.p99, 4.96, 1e-12);
}

TEST(BenchStats, EmptyIsAllZeros) {
  const Summary s = Summarize({});
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.min, 0.0);
  EXPECT_EQ(s.mean, 0.0);
  EXPECT_EQ(s.p50, 0.0);
  EXPECT_EQ(s.p90, 0.0);
  EXPECT_EQ(s.p99, 0.0);
}

TEST(BenchStats, PercentileOutOfRangeThrowsInvalidArgument) {
  const std::vector<double> v = {1, 2, 3};
  for (double q : {-0.1, 100.5, std::numeric_limits<double>::quiet_NaN()}) {
    try {
      Percentile(v, q);
      FAIL() << "no exception for q=" << q;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    }
  }
  EXPECT_THROW(Percentile({}, 50), Error);
}

TEST(BenchStats, RoundTo) {
  EXPECT_DOUBLE_EQ(RoundTo(1.23456, 3), 1.235);
  EXPECT_DOUBLE_EQ(RoundTo(0.1 + 0.2, 3), 0.3);
  EXPECT_DOUBLE_EQ(RoundTo(-2.5, 0), -3.0);
  EXPECT_TRUE(std::isinf(RoundTo(std::numeric_limits<double>::infinity(), 3)));
}

}  // namespace
}  // namespace cvdeploy::bench
