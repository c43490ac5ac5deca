// SPDX-License-Identifier: Apache-2.0
#include "server/metric_history.h"

#include <algorithm>
#include <stdexcept>

namespace cvdeploy::server {
namespace {

// Counter delta with Prometheus' reset rule: a value that went down restarted from 0.
double Delta(double now, double before) { return now >= before ? now - before : now; }

// Per-bucket cumulative deltas; a reset (any bucket went down, or the layout changed) takes
// the current counts whole.
std::vector<uint64_t> BucketDelta(const ModelCounters& now, const ModelCounters& before) {
  if (now.bounds != before.bounds || now.cumulative.size() != before.cumulative.size()) {
    return now.cumulative;
  }
  std::vector<uint64_t> out(now.cumulative.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (now.cumulative[i] < before.cumulative[i]) return now.cumulative;
    out[i] = now.cumulative[i] - before.cumulative[i];
  }
  // A concurrent Observe may leave the snapshot's buckets a little out of order: keep the
  // deltas cumulative (non-decreasing).
  for (size_t i = 1; i < out.size(); ++i) out[i] = std::max(out[i], out[i - 1]);
  return out;
}

}  // namespace

std::optional<double> QuantileFromBuckets(const std::vector<double>& bounds,
                                          const std::vector<uint64_t>& cumulative, double q) {
  if (cumulative.size() != bounds.size() + 1 || bounds.empty()) return std::nullopt;
  const uint64_t total = cumulative.back();
  if (total == 0) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  size_t i = 0;
  while (i < bounds.size() && static_cast<double>(cumulative[i]) < rank) ++i;
  if (i == bounds.size()) return bounds.back();  // in the +Inf bucket
  const double lower = i == 0 ? 0.0 : bounds[i - 1];
  const double below = i == 0 ? 0.0 : static_cast<double>(cumulative[i - 1]);
  const double in_bucket = static_cast<double>(cumulative[i]) - below;
  if (in_bucket <= 0) return bounds[i];
  return lower + (bounds[i] - lower) * (rank - below) / in_bucket;
}

MetricHistory::MetricHistory(size_t points, double interval_s)
    : capacity_(points), interval_s_(interval_s) {
  if (points == 0) throw std::invalid_argument("MetricHistory: points must be >= 1");
  if (!(interval_s > 0)) throw std::invalid_argument("MetricHistory: interval_s must be > 0");
}

void MetricHistory::Record(double time_s, const std::vector<ModelCounters>& snapshot) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, Series> next;
  for (const ModelCounters& now : snapshot) {
    auto found = series_.find(now.model);
    if (found == series_.end()) {  // first sight: prime only
      next[now.model] = Series{now, time_s, {}};
      continue;
    }
    Series s = std::move(found->second);
    const double dt = time_s - s.last_time_s;
    if (dt > 0) {
      HistoryPoint p;
      p.time_s = time_s;
      const double ok = Delta(now.success, s.last.success);
      const double failed = Delta(now.failure, s.last.failure);
      p.throughput_rps = ok / dt;
      p.error_ratio = ok + failed > 0 ? failed / (ok + failed) : 0.0;
      p.queue_depth = now.pending;
      const std::vector<uint64_t> d = BucketDelta(now, s.last);
      auto ms = [&](double q) -> std::optional<double> {
        auto seconds = QuantileFromBuckets(now.bounds, d, q);
        if (!seconds) return std::nullopt;
        return *seconds * 1000.0;
      };
      p.p50_ms = ms(0.50);
      p.p95_ms = ms(0.95);
      p.p99_ms = ms(0.99);
      s.points.push_back(p);
      while (s.points.size() > capacity_) s.points.pop_front();
    }
    s.last = now;
    s.last_time_s = time_s;
    next[now.model] = std::move(s);
  }
  series_ = std::move(next);
}

std::vector<HistoryPoint> MetricHistory::Points(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = series_.find(model);
  if (it == series_.end()) return {};
  return {it->second.points.begin(), it->second.points.end()};
}

nlohmann::json MetricHistory::PointJson(const HistoryPoint& p) {
  auto opt = [](const std::optional<double>& v) -> nlohmann::json {
    if (!v) return nullptr;
    return *v;
  };
  return {{"t", p.time_s},
          {"throughput_rps", p.throughput_rps},
          {"error_ratio", p.error_ratio},
          {"queue_depth", p.queue_depth},
          {"p50_ms", opt(p.p50_ms)},
          {"p95_ms", opt(p.p95_ms)},
          {"p99_ms", opt(p.p99_ms)}};
}

}  // namespace cvdeploy::server
