// SPDX-License-Identifier: Apache-2.0
// Per-model-version request scheduling: a bounded queue served by `instances` worker
// threads, each running one engine call at a time. With max_batch > 1 a worker groups
// compatible requests until the batch is full or the oldest has waited max_delay (dynamic
// batching). Requests whose deadline passes while queued are answered kDeadlineExceeded and
// never run.
// Workers also decode images, so I/O threads only parse HTTP.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "cvdeploy/annotate.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/status.h"
#include "server/drift_monitor.h"
#include "server/model_metrics.h"
#include "server/trace_context.h"

namespace cvdeploy::server {

using Clock = std::chrono::steady_clock;

// An encoded image for the image endpoint.
struct ImageWork {
  std::string bytes;  // as received
  std::string name;   // for messages ("request body", "form field 'image'")
  PredictOptions options;
  bool annotate = false;    // also return the annotated image as JPEG
  AnnotateOptions style;    // how it is drawn (line_width, hide_labels, hide_conf)
  bool keep_bytes = false;  // hand `bytes` back in JobResult::input (a sampled request)
};

// A preprocessed tensor for KServe v2 infer: [B, 3, H, W] float32. It views bytes that
// `owner` keeps alive (the request body for binary data, the decoded request for JSON data):
// the scheduler's PrepareTensors copies them into the engine's input, the only copy between
// the body and the engine.
struct TensorWork {
  TensorView input;
  std::shared_ptr<const void> owner;
};

struct JobResult {
  Status status;               // ok, or why the job failed (the handler maps the code)
  Result result;               // ImageWork
  std::string annotated_jpeg;  // ImageWork with annotate
  std::string input;           // ImageWork with keep_bytes: the request's bytes, moved back
  // TensorWork: every model output, this job's rows only, viewing the engine's output buffers
  // in `batch`; the batch (and so the views) lives until the last job of the engine call has
  // its response encoded, which copies each output once into the body.
  std::vector<NamedTensorView> outputs;
  std::shared_ptr<const Batch> batch;
  int batch_size = 0;  // inputs in the engine call that served it
  // How long each stage took for this job (encode is the handler's, left -1 here).
  StageTimings timings;
};

struct Job {
  std::variant<ImageWork, TensorWork> work;
  Clock::time_point enqueued, deadline;
  StageTimings timings;              // filled by the scheduler as the job goes (queue first)
  std::string request_id, trace_id;  // event lines about the job name them (log.h)
  // Called exactly once, on a worker thread (or by Stop for a job never run), with status
  // kUnavailable when the server ran out of memory running it.
  std::function<void(JobResult)> done;
};

struct SchedulerOptions {
  int instances = 1;
  int max_batch = 1;
  std::chrono::microseconds max_delay{0};
  size_t max_queue = 64;
  // Fed with every image request's observation after inference (data-drift monitoring).
  std::shared_ptr<DriftMonitor> drift;
};

class Scheduler {
 public:
  // `metrics` must outlive the scheduler.
  Scheduler(std::shared_ptr<const Predictor> predictor, SchedulerOptions options,
            const VersionMetrics* metrics);
  ~Scheduler();  // Stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class Admission { kAccepted, kQueueFull, kStopped };
  // On kAccepted the job is moved in and its `done` will be called; otherwise `job` is left
  // untouched and `done` is not called.
  Admission Submit(Job&& job);
  // Stops accepting, lets the workers finish every queued job, joins them. Idempotent.
  void Stop();
  size_t Pending() const;
  const SchedulerOptions& options() const { return options_; }

 private:
  void Worker();
  // Moves up to max_batch jobs compatible with the first into `batch`; lock held.
  void TakeCompatible(std::vector<Job>& batch);
  void Execute(std::vector<Job>& batch);
  void ExecuteImages(std::vector<Job>& batch);
  void ExecuteTensors(std::vector<Job>& batch);

  std::shared_ptr<const Predictor> predictor_;
  SchedulerOptions options_;
  const VersionMetrics* metrics_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace cvdeploy::server
