// SPDX-License-Identifier: Apache-2.0
// Prometheus metrics: exact exposition text, "le" bucket semantics, escaping, registry misuse,
// series removal, counts under concurrency and the process collector.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <latch>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "server/metrics.h"

namespace cvdeploy::server {
namespace {

// The value of the unlabelled sample `name` in `text`; NaN when absent.
double SampleValue(const std::string& text, const std::string& name) {
  const std::string prefix = "\n" + name + " ";
  const size_t at = text.find(prefix);
  if (at == std::string::npos) return std::nan("");
  return std::stod(text.substr(at + prefix.size()));
}

TEST(ServerMetrics, RendersExactExposition) {
  Registry registry;
  const Labels ok = {{"model", "yolo"}, {"code", "200"}};
  Counter& requests = registry.GetCounter("cvdeploy_requests_total", "Requests handled.", ok);
  requests.Inc();
  requests.Inc(2);
  registry.GetGauge("cvdeploy_queue_depth", "Requests waiting.").Set(3);
  // A series created after a later family was registered still renders under its own family.
  registry
      .GetCounter("cvdeploy_requests_total", "Requests handled.",
                  {{"model", "yolo"}, {"code", "500"}})
      .Inc();
  Histogram& latency = registry.GetHistogram("cvdeploy_latency_us", "Latency in microseconds.",
                                             {{"model", "yolo"}}, {100, 250, 1000});
  for (double v : {50.0, 100.0, 100.25, 250.0, 999.5, 5000.0}) latency.Observe(v);

  EXPECT_EQ(registry.Render(),
            "# HELP cvdeploy_requests_total Requests handled.\n"
            "# TYPE cvdeploy_requests_total counter\n"
            "cvdeploy_requests_total{model=\"yolo\",code=\"200\"} 3\n"
            "cvdeploy_requests_total{model=\"yolo\",code=\"500\"} 1\n"
            "# HELP cvdeploy_queue_depth Requests waiting.\n"
            "# TYPE cvdeploy_queue_depth gauge\n"
            "cvdeploy_queue_depth 3\n"
            "# HELP cvdeploy_latency_us Latency in microseconds.\n"
            "# TYPE cvdeploy_latency_us histogram\n"
            "cvdeploy_latency_us_bucket{model=\"yolo\",le=\"100\"} 2\n"
            "cvdeploy_latency_us_bucket{model=\"yolo\",le=\"250\"} 4\n"
            "cvdeploy_latency_us_bucket{model=\"yolo\",le=\"1000\"} 5\n"
            "cvdeploy_latency_us_bucket{model=\"yolo\",le=\"+Inf\"} 6\n"
            "cvdeploy_latency_us_sum{model=\"yolo\"} 6499.75\n"
            "cvdeploy_latency_us_count{model=\"yolo\"} 6\n");
}

TEST(ServerMetrics, UnlabelledHistogramAndEmptyHelp) {
  Registry registry;
  Histogram& h = registry.GetHistogram("size_ratio", "", {}, {0.005, 0.5});
  h.Observe(0.005);
  h.Observe(-1);
  h.Observe(0.25);
  EXPECT_EQ(registry.Render(),
            "# TYPE size_ratio histogram\n"
            "size_ratio_bucket{le=\"0.005\"} 2\n"
            "size_ratio_bucket{le=\"0.5\"} 3\n"
            "size_ratio_bucket{le=\"+Inf\"} 3\n"
            "size_ratio_sum -0.745\n"
            "size_ratio_count 3\n");
}

TEST(ServerMetrics, HistogramBucketsAreLessOrEqual) {
  Histogram h({1, 2, 3});
  h.Observe(1);                         // exactly on a bound: that bucket
  h.Observe(std::nextafter(1.0, 2.0));  // just above: the next one
  h.Observe(3);
  h.Observe(3.5);           // above the last bound: +Inf only
  h.Observe(std::nan(""));  // NaN: +Inf only, not the first bucket
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<uint64_t>{1, 2, 3, 5}));
  EXPECT_EQ(h.Count(), 5u);
  EXPECT_TRUE(std::isnan(h.Sum()));
}

