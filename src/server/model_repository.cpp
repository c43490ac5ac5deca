// SPDX-License-Identifier: Apache-2.0
#include "server/model_repository.h"

#include "cvdeploy/golden.h"
#include "cvdeploy/security/model_source.h"

#include <algorithm>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>

#include "cvdeploy/error.h"
#include "cvdeploy/system.h"
#include "server/log.h"
#include "server/text_escape.h"

namespace cvdeploy::server {
namespace fs = std::filesystem;

// How long a version whose load failed for a reason outside its file (a key command that timed
// out, an unreadable trust store) waits before the next scan tries it again.
constexpr std::chrono::seconds kTransientRetry{30};

struct ModelRepository::Entry {
  std::string name;
  std::string file;    // --model PATH; empty for a repository model
  bool wanted = true;  // explicit control: loaded (true) or unloaded
  std::map<int64_t, std::shared_ptr<ModelVersion>> served;
  std::map<int64_t, std::string> loading;  // version -> signature
  // A version that failed: retried only when its file or the config it loads with changes,
  // or, for a failure of the environment rather than the file (the data key's command or file,
  // the trusted keys: kInvalidArgument), at the first scan after `retry_at`.
  struct Failure {
    std::string signature, reason;
    ModelConfig config;
    std::optional<std::chrono::steady_clock::time_point> retry_at;
  };
  std::map<int64_t, Failure> failed;
  std::string config_error;      // why config.json is rejected; empty while it is valid
  std::string config_error_key;  // reason + config.json's size and mtime: logged/counted once
};

namespace {

const char kLoadFailuresHelp[] =
    "Model versions that failed to load or warm up, broken model files, rejected config.json "
    "(version \"\")";

// Warm-up through the path live requests take (JPEG decode, letterbox, engine, NMS), on every
// instance at once and in full batches: the engine's arenas, each instance's workspace and
// the decoder's buffers are allocated before the version is visible, so neither the first
// requests' latency nor the resident memory moves once it serves. A scheduler without
// metrics runs it, so warm-up inferences are not counted as traffic.
void WarmUp(const ModelVersion& mv, SchedulerOptions options) {
  const int rounds = mv.config.warmup;
  if (rounds <= 0) return;
  const ModelMeta& meta = mv.predictor->meta();
  // Larger than the model input (a typical camera frame after resizing), below the 2x at
  // which JPEGs decode at reduced scale.
  cv::Mat image(meta.imgsz_h * 19 / 10, meta.imgsz_w * 19 / 10, CV_8UC3);
  cv::randu(image, 0, 255);
  std::vector<uint8_t> jpeg;
  cv::imencode(".jpg", image, jpeg);
  const int jobs = rounds * options.instances * options.max_batch;
  options.max_queue = static_cast<size_t>(jobs);
  Scheduler scheduler(mv.predictor, options, nullptr);
  std::mutex mu;
  std::condition_variable cv;
  int left = jobs;
  std::string failure;
  PredictOptions predict;
  predict.rect = mv.rect;  // the letterbox the version's requests get
  for (int i = 0; i < jobs; ++i) {
    Job job;
    job.work =
        ImageWork{std::string(jpeg.begin(), jpeg.end()), "warm-up image", predict, false, {}};
    job.enqueued = Clock::now();
    job.deadline = job.enqueued + std::chrono::hours(24);
    job.done = [&](JobResult r) {
      std::lock_guard<std::mutex> lock(mu);
      if (!r.status.ok() && failure.empty()) failure = r.status.message();
      if (--left == 0) cv.notify_all();
    };
    if (scheduler.Submit(std::move(job)) != Scheduler::Admission::kAccepted) {
      std::lock_guard<std::mutex> lock(mu);
      --left;
    }
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return left == 0; });
  }
  scheduler.Stop();
  if (!failure.empty()) throw RuntimeError("warm-up failed: " + failure);
}

}  // namespace

