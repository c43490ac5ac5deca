// SPDX-License-Identifier: Apache-2.0
// Prometheus metrics for the server: counters, gauges and histograms kept in a thread-safe
// registry and rendered in the text exposition format 0.0.4 for GET /metrics.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace cvdeploy::server {

// Label name/value pairs of one series, rendered in the order given. Two lists with the same
// pairs in another order name the same series (the first order seen is the one rendered).
using Labels = std::vector<std::pair<std::string, std::string>>;

// Misuse of this module (bad metric or label name, a name reused with another type or other
// buckets, a negative counter increment) is a programming error: it throws std::logic_error or
// its subclass std::invalid_argument, not cvdeploy::Error: it is a bug in the caller, not bad
// input from a client.

// A monotonically increasing value. Thread-safe and lock-free: every method is one atomic
// operation on a double (Inc a compare-exchange loop), relaxed: a metric orders nothing else.
class Counter {
 public:
  // Adds v (>= 0). Throws std::invalid_argument when v is negative or NaN.
  void Inc(double v = 1);
  double Value() const { return value_.load(std::memory_order_relaxed); }

  // For collectors only: mirrors a total that something else keeps monotonic (e.g. the
  // process CPU time the kernel counts), overwriting the value at scrape time. Code that
  // counts events itself uses Inc.
  void SetCollected(double total) { value_.store(total, std::memory_order_relaxed); }

 private:
  static_assert(std::atomic<double>::is_always_lock_free);
  std::atomic<double> value_{0};
};

// A value that goes up and down. Thread-safe and lock-free (relaxed atomics).
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1) { value_.fetch_add(v, std::memory_order_relaxed); }
  void Dec(double v = 1) { value_.fetch_sub(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into buckets by upper bound (a value v falls in the first bucket whose
// bound b has v <= b, Prometheus' "le"; NaN and values above the last bound fall only in the
// implicit +Inf bucket) plus their sum. Thread-safe without a lock: Observe is a binary search,
// an atomic increment of one bucket and a compare-exchange add to the sum (all relaxed), so no
// observation is lost under concurrency. A reader running
// concurrently with Observe may see the sum a few observations ahead of or behind the counts.
class Histogram {
 public:
  // `bounds`: finite upper bounds, strictly ascending; a trailing +Inf is dropped (it is
  // implicit). Throws std::invalid_argument otherwise.
  explicit Histogram(std::vector<double> bounds);

  void Observe(double v);

  // Number of observations (the +Inf bucket).
  uint64_t Count() const;
  double Sum() const { return sum_.load(std::memory_order_relaxed); }
  // Finite upper bounds, ascending, without the implicit +Inf.
  const std::vector<double>& Bounds() const { return bounds_; }
  // Cumulative counts, one per bound plus the last for +Inf (== the count in the same snapshot).
  std::vector<uint64_t> CumulativeCounts() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; size+1
  std::atomic<double> sum_{0};
};

// A thread-safe registry of metric families, rendered for Prometheus.
//
// Get* creates the family on first use (name, help, type and, for histograms, buckets are fixed
// then: a later call with the same name and another type or other buckets throws
// std::logic_error; another help is ignored) and the series for `labels` on first use. Metric
// names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* without a leading
// "__", unique within a series; "le" is reserved in histograms. The returned reference stays
// valid until RemoveSeries removes that series or the registry is destroyed. Get* takes a
// mutex: callers look the series up once and cache the reference for the hot path.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  // `buckets`: upper bounds as for Histogram (ascending, +Inf implicit), e.g.
  // LatencyBucketsSeconds().
  Histogram& GetHistogram(const std::string& name, const std::string& help, const Labels& labels,
                          const std::vector<double>& buckets);

  // Removes every series, of every family, whose labels contain all pairs of `match` (e.g.
  // {{"model", "a"}, {"version", "2"}} when that model version is unloaded) and returns how many
  // it removed. Families stay registered. References to removed series become invalid, so call
  // it only once nothing still uses them. Throws std::invalid_argument when `match` is empty
  // (that would remove everything).
  size_t RemoveSeries(const Labels& match);
  // The same, only in the families named in `families` (names not registered are skipped;
  // an empty list removes nothing).
  size_t RemoveSeries(const Labels& match, const std::vector<std::string>& families);

  // Adds a function that Render calls, outside the registry's lock, before rendering (e.g. to
  // refresh process gauges). It may call Get*. Concurrent Renders may run collectors
  // concurrently, so a collector must be thread-safe.
  void AddCollector(std::function<void(Registry&)> collect);

  // Runs the collectors, then renders the text exposition format 0.0.4: per family "# HELP"
  // (omitted when help is empty) and "# TYPE" then its series; families in registration order,
  // series in creation order; histograms as name_bucket{...,le="b"} (cumulative, ending with
  // le="+Inf"), name_sum and name_count. Non-const because collectors update the registry.
  std::string Render();

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family;
  struct Series;

  static const char* TypeName(Type type);
  // Both require mutex_ held; the labels are already validated.
  Family& FamilyFor(const std::string& name, const std::string& help, Type type,
                    const std::vector<double>* buckets);
  Series& SeriesFor(Family& family, const Labels& labels);
  // Removes the series of `family` whose labels contain `match`; mutex_ held.
  static size_t RemoveFrom(Family& family, const Labels& match);

  std::mutex mutex_;  // guards everything below (the metric values are atomics)
  std::vector<std::unique_ptr<Family>> families_;            // registration order
  std::unordered_map<std::string, Family*> family_by_name_;  // into families_
  std::vector<std::function<void(Registry&)>> collectors_;
};

// A sample value as the exposition format spells it: integers (|v| < 2^53) without exponent or
// decimals, other finite values in the shortest form that round-trips, "+Inf", "-Inf", "NaN".
std::string FormatMetricValue(double v);

// Histogram bounds for request and inference latency in seconds (the base unit Prometheus
// names use: ..._duration_seconds): 100 us to 60 s in 1-2.5-5 steps up to 10 s, then 30 s and
// 60 s. Dense where CV inference lands (1 ms to 1 s), with a top bound at a typical request
// timeout.
std::vector<double> LatencyBucketsSeconds();

// Registers, on Linux, process metrics refreshed at every Render:
//   cvdeploy_process_resident_memory_bytes (gauge; VmRSS from /proc/self/status),
//   cvdeploy_process_cpu_seconds_total (counter; utime + stime from /proc/self/stat over
//     sysconf(_SC_CLK_TCK), mirrored with Counter::SetCollected since the kernel keeps it
//     monotonic),
//   cvdeploy_process_start_time_seconds (gauge; Unix time, set once here from /proc/stat btime
//     plus the process start time).
// A value that cannot be read stays at its last value (0 at first). Call once per registry.
void AddProcessMetrics(Registry& registry);

}  // namespace cvdeploy::server
