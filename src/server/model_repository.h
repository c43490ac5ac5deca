// SPDX-License-Identifier: Apache-2.0
// The served models: loaded from a repository (DIR/<name>/<version>/model.onnx with an
// optional DIR/<name>/config.json) and/or single files (--model PATH[:name], version 1).
// A version becomes visible to requests only after its warm-up; a new or changed version
// (model file or config.json) is loaded and warmed in the background and swapped in
// atomically; versions that leave the policy are removed from lookup first and unloaded after
// their queue drains. A version that fails to load, a model.onnx that is not a regular file
// and a rejected config.json are reported (log, metric, index) and the versions already
// serving keep serving. A version's per-version metric series leave the registry when the
// last reference to that version goes (model_metrics.h).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cvdeploy/golden.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/security/model_source.h"
#include "cvdeploy/server.h"
#include "cvdeploy/status.h"
#include "server/metrics.h"
#include "server/model_config.h"
#include "server/model_metrics.h"
#include "server/scheduler.h"

namespace cvdeploy::server {

struct ModelVersion {
  // The lease on this version's metric series (VersionSeriesLeases): first, so it is released
  // last, after the scheduler that reports into `metrics` is gone.
  std::shared_ptr<const void> series_lease;
  std::string name;
  int64_t version = 0;
  std::string path, signature;
  ModelConfig config;
  bool rect = true;  // config.rect, else the server's default (RepositoryOptions::rect)
  // config.graph_optimization, else the server's (RepositoryOptions::graph_optimization)
  GraphOptimization graph_optimization = GraphOptimization::kAll;
  std::shared_ptr<const Predictor> predictor;
  VersionMetrics metrics;
  std::shared_ptr<DriftMonitor> drift;  // null without a baseline (drift_monitor.h)
  std::unique_ptr<Scheduler> scheduler;
  double load_ms = 0;
  // The golden gate's result: "passed", "none" (no golden set) or "off" (--golden-gate off).
  std::string golden;
  std::string VersionString() const { return std::to_string(version); }
};

// Log sink for load events (one line each); defaults to stderr.
using RepositoryLog = std::function<void(const std::string& level, const std::string& message)>;

class ModelRepository {
 public:
  ModelRepository(RepositoryOptions options, Registry& registry, RepositoryLog log);
  ~ModelRepository();  // stops polling, drains and unloads every version

  // Loads everything configured on a background thread, then starts polling (kPoll).
  void Start();
  // Initial load finished (successfully or not).
  bool StartupDone() const { return startup_done_.load(); }
  // Failures of the initial load ("name version N: reason"); valid once StartupDone().
  std::vector<std::string> StartupFailures() const;
  // Every model that should be served has a ready version (and the initial load is over).
  bool AllReady() const;

  // Looks up a ready version: `version` nullopt: the highest served one. Otherwise kNotFound
  // (unknown model or version) or kUnavailable (loading, failed to load, not ready), with a
  // message naming the model and the reason. Never null when ok.
  Expected<std::shared_ptr<ModelVersion>> Find(const std::string& name,
                                               std::optional<int64_t> version) const;
  // Whether `name` is known (configured, loading, served or failed).
  bool Known(const std::string& name) const;
  // Served versions, ascending.
  std::vector<int64_t> ServedVersions(const std::string& name) const;
  // KServe repository index: [{"name","version","state","reason"}].
  nlohmann::json Index() const;

  // Explicit model control, run on the repository's thread (never an I/O thread); `done`
  // gets ok, or kNotFound for a model the repository lacks (or, unloading, one not loaded),
  // or kInvalidArgument with the load failures (the request asked for a model that cannot
  // be loaded).
  using ControlDone = std::function<void(const Status& status)>;
  void LoadAsync(const std::string& name, ControlDone done);
  void UnloadAsync(const std::string& name, ControlDone done);

 private:
  struct Entry;
  void Enqueue(std::function<void()> task);
  void Loop();
  void InitialLoad();
  void Poll();
  Entry& EntryFor(const std::string& name);  // creates a repository entry; mu_ held
  // Brings `name` to its desired versions: loads what is new or changed, retires what left.
  // Returns failure messages of this pass.
  std::vector<std::string> Reconcile(const std::string& name);
  std::map<int64_t, VersionFile> Available(const std::string& name) const;
  // The config `name` loads with now: its config.json, read and validated on every scan. A
  // rejected one (unreadable, not JSON, too deep, invalid) is logged and counted once per
  // distinct content, and false is returned: the versions serving keep their config.
  bool CurrentConfig(const std::string& name, bool from_file, ModelConfig* config);
  // Whether `version` must be (re)loaded from `file` with `config`: it is not served from
  // that file with an equivalent config, and did not already fail with both. Marks it loading
  // when true. Sets *failure when the version is broken (a model.onnx that is not a regular
  // file: logged, counted, never loaded) or failed before with the same file and config.
  bool NeedsLoad(const std::string& name, int64_t version, const VersionFile& file,
                 const ModelConfig& config, std::string* failure);
  std::shared_ptr<ModelVersion> LoadVersion(const std::string& name, int64_t version,
                                            const VersionFile& file, const ModelConfig& config,
                                            std::string* error, bool* transient);
  void Retire(const std::shared_ptr<ModelVersion>& v);
  security::ModelProtection Protection() const;
  // Runs the version's golden set (cvdeploy/golden.h) on its predictor; throws
  // Error(kBadInput) "golden set: <first finding>" when it does not pass.
  void CheckGoldenGate(const Predictor& predictor, const GoldenDir& golden, const std::string& name,
                       const std::string& vs);

  RepositoryOptions options_;
  Registry& registry_;
  std::shared_ptr<VersionSeriesLeases> series_leases_;
  RepositoryLog log_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  std::mutex reconcile_mu_;  // one reconcile at a time (poll thread vs. explicit control)
  std::atomic<bool> startup_done_{false}, stopping_{false};
  std::vector<std::string> startup_failures_;
  std::thread worker_;
  std::mutex task_mu_;
  std::condition_variable task_cv_;
  std::deque<std::function<void()>> tasks_;
};

}  // namespace cvdeploy::server