ModelRepository::ModelRepository(RepositoryOptions options, Registry& registry, RepositoryLog log)
    : options_(std::move(options)),
      registry_(registry),
      series_leases_(std::make_shared<VersionSeriesLeases>(registry)),
      log_(std::move(log)) {
  if (!log_) {
    log_ = [](const std::string& level, const std::string& message) { LogNamed(level, message); };
  }
  if (!options_.dir.empty()) {
    std::error_code ec;
    if (!fs::is_directory(options_.dir, ec)) {
      throw BadInput(options_.dir + ": model repository is not a directory");
    }
  }
  for (const auto& f : options_.files) {
    if (entries_.count(f.name)) throw InvalidArgument("model name '" + f.name + "' used twice");
    std::error_code ec;
    if (!fs::is_regular_file(f.path, ec)) throw BadInput(f.path + ": no such model file");
    auto e = std::make_unique<Entry>();
    e->name = f.name;
    e->file = f.path;
    entries_[f.name] = std::move(e);
  }
}

ModelRepository::~ModelRepository() {
  stopping_ = true;
  task_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  std::vector<std::shared_ptr<ModelVersion>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, e] : entries_) {
      for (auto& [v, mv] : e->served) all.push_back(mv);
      e->served.clear();
    }
  }
  for (auto& mv : all) Retire(mv);
}

void ModelRepository::Start() {
  worker_ = std::thread([this] { Loop(); });
  Enqueue([this] { InitialLoad(); });
}

void ModelRepository::Enqueue(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(task_mu_);
    tasks_.push_back(std::move(task));
  }
  task_cv_.notify_all();
}

void ModelRepository::Loop() {
  const bool polling = options_.control == ModelControl::kPoll && options_.poll_interval_s > 0;
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::max(options_.poll_interval_s, 0.01)));
  auto next_poll = Clock::now() + interval;
  while (!stopping_) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(task_mu_);
      auto ready = [&] { return stopping_.load() || !tasks_.empty(); };
      if (polling && startup_done_) {
        task_cv_.wait_until(lock, next_poll, ready);
      } else {
        task_cv_.wait(lock, [&] { return ready() || (polling && startup_done_.load()); });
      }
      if (stopping_) return;
      if (!tasks_.empty()) {
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
    }
    try {
      if (task) {
        task();
      } else if (polling && Clock::now() >= next_poll) {
        Poll();
        next_poll = Clock::now() + interval;
      }
    } catch (const std::exception& e) {
      log_("error", std::string("model repository: ") + e.what());
    }
  }
}

void ModelRepository::InitialLoad() {
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, e] : entries_) names.push_back(name);
    if (!options_.dir.empty()) {
      std::vector<std::string> repo_names;
      if (options_.control == ModelControl::kExplicit) {
        repo_names = options_.load_at_start;
      } else {
        for (const auto& [name, versions] : ScanRepository(options_.dir)) {
          repo_names.push_back(name);
        }
      }
      for (const auto& n : repo_names) {
        if (!entries_.count(n)) {
          EntryFor(n);
          names.push_back(n);
        }
      }
    }
  }
  std::vector<std::string> failures;
  for (const auto& n : names) {
    auto f = Reconcile(n);
    failures.insert(failures.end(), f.begin(), f.end());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    startup_failures_ = failures;
  }
  startup_done_ = true;
  task_cv_.notify_all();
}

void ModelRepository::Poll() {
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A model directory without any version yet (being deployed) is not a model yet.
    for (const auto& [name, versions] : ScanRepository(options_.dir)) {
      if (!versions.empty()) EntryFor(name);
    }
    for (const auto& [name, e] : entries_) names.push_back(name);
  }
  for (const auto& n : names) Reconcile(n);
}

ModelRepository::Entry& ModelRepository::EntryFor(const std::string& name) {
  auto& e = entries_[name];
  if (!e) {
    e = std::make_unique<Entry>();
    e->name = name;
  }
  return *e;
}

std::vector<std::string> ModelRepository::StartupFailures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return startup_failures_;
}