TEST(ServerMetrics, HistogramBoundsAreValidated) {
  EXPECT_THROW(Histogram({1, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({2, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({1, std::nan("")}), std::invalid_argument);
  EXPECT_THROW(Histogram({-std::numeric_limits<double>::infinity(), 1}), std::invalid_argument);
  // A trailing +Inf is the implicit bucket, accepted and dropped.
  Histogram h({1, std::numeric_limits<double>::infinity()});
  EXPECT_EQ(h.Bounds(), std::vector<double>{1});
  Histogram only_inf({});
  only_inf.Observe(7);
  EXPECT_EQ(only_inf.CumulativeCounts(), std::vector<uint64_t>{1});
}

TEST(ServerMetrics, EscapesLabelValuesAndHelp) {
  Registry registry;
  registry.GetGauge("g", "Line one\nback\\slash \"quoted\"", {{"path", "C:\\dir\n\"x\""}}).Set(1);
  EXPECT_EQ(registry.Render(),
            "# HELP g Line one\\nback\\\\slash \"quoted\"\n"
            "# TYPE g gauge\n"
            "g{path=\"C:\\\\dir\\n\\\"x\\\"\"} 1\n");
}

TEST(ServerMetrics, FormatsNumbers) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(-0.0), "0");
  EXPECT_EQ(FormatMetricValue(7), "7");
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(1e6), "1000000");
  EXPECT_EQ(FormatMetricValue(6e7), "60000000");
  EXPECT_EQ(FormatMetricValue(9007199254740991.0), "9007199254740991");
  EXPECT_EQ(FormatMetricValue(1e20), "1e+20");
  EXPECT_EQ(FormatMetricValue(0.1), "0.1");
  EXPECT_EQ(FormatMetricValue(2.5), "2.5");
  EXPECT_EQ(FormatMetricValue(0.0001), "0.0001");
  EXPECT_EQ(FormatMetricValue(0.00025), "0.00025");
  EXPECT_EQ(FormatMetricValue(1e-5), "1e-05");
  EXPECT_EQ(FormatMetricValue(1.5e-5), "1.5e-05");
  EXPECT_EQ(FormatMetricValue(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
}

TEST(ServerMetrics, SameNameAndLabelsGiveSameSeries) {
  Registry registry;
  Counter& a = registry.GetCounter("c_total", "help", {{"x", "1"}, {"y", "2"}});
  EXPECT_EQ(&registry.GetCounter("c_total", "other help is ignored", {{"x", "1"}, {"y", "2"}}), &a);
  // The same pairs in another order name the same series; the first order is rendered.
  EXPECT_EQ(&registry.GetCounter("c_total", "help", {{"y", "2"}, {"x", "1"}}), &a);
  EXPECT_NE(&registry.GetCounter("c_total", "help", {{"x", "1"}, {"y", "3"}}), &a);
  a.Inc(4);
  EXPECT_NE(registry.Render().find("# HELP c_total help\n"), std::string::npos);
  EXPECT_NE(registry.Render().find("c_total{x=\"1\",y=\"2\"} 4\n"), std::string::npos);
}

TEST(ServerMetrics, TypeConflictThrows) {
  Registry registry;
  registry.GetCounter("m", "help");
  EXPECT_THROW(registry.GetGauge("m", "help"), std::logic_error);
  EXPECT_THROW(registry.GetHistogram("m", "help", {}, {1}), std::logic_error);
  registry.GetHistogram("h", "help", {}, {1, 2});
  EXPECT_THROW(registry.GetCounter("h", "help"), std::logic_error);
  // Same histogram name with other buckets is a conflict too; the same buckets are not.
  EXPECT_THROW(registry.GetHistogram("h", "help", {{"a", "b"}}, {1, 3}), std::logic_error);
  EXPECT_NO_THROW(registry.GetHistogram("h", "help", {{"a", "b"}}, {1, 2}));
}

TEST(ServerMetrics, MisuseThrows) {
  Registry registry;
  EXPECT_THROW(registry.GetCounter("1abc", "help"), std::invalid_argument);
  EXPECT_THROW(registry.GetCounter("a-b", "help"), std::invalid_argument);
  EXPECT_THROW(registry.GetCounter("", "help"), std::invalid_argument);
  EXPECT_THROW(registry.GetCounter("ok", "help", {{"bad-name", "v"}}), std::invalid_argument);
  EXPECT_THROW(registry.GetCounter("ok", "help", {{"__reserved", "v"}}), std::invalid_argument);
  EXPECT_THROW(registry.GetCounter("ok", "help", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW(registry.GetHistogram("hist", "help", {{"le", "1"}}, {1}), std::invalid_argument);
  EXPECT_THROW(registry.GetHistogram("hist", "help", {}, {2, 1}), std::invalid_argument);
  EXPECT_THROW(registry.RemoveSeries({}), std::invalid_argument);
  // Failed calls register nothing.
  EXPECT_EQ(registry.Render(), "");

  Counter& c = registry.GetCounter("ns:ok_total", "help", {{"le", "fine outside histograms"}});
  EXPECT_THROW(c.Inc(-1), std::invalid_argument);
  EXPECT_THROW(c.Inc(std::nan("")), std::invalid_argument);
  c.Inc(0.5);
  EXPECT_EQ(c.Value(), 0.5);
}

// Removal restricted to named families: other families keep their matching series; unknown
// names are skipped; an empty list removes nothing.
TEST(ServerMetrics, RemoveSeriesOnlyInNamedFamilies) {
  Registry registry;
  const Labels v1 = {{"model", "a"}, {"version", "1"}};
  const Labels v2 = {{"model", "a"}, {"version", "2"}};
  for (const Labels& labels : {v1, v2}) {
    registry.GetCounter("req_total", "r", labels).Inc();
    registry.GetGauge("ready", "g", labels).Set(1);
    registry.GetCounter("load_failures_total", "f", labels).Inc(3);
  }
  EXPECT_THROW(registry.RemoveSeries({}, {"req_total"}), std::invalid_argument);
  EXPECT_EQ(registry.RemoveSeries(v1, {}), 0u);
  EXPECT_EQ(registry.RemoveSeries(v1, {"nope_total"}), 0u);
  EXPECT_EQ(registry.RemoveSeries(v1, {"req_total", "ready", "req_total"}), 2u);
  EXPECT_EQ(registry.RemoveSeries(v1, {"req_total", "ready"}), 0u);
  const std::string text = registry.Render();
  EXPECT_EQ(text.find("req_total{model=\"a\",version=\"1\"}"), std::string::npos) << text;
  EXPECT_EQ(text.find("ready{model=\"a\",version=\"1\"}"), std::string::npos) << text;
  EXPECT_NE(text.find("load_failures_total{model=\"a\",version=\"1\"} 3\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("req_total{model=\"a\",version=\"2\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ready{model=\"a\",version=\"2\"} 1\n"), std::string::npos) << text;
}

TEST(ServerMetrics, RemoveSeriesMatchesAllGivenLabels) {
  Registry registry;
  const std::vector<double> buckets = {10};
  for (const char* model : {"a", "b"}) {
    for (const char* version : {"1", "2"}) {
      const Labels labels = {{"model", model}, {"version", version}};
      registry.GetCounter("req_total", "r", labels).Inc();
      registry.GetHistogram("lat_us", "l", labels, buckets).Observe(5);
    }
  }
  registry.GetGauge("up", "u").Set(1);

  EXPECT_EQ(registry.RemoveSeries({{"version", "2"}, {"model", "a"}}), 2u);
  EXPECT_EQ(registry.RemoveSeries({{"model", "a"}, {"version", "2"}}), 0u);
  EXPECT_EQ(registry.RemoveSeries({{"model", "nope"}}), 0u);
  const std::string text = registry.Render();
  EXPECT_EQ(text.find("model=\"a\",version=\"2\""), std::string::npos) << text;
  EXPECT_NE(text.find("req_total{model=\"a\",version=\"1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("req_total{model=\"b\",version=\"2\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("lat_us_count{model=\"b\",version=\"2\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("\nup 1\n"), std::string::npos);

  // A removed series comes back fresh when asked for again.
  EXPECT_EQ(registry.GetCounter("req_total", "r", {{"model", "a"}, {"version", "2"}}).Value(), 0);

  // Removing every series of a family keeps the family (HELP and TYPE, no samples).
  EXPECT_EQ(registry.RemoveSeries({{"model", "b"}}), 4u);
  EXPECT_EQ(registry.RemoveSeries({{"model", "a"}}), 3u);
  EXPECT_EQ(registry.Render(),
            "# HELP req_total r\n# TYPE req_total counter\n"
            "# HELP lat_us l\n# TYPE lat_us histogram\n"
            "# HELP up u\n# TYPE up gauge\nup 1\n");
}

TEST(ServerMetrics, ConcurrentUpdatesLoseNothing) {
  Registry registry;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10000;
  const std::vector<double> buckets = {2, 5};
  std::latch start(kThreads);  // all threads update at once, so a lost update would show
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&registry, &buckets, &start] {
      start.arrive_and_wait();
      // Every thread looks the series up itself: creation races must yield one series.
      Histogram& h = registry.GetHistogram("h", "help", {{"k", "v"}}, buckets);
      Counter& c = registry.GetCounter("c_total", "help");
      Gauge& g = registry.GetGauge("g", "help");
      for (int i = 0; i < kPerThread; ++i) {
        h.Observe(i % 7);  // 0..6: three buckets hit
        c.Inc();
        g.Inc(2);
        g.Dec();
      }
    });
  }
  // Scrape concurrently with the updates; it must neither crash nor block them.
  for (int i = 0; i < 20; ++i) registry.Render();
  for (auto& thread : threads) thread.join();

  const Histogram& h = registry.GetHistogram("h", "help", {{"k", "v"}}, buckets);
  EXPECT_EQ(h.Count(), 40000u);
  // Per thread: 1428 full cycles of 0..6 (sum 21) plus 0, 1, 2, 3 (sum 6).
  EXPECT_EQ(h.Sum(), kThreads * (1428.0 * 21 + 6));
  // <= 2: values 0, 1, 2 -> 3 per cycle (+3 for the tail); <= 5: 6 per cycle (+4).
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<uint64_t>{kThreads * (1428u * 3 + 3),
                                                         kThreads * (1428u * 6 + 4), 40000u}));
  EXPECT_EQ(registry.GetCounter("c_total", "help").Value(), 40000);
  EXPECT_EQ(registry.GetGauge("g", "help").Value(), 40000);
}

TEST(ServerMetrics, CollectorsRunAtEveryRender) {
  Registry registry;
  int calls = 0;
  registry.AddCollector([&calls](Registry& r) {
    ++calls;
    r.GetGauge("scrapes", "Renders so far.").Set(calls);
  });
  EXPECT_NE(registry.Render().find("\nscrapes 1\n"), std::string::npos);
  EXPECT_NE(registry.Render().find("\nscrapes 2\n"), std::string::npos);
  EXPECT_EQ(calls, 2);
}

TEST(ServerMetrics, LatencyBucketsSpan100UsTo60s) {
  const std::vector<double> buckets = LatencyBucketsSeconds();
  ASSERT_FALSE(buckets.empty());
  EXPECT_EQ(buckets.front(), 0.0001);
  EXPECT_EQ(buckets.back(), 60);
  EXPECT_NO_THROW(Histogram{buckets});                              // strictly ascending and finite
  EXPECT_EQ(std::count(buckets.begin(), buckets.end(), 0.001), 1);  // 1 ms is a bound
  EXPECT_EQ(FormatMetricValue(buckets[0]), "0.0001");               // le="0.0001", not 1e-04
}

TEST(ServerMetrics, ProcessMetricsArePresentAndPlausible) {
  Registry registry;
  AddProcessMetrics(registry);
  const std::string first = registry.Render();
  EXPECT_NE(first.find("# TYPE cvdeploy_process_resident_memory_bytes gauge\n"), std::string::npos);
  EXPECT_NE(first.find("# TYPE cvdeploy_process_cpu_seconds_total counter\n"), std::string::npos);
  EXPECT_NE(first.find("# TYPE cvdeploy_process_start_time_seconds gauge\n"), std::string::npos);

  EXPECT_GT(SampleValue(first, "cvdeploy_process_resident_memory_bytes"), 1e6) << first;
  const double cpu_before = SampleValue(first, "cvdeploy_process_cpu_seconds_total");
  EXPECT_GE(cpu_before, 0) << first;
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double start = SampleValue(first, "cvdeploy_process_start_time_seconds");
  // Started before now (btime is whole seconds, start time whole ticks) and not days ago.
  EXPECT_LE(start, now + 2) << first;
  EXPECT_GT(start, now - 86400) << first;

  // Burn some CPU: the counter is refreshed at scrape and does not go backwards.
  volatile double x = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  while (std::chrono::steady_clock::now() < until) x = x + 1;
  const std::string second = registry.Render();
  EXPECT_GE(SampleValue(second, "cvdeploy_process_cpu_seconds_total"), cpu_before);
  EXPECT_GT(SampleValue(second, "cvdeploy_process_cpu_seconds_total"), 0) << second;
}

}  // namespace
}  // namespace cvdeploy::server
