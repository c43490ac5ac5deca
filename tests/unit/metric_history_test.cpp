// SPDX-License-Identifier: Apache-2.0
// The dashboard's metric history: quantiles from histogram buckets (checked against a naive
// reference over the raw observations), points from counter and bucket deltas, counter resets,
// the bounded ring, and models leaving the snapshot.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "server/metric_history.h"
#include "server/metrics.h"

namespace cvdeploy::server {
namespace {

ModelCounters Snap(const std::string& model, const Histogram& h, double ok, double failed,
                   double pending) {
  ModelCounters c;
  c.model = model;
  c.version = "1";
  c.success = ok;
  c.failure = failed;
  c.pending = pending;
  c.bounds = h.Bounds();
  c.cumulative = h.CumulativeCounts();
  return c;
}

TEST(QuantileFromBuckets, InterpolatesInsideTheBucket) {
  // 10 observations in (0,10], 10 in (10,20]: the median is the top of the first bucket, p75
  // halfway through the second.
  const std::vector<double> bounds{10, 20, 40};
  const std::vector<uint64_t> cum{10, 20, 20, 20};
  EXPECT_DOUBLE_EQ(*QuantileFromBuckets(bounds, cum, 0.5), 10.0);
  EXPECT_DOUBLE_EQ(*QuantileFromBuckets(bounds, cum, 0.75), 15.0);
  EXPECT_DOUBLE_EQ(*QuantileFromBuckets(bounds, cum, 0.25), 5.0);
}

TEST(QuantileFromBuckets, EmptyMismatchedAndInfBucket) {
  EXPECT_FALSE(QuantileFromBuckets({10, 20}, {0, 0, 0}, 0.5).has_value());
  EXPECT_FALSE(QuantileFromBuckets({10, 20}, {1, 2}, 0.5).has_value());  // sizes disagree
  EXPECT_FALSE(QuantileFromBuckets({}, {3}, 0.5).has_value());
  // Everything above the last bound: the last finite bound (as histogram_quantile).
  EXPECT_DOUBLE_EQ(*QuantileFromBuckets({10, 20}, {0, 0, 5}, 0.99), 20.0);
}

// Against the exact quantile of the raw values: the estimate lies in the same bucket.
TEST(QuantileFromBuckets, AgreesWithNaiveReferenceToTheBucket) {
  Histogram h(LatencyBucketsSeconds());
  std::mt19937 rng(7);
  std::lognormal_distribution<double> dist(std::log(0.08), 0.6);  // ~80 ms
  std::vector<double> values;
  for (int i = 0; i < 5000; ++i) {
    values.push_back(dist(rng));
    h.Observe(values.back());
  }
  std::sort(values.begin(), values.end());
  const auto& b = h.Bounds();
  for (double q : {0.5, 0.95, 0.99}) {
    const double exact = values[static_cast<size_t>(std::ceil(q * values.size())) - 1];
    const double est = *QuantileFromBuckets(b, h.CumulativeCounts(), q);
    const auto bucket_of = [&](double v) {
      return std::lower_bound(b.begin(), b.end(), v) - b.begin();
    };
    EXPECT_EQ(bucket_of(est), bucket_of(exact)) << q << " est " << est << " exact " << exact;
  }
}

TEST(MetricHistory, PointsFromDeltas) {
  MetricHistory history(10, 5);
  Histogram h({0.001, 0.01, 0.1});  // seconds
  history.Record(100, {Snap("m", h, 0, 0, 0)});
  EXPECT_TRUE(history.Points("m").empty()) << "the first snapshot only primes";
  // 10 s later: 20 successes, 5 failures, 3 queued; latencies: 10 at 5 ms (bucket 2).
  for (int i = 0; i < 10; ++i) h.Observe(0.005);
  history.Record(110, {Snap("m", h, 20, 5, 3)});
  auto p = history.Points("m");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_DOUBLE_EQ(p[0].time_s, 110);
  EXPECT_DOUBLE_EQ(p[0].throughput_rps, 2.0);
  EXPECT_DOUBLE_EQ(p[0].error_ratio, 0.2);
  EXPECT_DOUBLE_EQ(p[0].queue_depth, 3);
  // All ten in (1 ms, 10 ms]: p50 interpolates to 5.5 ms.
  ASSERT_TRUE(p[0].p50_ms.has_value());
  EXPECT_DOUBLE_EQ(*p[0].p50_ms, 5.5);
  // Next interval: only the new observations count (bucket deltas), 10 at 50 ms.
  for (int i = 0; i < 10; ++i) h.Observe(0.05);
  history.Record(115, {Snap("m", h, 30, 5, 0)});
  p = history.Points("m");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_DOUBLE_EQ(p[1].throughput_rps, 2.0);
  EXPECT_DOUBLE_EQ(p[1].error_ratio, 0.0);
  EXPECT_GT(*p[1].p50_ms, 10.0);
  EXPECT_LE(*p[1].p99_ms, 100.0);
  // An idle interval: no latency (null), zero throughput.
  history.Record(120, {Snap("m", h, 30, 5, 0)});
  p = history.Points("m");
  EXPECT_FALSE(p[2].p50_ms.has_value());
  EXPECT_DOUBLE_EQ(p[2].throughput_rps, 0.0);
  const auto doc = history.ToJson([](const std::string&) { return true; });
  EXPECT_TRUE(doc["models"]["m"]["samples"][2]["p50_ms"].is_null());
  EXPECT_EQ(doc["points"], 10);
  EXPECT_EQ(doc["interval_s"], 5.0);
}

TEST(MetricHistory, CounterResetTakesTheNewValue) {
  MetricHistory history(10, 1);
  Histogram before({0.001, 0.01});  // seconds
  for (int i = 0; i < 50; ++i) before.Observe(0.0005);
  history.Record(0, {Snap("m", before, 100, 10, 0)});
  // A new version's series start from zero.
  Histogram after({0.001, 0.01});
  for (int i = 0; i < 4; ++i) after.Observe(0.005);
  history.Record(2, {Snap("m", after, 4, 0, 0)});
  const auto p = history.Points("m");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_DOUBLE_EQ(p[0].throughput_rps, 2.0);
  EXPECT_GT(*p[0].p50_ms, 1.0) << "the reset histogram's own counts, not a negative delta";
}

TEST(MetricHistory, RingIsBoundedAndModelsLeave) {
  MetricHistory history(3, 1);
  Histogram h({0.001});
  for (int t = 0; t <= 10; ++t) history.Record(t, {Snap("a", h, t, 0, 0), Snap("b", h, 0, 0, 0)});
  const auto p = history.Points("a");
  ASSERT_EQ(p.size(), 3u);
  EXPECT_DOUBLE_EQ(p.front().time_s, 8);
  EXPECT_DOUBLE_EQ(p.back().time_s, 10);
  EXPECT_EQ(history.Points("b").size(), 3u);
  // "b" is gone from the snapshot: its history goes too; filtering applies in ToJson.
  history.Record(11, {Snap("a", h, 11, 0, 0)});
  EXPECT_TRUE(history.Points("b").empty());
  EXPECT_EQ(history.Points("a").size(), 3u);
  const auto doc = history.ToJson([](const std::string& m) { return m != "a"; });
  EXPECT_TRUE(doc["models"].empty());
}

TEST(MetricHistory, RejectsBadConfiguration) {
  EXPECT_THROW(MetricHistory(0, 1), std::invalid_argument);
  EXPECT_THROW(MetricHistory(1, 0), std::invalid_argument);
  EXPECT_THROW(MetricHistory(1, std::nan("")), std::invalid_argument);
}

}  // namespace
}  // namespace cvdeploy::server