std::map<int64_t, VersionFile> ModelRepository::Available(const std::string& name) const {
  std::string file;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(name);
    if (it != entries_.end()) file = it->second->file;
  }
  if (!file.empty()) {
    auto probe = ProbeModelFile(file);
    if (!probe) return {};
    return {{1, std::move(*probe)}};
  }
  if (options_.dir.empty()) return {};
  auto all = ScanRepository(options_.dir);
  auto it = all.find(name);
  return it == all.end() ? std::map<int64_t, VersionFile>{} : it->second;
}

std::vector<std::string> ModelRepository::Reconcile(const std::string& name) {
  std::lock_guard<std::mutex> reconcile_lock(reconcile_mu_);
  std::vector<std::string> failures;
  bool wanted = true, from_file = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& e = *entries_.at(name);
    wanted = e.wanted;
    from_file = !e.file.empty();
  }
  ModelConfig config;
  if (!CurrentConfig(name, from_file, &config)) {
    std::lock_guard<std::mutex> lock(mu_);
    return {name + ": " + entries_.at(name)->config_error};
  }

  const auto available = wanted ? Available(name) : std::map<int64_t, VersionFile>{};
  std::vector<int64_t> versions;
  for (const auto& [v, f] : available) versions.push_back(v);
  const std::vector<int64_t> desired = config.version_policy.Select(versions);
  if (wanted && desired.empty()) {
    const std::string why = available.empty()
                                ? "no version directory with a model.onnx or model.cvdm"
                                : "no available version matches its version_policy";
    bool report = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      report = entries_.at(name)->served.empty();
    }
    if (report) failures.push_back(name + ": " + why);
  }

  std::vector<std::shared_ptr<ModelVersion>> retire;
  for (int64_t v : desired) {
    const VersionFile& file = available.at(v);
    std::string failure;
    if (!NeedsLoad(name, v, file, config, &failure)) {
      if (!failure.empty()) failures.push_back(failure);
      continue;
    }
    std::string error;
    bool transient = false;
    auto mv = LoadVersion(name, v, file, config, &error, &transient);
    std::lock_guard<std::mutex> lock(mu_);
    auto& e = *entries_.at(name);
    e.loading.erase(v);
    if (!mv) {
      e.failed[v] = Entry::Failure{file.signature, error, config, std::nullopt};
      if (transient) e.failed[v].retry_at = std::chrono::steady_clock::now() + kTransientRetry;
      failures.push_back(name + " version " + std::to_string(v) + ": " + error);
      continue;
    }
    e.failed.erase(v);
    auto& slot = e.served[v];
    // Same version, changed file or config: swapped atomically; requests already queued on
    // the old one finish there.
    if (slot) retire.push_back(slot);
    slot = mv;
  }
  {
    // Versions that left the policy go only once a desired version serves, so a broken
    // new version never leaves the model without any.
    std::lock_guard<std::mutex> lock(mu_);
    auto& e = *entries_.at(name);
    const bool any_desired_served = std::any_of(desired.begin(), desired.end(),
                                                [&](int64_t v) { return e.served.count(v) > 0; });
    if (any_desired_served || desired.empty()) {
      for (auto it = e.served.begin(); it != e.served.end();) {
        if (std::find(desired.begin(), desired.end(), it->first) == desired.end()) {
          retire.push_back(it->second);
          it = e.served.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
  for (auto& mv : retire) Retire(mv);
  // A polled model whose versions all left the repository is forgotten once retired: it
  // no longer holds readiness down, and requests for it are answered 404, not "loading".
  if (!from_file && wanted && available.empty() && options_.control == ModelControl::kPoll &&
      startup_done_) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(name);
    if (it != entries_.end() && it->second->served.empty() && it->second->loading.empty()) {
      entries_.erase(it);
      if (!retire.empty()) log_("info", "model '" + name + "' left the model repository");
    }
  }
  return failures;
}

bool ModelRepository::CurrentConfig(const std::string& name, bool from_file, ModelConfig* config) {
  *config = ModelConfig{};
  if (from_file) return true;
  const std::string dir = (fs::path(options_.dir) / name).string();
  std::string error;
  try {
    *config = ReadModelConfig(dir);
  } catch (const std::exception& ex) {
    error = ex.what();  // "DIR/config.json: reason"
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = *entries_.at(name);
  if (error.empty()) {
    if (!e.config_error.empty()) {
      log_("info", "model '" + name + "': " + dir + "/config.json accepted again");
    }
    e.config_error.clear();
    e.config_error_key.clear();
    return true;
  }
  // Read on every scan, but reported once per distinct content: the reason plus the file's
  // size and mtime (a rewrite with the same mistake is reported again).
  const auto probe = ProbeModelFile(dir + "/config.json");
  const std::string key = error + "\n" + (probe ? probe->signature : "");
  if (key != e.config_error_key) {
    log_("warning", "model '" + name + "': " + error + "; " +
                        (e.served.empty() ? "the model is not loaded"
                                          : "its versions keep serving with their current config"));
    registry_
        .GetCounter("cvdeploy_model_load_failures_total", kLoadFailuresHelp,
                    {{"model", name}, {"version", ""}})
        .Inc();
  }
  e.config_error = error;
  e.config_error_key = key;
  return false;
}

bool ModelRepository::NeedsLoad(const std::string& name, int64_t version, const VersionFile& file,
                                const ModelConfig& config, std::string* failure) {
  const std::string vs = std::to_string(version);
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = *entries_.at(name);
  const auto served = e.served.find(version);
  const bool serving = served != e.served.end();
  const auto failed = e.failed.find(version);
  if (!file.error.empty()) {
    // model.onnx is there but is not a regular file (a directory, a FIFO, ...): a broken
    // version, never opened; a version already loaded from it keeps serving.
    const std::string reason = file.path + ": " + file.error;
    if (failed == e.failed.end() || failed->second.signature != file.signature) {
      e.failed[version] = Entry::Failure{file.signature, reason, config, std::nullopt};
      log_("warning", "model '" + name + "' version " + vs + ": " + reason + "; " +
                          (serving ? "the version already loaded from it keeps serving"
                                   : "not loaded; versions already served keep serving"));
      registry_
          .GetCounter("cvdeploy_model_load_failures_total", kLoadFailuresHelp,
                      {{"model", name}, {"version", vs}})
          .Inc();
    }
    *failure = name + " version " + vs + ": " + reason;
    return false;
  }
  if (serving && served->second->signature == file.signature &&
      served->second->config.LoadsAlike(config)) {
    if (failed != e.failed.end()) {
      // The served file is back (e.g. after a broken replacement), or config.json returned to
      // the config this version serves with: nothing to load, nothing failed any more.
      e.failed.erase(failed);
      log_("info", "model '" + name + "' version " + vs +
                       ": back to the file and config it serves with; earlier failure cleared");
    }
    return false;
  }
  if (failed != e.failed.end() && failed->second.signature == file.signature &&
      failed->second.config.LoadsAlike(config) &&
      !(failed->second.retry_at && std::chrono::steady_clock::now() >= *failed->second.retry_at)) {
    *failure = name + " version " + vs + ": " + failed->second.reason;
    return false;
  }
  if (serving && served->second->signature == file.signature) {
    log_("info", "model '" + name + "' version " + vs +
                     ": config.json changed; reloading it with the new config");
  }
  e.loading[version] = file.signature;
  return true;
}

std::shared_ptr<ModelVersion> ModelRepository::LoadVersion(const std::string& name, int64_t version,
                                                           const VersionFile& file,
                                                           const ModelConfig& config,
                                                           std::string* error, bool* transient) {
  const std::string vs = std::to_string(version);
  const Labels labels{{"model", name}, {"version", vs}};
  log_("info", "loading model '" + name + "' version " + vs + " from " + file.path);
  const auto t0 = Clock::now();
  auto mv = std::make_shared<ModelVersion>();
  mv->name = name;
  mv->version = version;
  mv->path = file.path;
  mv->signature = file.signature;
  mv->config = config;
  mv->rect = config.rect.value_or(options_.rect);
  mv->graph_optimization = config.graph_optimization.value_or(options_.graph_optimization);
  try {
    // Read, parsed and hashed once: the description and the session come from one Model.
    ModelOptions model_options;
    model_options.max_model_bytes = options_.max_model_bytes;
    if (config.imgsz) model_options.imgsz = config.imgsz;
    security::OpenedModel opened = security::OpenModel(file.path, Protection(), model_options,
                                                       {.load_golden = options_.golden_gate});
    const Model model = opened.model.WithoutBytes();  // the description, for the checks below
    const ModelInfo& info = model.info();
    const bool batching = config.max_batch_size > 1;
    if (batching && info.meta.batch > 0 && info.meta.batch < config.max_batch_size) {
      throw BadInput("max_batch_size " + std::to_string(config.max_batch_size) +
                     " needs a dynamic batch axis, but the model's batch is fixed at " +
                     std::to_string(info.meta.batch) +
                     " (make it dynamic with cvdeploy convert --dynamic-batch)");
    }
    // Unset instances: 1 when batching (one call takes the queue), else the default split;
    // unset threads: the cores over the instances.
    const ThreadPlan plan = PlanThreads(
        PhysicalCores(), {.workers = config.instances ? config.instances : options_.instances,
                          .engine_threads = config.threads ? config.threads : options_.threads,
                          .single_call = batching,
                          .fit_workers_to_threads = false});
    const int instances = plan.workers, threads = plan.engine_threads;
    SessionOptions so;
    so.device = config.device;
    so.intra_op_threads = threads;
    so.spin = ResolveSpin(options_.spin, false);
    so.graph_optimization = mv->graph_optimization;
    so.max_model_bytes = options_.max_model_bytes;
    if (config.imgsz) so.imgsz = config.imgsz;
    // A package's plaintext is not kept once the session exists: the predictor keeps the
    // description only, and `opened` (the last holder) wipes the bytes when it goes.
    so.keep_model_bytes = !opened.encrypted;
    mv->predictor = Predictor::Create(opened.model, so);
    opened.DropModelBytes();  // a package's plaintext is wiped here, once the session exists
    if (opened.golden) CheckGoldenGate(*mv->predictor, *opened.golden, name, vs);
    mv->golden = !options_.golden_gate ? "off" : opened.golden ? "passed" : "none";
    for (const auto& w : mv->predictor->info().warnings) {
      log_("warning", "model '" + name + "' version " + vs + ": " + w);
    }
    // Shared with a version of the same number still draining; removed when the last goes.
    const auto baseline_path = FindDriftBaseline(config.drift, file.path);
    std::optional<drift::Baseline> baseline;
    const int classes = static_cast<int>(std::max<size_t>(1, mv->predictor->meta().names.size()));
    if (baseline_path) {
      baseline = drift::ReadBaseline(*baseline_path);
      if (baseline->histograms.classes != classes) {
        throw BadInput("drift baseline " + *baseline_path + ": profiled with " +
                       std::to_string(baseline->histograms.classes) + " classes, the model has " +
                       std::to_string(classes));
      }
    }
    mv->series_lease = series_leases_->Acquire(name, vs, [&] {
      mv->metrics = VersionMetrics::Create(registry_, name, vs);
      if (!baseline) return;
      mv->drift = std::make_shared<DriftMonitor>(std::move(*baseline), *baseline_path, config.drift,
                                                 classes, registry_, name, vs, log_);
    });
    SchedulerOptions so2;
    so2.instances = instances;
    so2.max_batch = std::max(1, config.max_batch_size);
    so2.max_delay = std::chrono::microseconds(config.max_queue_delay_us);
    so2.max_queue = config.max_queue_size
                        ? static_cast<size_t>(config.max_queue_size)
                        : static_cast<size_t>(16 * instances * std::max(1, config.max_batch_size));
    WarmUp(*mv, so2);
    so2.drift = mv->drift;  // after the warm-up, whose requests are not traffic
    mv->scheduler = std::make_unique<Scheduler>(mv->predictor, so2, &mv->metrics);
    mv->load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    registry_
        .GetGauge(kModelLoadDurationMetric, "Time to load and warm up the model version, seconds",
                  labels)
        .Set(mv->load_ms / 1000);
    registry_.GetGauge(kModelReadyMetric, "1 while the model version serves requests", labels)
        .Set(1);
    log_("info", "model '" + name + "' version " + vs + " ready in " +
                     std::to_string(static_cast<long>(mv->load_ms)) + " ms (" +
                     std::to_string(so2.instances) + " instance(s) x " + std::to_string(threads) +
                     " thread(s), max batch " + std::to_string(so2.max_batch) + ")");
    return mv;
  } catch (const std::exception& e) {
    *error = e.what();
    const auto* failure = dynamic_cast<const Error*>(&e);
    *transient = failure != nullptr && failure->code() == ErrorCode::kInvalidArgument;
    registry_.GetCounter("cvdeploy_model_load_failures_total", kLoadFailuresHelp, labels).Inc();
    log_("error", "model '" + name + "' version " + vs + " failed to load: " + *error +
                      "; versions already served keep serving");
    return nullptr;
  }
}

security::ModelProtection ModelRepository::Protection() const {
  security::ModelProtection p;
  p.decrypt_key_file = options_.decrypt_key_file;
  p.decrypt_key_cmd = options_.decrypt_key_cmd;
  p.trusted_keys_dir = options_.trusted_keys_dir;
  p.require_signed = options_.require_signed;
  return p;
}

void ModelRepository::CheckGoldenGate(const Predictor& predictor, const GoldenDir& golden,
                                      const std::string& name, const std::string& vs) {
  const auto t0 = Clock::now();
  const GoldenReport report = CheckGolden(predictor, golden.set, golden.inputs);
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  registry_
      .GetCounter("cvdeploy_model_golden_checks_total",
                  "Golden-set checks run before a model version may serve, by result",
                  {{"model", name}, {"version", vs}, {"result", report.passed ? "pass" : "fail"}})
      .Inc();
  if (!report.passed) throw BadInput("golden set: " + report.Summary());
  log_("info", "model '" + name + "' version " + vs + ": " + report.Summary() + " in " +
                   std::to_string(static_cast<long>(ms)) + " ms");
}

void ModelRepository::Retire(const std::shared_ptr<ModelVersion>& v) {
  log_("info", "unloading model '" + v->name + "' version " + v->VersionString() +
                   " after its queue drains");
  if (v->scheduler) v->scheduler->Stop();
  bool still_served = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(v->name);
    still_served = it != entries_.end() && it->second->served.count(v->version) > 0;
  }
  // Ready 0 while requests still hold the version; its series leave /metrics when the last
  // reference goes (its lease, model_metrics.h).
  if (!still_served) {
    registry_
        .GetGauge(kModelReadyMetric, "1 while the model version serves requests",
                  {{"model", v->name}, {"version", v->VersionString()}})
        .Set(0);
  }
}

bool ModelRepository::AllReady() const {
  if (!startup_done_) return false;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, e] : entries_) {
    if (e->wanted && e->served.empty()) return false;
  }
  return true;
}

