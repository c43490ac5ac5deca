// SPDX-License-Identifier: Apache-2.0
// A served model version's data-drift monitor: the sliding window (cvdeploy/drift.h
// DriftWindow) of the last N image requests, fed by the scheduler's workers after inference
// from the decoded image, the request bytes and the result they already have; the PSI of every
// feature against the version's baseline as the gauges cvdeploy_drift_psi{model, version,
// feature}; a log line each time a feature changes level (ok/warn/alert), never per request;
// and the JSON report of GET /v1/models/{m}/drift.
// Thread-safe. Construct it inside the version's series lease (VersionSeriesLeases::Acquire)
// so that its gauges are removed with the version's other series; it must not be used after
// that lease is released (the scheduler that feeds it is stopped first).
#pragma once

#include <array>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cvdeploy/drift.h"
#include "server/metrics.h"
#include "server/model_config.h"

namespace cvdeploy::server {

// Where a version's baseline is: config.json's drift.baseline (already made absolute by
// ReadModelConfig), else baseline.json beside the model file when it exists; nullopt: none.
std::optional<std::string> FindDriftBaseline(const DriftConfig& config,
                                             const std::string& model_path);

class DriftMonitor {
 public:
  using Log = std::function<void(const std::string& level, const std::string& message)>;
  // Registers the gauges (one per feature) in `registry`. Throws Error(kBadInput) when the
  // baseline's class count differs from `classes` (the model's).
  DriftMonitor(drift::Baseline baseline, std::string baseline_path, const DriftConfig& config,
               int classes, Registry& registry, const std::string& model,
               const std::string& version, Log log);

  // Adds one request's observation, updates the gauges and logs level changes. Never throws.
  void Observe(const drift::Observation& observation) noexcept;
  // {"model", "version", "baseline", "baseline_images", "window": {"size", "filled"},
  //  "thresholds": {"warn", "alert"}, "alert", "features": {NAME: {"psi", "level"}}}
  nlohmann::ordered_json Report() const;

 private:
  const drift::Baseline baseline_;
  const std::string baseline_path_, model_, version_;
  const drift::Thresholds thresholds_;
  drift::DriftWindow window_;
  std::array<Gauge*, drift::kFeatureCount> gauges_{};
  Log log_;
  std::mutex levels_mu_;
  std::array<drift::Level, drift::kFeatureCount> levels_{};
};

}  // namespace cvdeploy::server
