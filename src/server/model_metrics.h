// SPDX-License-Identifier: Apache-2.0
// The per-model-version series of the server's metrics (Triton-style names with units),
// resolved once when a version loads so the request path never looks them up, and their
// lifetime: a version's series leave /metrics when the last ModelVersion that uses them goes
// (VersionSeriesLeases), so that no pointer into a removed series can be used.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "server/metrics.h"

namespace cvdeploy::server {

// Per-version families set by the repository when a version is ready.
inline constexpr char kModelReadyMetric[] = "cvdeploy_model_ready";
inline constexpr char kModelLoadDurationMetric[] = "cvdeploy_model_load_duration_seconds";
// {model, version, feature}: PSI of each drift feature (server/drift_monitor.h).
inline constexpr char kDriftPsiMetric[] = "cvdeploy_drift_psi";

// The families whose {model, version} series belong to a loaded version: VersionMetrics',
// the ready gauge, the load duration and the drift PSI gauges. Not among them: the load failure and
// golden check counters, which count load attempts and stay (an alert on their increase must see
// them).
const std::vector<std::string>& VersionSeriesFamilies();

// Reference counts of the versions whose series are in use. Two ModelVersion objects of one
// model version (a file swapped in while the old one drains) share one set of series; the
// series are removed from the registry when the last lease goes. Thread-safe; the registry
// must outlive every lease. Create with std::make_shared (leases keep the table alive).
class VersionSeriesLeases : public std::enable_shared_from_this<VersionSeriesLeases> {
 public:
  explicit VersionSeriesLeases(Registry& registry) : registry_(registry) {}
  // Takes a lease on the series of `model` `version` and runs `create` (which looks them up
  // in the registry) under the table's lock, so a removal cannot interleave. The series are
  // removed when the returned lease and every other lease on them are destroyed. When
  // `create` throws, the lease is not taken and the exception propagates.
  std::shared_ptr<const void> Acquire(const std::string& model, const std::string& version,
                                      const std::function<void()>& create);
  // Leases held on `model` `version` (for tests).
  int Holders(const std::string& model, const std::string& version) const;

 private:
  void Release(const std::pair<std::string, std::string>& key);

  Registry& registry_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, int> holders_;
};

struct VersionMetrics {
  Counter* success = nullptr;          // cvdeploy_inference_request_success_total
  Counter* failure = nullptr;          // cvdeploy_inference_request_failure_total
  Counter* inference_count = nullptr;  // inputs inferred (a batch of 4 counts 4)
  Counter* exec_count = nullptr;       // engine executions (average batch = count / exec)
  Gauge* pending = nullptr;            // requests waiting in the queue
  Histogram *request_seconds = nullptr, *queue_seconds = nullptr, *decode_seconds = nullptr,
            *preprocess_seconds = nullptr, *inference_seconds = nullptr,
            *postprocess_seconds = nullptr;

  static VersionMetrics Create(Registry& registry, const std::string& model,
                               const std::string& version);
};

}  // namespace cvdeploy::server