Expected<std::shared_ptr<ModelVersion>> ModelRepository::Find(
    const std::string& name, std::optional<int64_t> version) const {
  // The name comes from the request path: quoted with its control bytes escaped.
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end() || !it->second->wanted) {
    return EscapedError(ErrorCode::kNotFound, "unknown model '" + name + "'");
  }
  const Entry& e = *it->second;
  if (version) {
    const std::string what = "model '" + name + "' version " + std::to_string(*version);
    if (auto s = e.served.find(*version); s != e.served.end()) return s->second;
    if (e.loading.count(*version))
      return EscapedError(ErrorCode::kUnavailable, what + " is loading");
    if (auto f = e.failed.find(*version); f != e.failed.end()) {
      return EscapedError(ErrorCode::kUnavailable, what + " failed to load: " + f->second.reason);
    }
    return EscapedError(ErrorCode::kNotFound, "unknown " + what);
  }
  if (!e.served.empty()) return e.served.rbegin()->second;
  if (!e.failed.empty()) {
    return EscapedError(ErrorCode::kUnavailable,
                        "model '" + name + "' is not ready: version " +
                            std::to_string(e.failed.rbegin()->first) +
                            " failed to load: " + e.failed.rbegin()->second.reason);
  }
  if (!e.config_error.empty()) {
    return EscapedError(ErrorCode::kUnavailable,
                        "model '" + name + "' is not ready: " + e.config_error);
  }
  return EscapedError(ErrorCode::kUnavailable, "model '" + name + "' is not ready yet (loading)");
}

