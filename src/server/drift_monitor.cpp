// SPDX-License-Identifier: Apache-2.0
#include "server/drift_monitor.h"

#include <filesystem>
#include <sstream>

#include "cvdeploy/error.h"
#include "server/model_metrics.h"

namespace cvdeploy::server {

std::optional<std::string> FindDriftBaseline(const DriftConfig& config,
                                             const std::string& model_path) {
  if (!config.baseline.empty()) return config.baseline;
  const std::filesystem::path beside =
      std::filesystem::path(model_path).parent_path() / "baseline.json";
  std::error_code ec;
  if (std::filesystem::exists(beside, ec)) return beside.string();
  return std::nullopt;
}

DriftMonitor::DriftMonitor(drift::Baseline baseline, std::string baseline_path,
                           const DriftConfig& config, int classes, Registry& registry,
                           const std::string& model, const std::string& version, Log log)
    : baseline_(std::move(baseline)),
      baseline_path_(std::move(baseline_path)),
      model_(model),
      version_(version),
      thresholds_{config.warn, config.alert},
      window_(static_cast<size_t>(config.window), classes),
      log_(std::move(log)) {
  if (baseline_.histograms.classes != classes) {
    throw BadInput("drift baseline " + baseline_path_ + ": profiled with " +
                   std::to_string(baseline_.histograms.classes) + " classes, the model has " +
                   std::to_string(classes) + " (make it again with cvdeploy profile-data)");
  }
  for (int f = 0; f < drift::kFeatureCount; ++f) {
    gauges_[f] = &registry.GetGauge(
        kDriftPsiMetric,
        "Population Stability Index of a data-drift feature over the last requests against the "
        "model's baseline",
        {{"model", model}, {"version", version}, {"feature", std::string(drift::Spec(f).name)}});
  }
}

void DriftMonitor::Observe(const drift::Observation& observation) noexcept {
  try {
    window_.Add(observation);
    const drift::DriftReport report = drift::Compare(baseline_, window_.Snapshot(), thresholds_);
    std::lock_guard<std::mutex> lock(levels_mu_);
    for (int f = 0; f < drift::kFeatureCount; ++f) {
      const drift::FeatureDrift& d = report.features[f];
      gauges_[f]->Set(d.psi);
      if (d.level == levels_[f]) continue;
      std::ostringstream m;
      m.precision(3);
      m << "model '" << model_ << "' version " << version_ << ": drift feature '" << d.name << "' "
        << drift::LevelName(levels_[f]) << " -> " << drift::LevelName(d.level) << " (psi " << d.psi
        << ", warn " << thresholds_.warn << ", alert " << thresholds_.alert << ", window "
        << report.images << " of " << window_.capacity() << " requests)";
      levels_[f] = d.level;
      if (log_) log_(d.level == drift::Level::kOk ? "info" : "warning", m.str());
    }
  } catch (...) {
    // Monitoring never fails a request (out of memory in the window: this observation is lost).
  }
}

nlohmann::ordered_json DriftMonitor::Report() const {
  const drift::Histograms window = window_.Snapshot();
  const drift::DriftReport report = drift::Compare(baseline_, window, thresholds_);
  nlohmann::ordered_json features = nlohmann::ordered_json::object();
  for (const drift::FeatureDrift& d : report.features) {
    features[std::string(d.name)] = {{"psi", d.psi},
                                     {"level", std::string(drift::LevelName(d.level))}};
  }
  return {{"model", model_},
          {"version", version_},
          {"baseline", std::filesystem::path(baseline_path_).filename().string()},
          {"baseline_images", baseline_.histograms.images},
          {"window", {{"size", window_.capacity()}, {"filled", window.images}}},
          {"thresholds", {{"warn", thresholds_.warn}, {"alert", thresholds_.alert}}},
          {"alert", report.alert},
          {"features", features}};
}

}  // namespace cvdeploy::server
