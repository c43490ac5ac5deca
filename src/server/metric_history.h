// SPDX-License-Identifier: Apache-2.0
// Recent metric history for the dashboard (GET /v1/dashboard/history): per model, a bounded
// ring of points derived from successive snapshots of the model's counters and request
// latency histogram, taken by a background timer (dashboard.h), never on the request path.
//
// Each Record() call turns the difference between this snapshot and the previous one of the
// same model into one point: throughput (successful requests per second), error ratio
// (failures / all requests in the interval), queue depth (the gauge now) and latency p50, p95,
// p99 (estimated from the histogram's bucket deltas as Prometheus' histogram_quantile does).
// A counter that went down (a version swapped in, its series recreated) is treated as a reset:
// the new value is the delta. The first snapshot of a model only primes it (no point).
// Memory: at most `points` points per model; a model absent from a snapshot is dropped.
// Thread-safe: Record and the readers take one mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cvdeploy::server {

// One model's counters at one instant (its served version's series).
struct ModelCounters {
  std::string model, version;
  double success = 0, failure = 0;   // request counters (monotonic)
  double pending = 0;                // queue depth gauge
  std::vector<double> bounds;        // latency histogram bounds, seconds (no +Inf)
  std::vector<uint64_t> cumulative;  // cumulative counts, bounds.size() + 1 entries
};

struct HistoryPoint {
  double time_s = 0;          // Unix time of the snapshot, seconds
  double throughput_rps = 0;  // successful requests per second over the interval
  double error_ratio = 0;     // failures / (successes + failures) in the interval; 0 when none
  double queue_depth = 0;
  // Request latency in milliseconds; nullopt when no request completed in the interval.
  std::optional<double> p50_ms, p95_ms, p99_ms;
};

// The q-quantile (0 < q < 1) of observations counted in cumulative buckets (`cumulative` has
// bounds.size() + 1 entries, the last the +Inf bucket = the total), interpolated linearly
// inside the bucket that holds rank q * total (lower edge 0 for the first bucket); a rank in the
// +Inf bucket gives the last finite bound. nullopt when the total is 0 or the sizes disagree.
std::optional<double> QuantileFromBuckets(const std::vector<double>& bounds,
                                          const std::vector<uint64_t>& cumulative, double q);

class MetricHistory {
 public:
  // `points` >= 1: ring size per model; `interval_s` > 0 is reported in the JSON only.
  // Throws std::invalid_argument otherwise (a programming error: the CLI validates flags).
  MetricHistory(size_t points, double interval_s);

  // Adds one point per model of `snapshot` taken at `time_s` (see the file comment).
  void Record(double time_s, const std::vector<ModelCounters>& snapshot);

  // The points of `model`, oldest first (empty for an unknown model).
  std::vector<HistoryPoint> Points(const std::string& model) const;
  size_t capacity() const { return capacity_; }

  // {"interval_s", "points" (capacity), "models": {name: {"version", "samples": [{"t",
  // "throughput_rps", "error_ratio", "queue_depth", "p50_ms", "p95_ms", "p99_ms"}]}}}; latency
  // fields are null when no request completed. Only models `include(name)` accepts.
  template <typename Include>
  nlohmann::json ToJson(Include include) const;

 private:
  struct Series {
    ModelCounters last;
    double last_time_s = 0;
    std::deque<HistoryPoint> points;
  };
  static nlohmann::json PointJson(const HistoryPoint& p);

  const size_t capacity_;
  const double interval_s_;
  mutable std::mutex mu_;
  std::map<std::string, Series> series_;
};

template <typename Include>
nlohmann::json MetricHistory::ToJson(Include include) const {
  nlohmann::json models = nlohmann::json::object();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, s] : series_) {
    if (!include(name)) continue;
    nlohmann::json samples = nlohmann::json::array();
    for (const HistoryPoint& p : s.points) samples.push_back(PointJson(p));
    models[name] = {{"version", s.last.version}, {"samples", std::move(samples)}};
  }
  return {{"interval_s", interval_s_}, {"points", capacity_}, {"models", std::move(models)}};
}

}  // namespace cvdeploy::server