bool ModelRepository::Known(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(name);
  return it != entries_.end() && it->second->wanted;
}

std::vector<int64_t> ModelRepository::ServedVersions(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> out;
  auto it = entries_.find(name);
  if (it == entries_.end()) return out;
  for (const auto& [v, mv] : it->second->served) out.push_back(v);
  return out;
}

nlohmann::json ModelRepository::Index() const {
  nlohmann::json out = nlohmann::json::array();
  std::set<std::string> listed;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, e] : entries_) {
    listed.insert(name);
    if (!e->wanted) {
      out.push_back({{"name", name}, {"state", "UNAVAILABLE"}, {"reason", "unloaded"}});
      continue;
    }
    for (const auto& [v, mv] : e->served) {
      out.push_back(
          {{"name", name}, {"version", std::to_string(v)}, {"state", "READY"}, {"reason", ""}});
    }
    for (const auto& [v, sig] : e->loading) {
      out.push_back(
          {{"name", name}, {"version", std::to_string(v)}, {"state", "LOADING"}, {"reason", ""}});
    }
    for (const auto& [v, f] : e->failed) {
      if (e->served.count(v)) continue;
      out.push_back({{"name", name},
                     {"version", std::to_string(v)},
                     {"state", "UNAVAILABLE"},
                     {"reason", f.reason}});
    }
  }
  if (!options_.dir.empty()) {
    for (const auto& [name, versions] : ScanRepository(options_.dir)) {
      if (!listed.count(name)) {
        out.push_back({{"name", name}, {"state", "UNAVAILABLE"}, {"reason", "not loaded"}});
      }
    }
  }
  return out;
}

void ModelRepository::LoadAsync(const std::string& name, ControlDone done) {
  Enqueue([this, name, done] {
    bool present = false;
    if (!options_.dir.empty()) present = ScanRepository(options_.dir).count(name) > 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = entries_.find(name);
      if (it != entries_.end() && !it->second->file.empty()) present = true;
      if (!present) {
        done(EscapedError(ErrorCode::kNotFound,
                          "model '" + name + "' is not in the model repository"));
        return;
      }
      EntryFor(name).wanted = true;
    }
    const auto failures = Reconcile(name);
    if (failures.empty()) return done(Status());
    std::string joined;
    for (const auto& f : failures) joined += (joined.empty() ? "" : "; ") + f;
    done(EscapedError(ErrorCode::kInvalidArgument, "failed to load " + joined));
  });
}

void ModelRepository::UnloadAsync(const std::string& name, ControlDone done) {
  Enqueue([this, name, done] {
    std::vector<std::shared_ptr<ModelVersion>> retire;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = entries_.find(name);
      if (it == entries_.end() || !it->second->wanted) {
        done(EscapedError(ErrorCode::kNotFound, "model '" + name + "' is not loaded"));
        return;
      }
      it->second->wanted = false;
      for (auto& [v, mv] : it->second->served) retire.push_back(mv);
      it->second->served.clear();
      it->second->failed.clear();
    }
    for (auto& mv : retire) Retire(mv);
    done(Status());
  });
}

}  // namespace cvdeploy::server
