// SPDX-License-Identifier: Apache-2.0
#include "server/scheduler.h"

#include <opencv2/imgcodecs.hpp>

#include "cvdeploy/annotate.h"
#include "cvdeploy/drift.h"
#include "cvdeploy/error.h"
#include "cvdeploy/image.h"
#include "server/log.h"

namespace cvdeploy::server {
namespace {

double UsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

int Inputs(const Job& job) {
  if (const auto* t = std::get_if<TensorWork>(&job.work)) {
    return static_cast<int>(t->input.shape()[0]);
  }
  return 1;
}

bool Compatible(const Job& a, const Job& b) {
  if (a.work.index() != b.work.index()) return false;
  if (const auto* ia = std::get_if<ImageWork>(&a.work)) {
    const PredictOptions& ob = std::get<ImageWork>(b.work).options;
    return ia->options.imgsz == ob.imgsz && ia->options.rect == ob.rect;
  }
  const auto& ta = std::get<TensorWork>(a.work).input.shape();
  const auto& tb = std::get<TensorWork>(b.work).input.shape();
  return std::equal(ta.begin() + 1, ta.end(), tb.begin() + 1, tb.end());
}

// Answers `job`. Its callback is taken out first, so that the safety net in Execute never
// answers a job twice.
void Finish(Job& job, JobResult result) {
  if (result.timings.queue_ms < 0) result.timings.queue_ms = job.timings.queue_ms;
  auto done = std::move(job.done);
  job.done = nullptr;
  if (done) done(std::move(result));
}

void Fail(Job& job, const Status& status) {
  JobResult r;
  r.status = status;
  Finish(job, std::move(r));
}

// Running out of memory is the server's momentary state, not the request's fault: retry.
Status OutOfMemory() {
  return Status(ErrorCode::kUnavailable, "out of memory while running the request; retry later");
}

}  // namespace

Scheduler::Scheduler(std::shared_ptr<const Predictor> predictor, SchedulerOptions options,
                     const VersionMetrics* metrics)
    : predictor_(std::move(predictor)), options_(options), metrics_(metrics) {
  options_.instances = std::max(1, options_.instances);
  options_.max_batch = std::max(1, options_.max_batch);
  for (int i = 0; i < options_.instances; ++i) workers_.emplace_back([this] { Worker(); });
}

Scheduler::~Scheduler() { Stop(); }

Scheduler::Admission Scheduler::Submit(Job&& job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Admission::kStopped;
    if (queue_.size() >= options_.max_queue) return Admission::kQueueFull;
    queue_.push_back(std::move(job));
    if (metrics_) metrics_->pending->Set(static_cast<double>(queue_.size()));
  }
  cv_.notify_one();
  return Admission::kAccepted;
}

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
}

size_t Scheduler::Pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void Scheduler::TakeCompatible(std::vector<Job>& batch) {
  int size = 0;
  for (const auto& j : batch) size += Inputs(j);
  for (auto it = queue_.begin(); it != queue_.end() && size < options_.max_batch;) {
    if (Compatible(batch.front(), *it) && size + Inputs(*it) <= options_.max_batch) {
      size += Inputs(*it);
      batch.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
}

void Scheduler::Worker() {
  std::vector<Job> batch;
  while (true) {
    batch.clear();
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
      if (options_.max_batch > 1) {
        // Wait for the batch to fill, but never keep the oldest request beyond max_delay.
        const auto fill_by = batch.front().enqueued + options_.max_delay;
        while (true) {
          TakeCompatible(batch);
          int size = 0;
          for (const auto& j : batch) size += Inputs(j);
          if (size >= options_.max_batch || stopping_ || Clock::now() >= fill_by) break;
          cv_.wait_until(lock, fill_by);
        }
      }
      if (metrics_) metrics_->pending->Set(static_cast<double>(queue_.size()));
    }
    Execute(batch);
  }
}

void Scheduler::Execute(std::vector<Job>& batch) {
  // A request whose deadline passed while it waited is answered, not run late.
  const auto now = Clock::now();
  std::vector<Job> live;
  live.reserve(batch.size());
  for (auto& job : batch) {
    const double waited_us = std::chrono::duration<double, std::micro>(now - job.enqueued).count();
    if (metrics_) metrics_->queue_seconds->Observe(waited_us * 1e-6);
    job.timings.queue_ms = waited_us / 1000;
    if (now > job.deadline) {
      Fail(job, DeadlineExceeded("deadline passed after " +
                                 std::to_string(static_cast<long>(waited_us / 1000)) +
                                 " ms in the queue; the request was not executed"));
    } else {
      live.push_back(std::move(job));
    }
  }
  if (live.empty()) return;
  try {
    if (std::holds_alternative<ImageWork>(live.front().work)) {
      ExecuteImages(live);
    } else {
      ExecuteTensors(live);
    }
  } catch (...) {
    // Whatever escaped (out of memory splitting a batch's outputs, ...): the jobs not answered
    // yet are answered now, and the worker thread goes on.
    bool out_of_memory = false;
    try {
      throw;
    } catch (const std::bad_alloc&) {
      out_of_memory = true;
    } catch (...) {
    }
    for (auto& job : live) {
      Fail(job, out_of_memory
                    ? OutOfMemory()
                    : Status(ErrorCode::kRuntime, "internal error while running the request"));
    }
  }
}

void Scheduler::ExecuteImages(std::vector<Job>& batch) {
  const ModelMeta& meta = predictor_->meta();
  std::vector<cv::Mat> images;
  std::vector<cv::Size> originals;
  std::vector<PredictOptions> options;
  std::vector<Job*> jobs;
  std::vector<double> decode_ms;
  for (auto& job : batch) {
    auto& w = std::get<ImageWork>(job.work);
    const int side = w.options.imgsz;
    const cv::Size model_input =
        side > 0 ? cv::Size(side, side) : cv::Size(meta.imgsz_w, meta.imgsz_h);
    const auto t0 = Clock::now();
    try {
      cv::Size original;
      const auto* data = reinterpret_cast<const uint8_t*>(w.bytes.data());
      cv::Mat image;
      if (w.annotate) {  // drawing needs the full-resolution image
        image = DecodeImage(std::vector<uint8_t>(data, data + w.bytes.size()), w.name);
        original = image.size();
      } else {
        image = DecodeImageForModel(data, w.bytes.size(), w.name, model_input, &original);
      }
      const double us = UsSince(t0);
      if (metrics_) metrics_->decode_seconds->Observe(us * 1e-6);
      images.push_back(std::move(image));
      originals.push_back(original);
      options.push_back(w.options);
      jobs.push_back(&job);
      decode_ms.push_back(us / 1000);
    } catch (const Error& e) {
      Fail(job, e);  // undecodable data is the core's kBadInput (422)
    } catch (const std::bad_alloc&) {
      Fail(job, OutOfMemory());
    } catch (const std::exception& e) {
      Fail(job, RuntimeError(std::string("decoding failed: ") + e.what()));
    }
  }
  if (jobs.empty()) return;

  std::vector<Result> results;
  try {
    results = predictor_->PredictBatch(images, options);
  } catch (const Error& e) {
    for (Job* j : jobs) Fail(*j, e);
    return;
  } catch (const std::bad_alloc&) {
    for (Job* j : jobs) Fail(*j, OutOfMemory());
    return;
  } catch (const std::exception& e) {
    for (Job* j : jobs) Fail(*j, RuntimeError(std::string("inference failed: ") + e.what()));
    return;
  }
  const int n = static_cast<int>(jobs.size());
  if (metrics_) {
    metrics_->inference_count->Inc(n);
    metrics_->exec_count->Inc(meta.batch > 0 ? (n + meta.batch - 1) / meta.batch : 1);
  }
  for (int i = 0; i < n; ++i) {
    Result& r = results[i];
    if (originals[i] != images[i].size()) RescaleResult(r, originals[i]);
    r.speed_ms.decode = decode_ms[i];
    if (metrics_) {
      metrics_->preprocess_seconds->Observe(r.speed_ms.preprocess * 1e-3);
      metrics_->inference_seconds->Observe(r.speed_ms.inference * 1e-3);
      metrics_->postprocess_seconds->Observe(r.speed_ms.postprocess * 1e-3);
    }
    JobResult out;
    out.batch_size = n;
    out.timings = jobs[i]->timings;
    out.timings.decode_ms = r.speed_ms.decode;
    out.timings.preprocess_ms = r.speed_ms.preprocess;
    out.timings.inference_ms = r.speed_ms.inference;
    out.timings.postprocess_ms = r.speed_ms.postprocess;
    auto& w = std::get<ImageWork>(jobs[i]->work);
    RequestLogScope scope(jobs[i]->request_id, jobs[i]->trace_id);
    if (options_.drift) {
      try {
        const auto* bytes = reinterpret_cast<const uint8_t*>(w.bytes.data());
        options_.drift->Observe(drift::Observe(images[i], originals[i], bytes, w.bytes.size(), r));
      } catch (...) {  // monitoring never fails a request
      }
    }
    if (w.annotate) {
      try {
        Annotate(images[i], r, w.style);
        std::vector<uint8_t> jpeg;
        cv::imencode(".jpg", images[i], jpeg, {cv::IMWRITE_JPEG_QUALITY, 90});
        out.annotated_jpeg.assign(jpeg.begin(), jpeg.end());
      } catch (const std::bad_alloc&) {
        Fail(*jobs[i], OutOfMemory());
        continue;
      } catch (const std::exception& e) {
        Fail(*jobs[i], RuntimeError(std::string("annotation failed: ") + e.what()));
        continue;
      }
    }
    if (w.keep_bytes) {
      out.input = std::move(w.bytes);
    } else {
      w.bytes.clear();
    }
    out.result = std::move(r);
    Finish(*jobs[i], std::move(out));
  }
}

void Scheduler::ExecuteTensors(std::vector<Job>& batch) {
  const auto t0 = Clock::now();
  std::shared_ptr<Batch> engine_batch;
  std::vector<NamedTensorView> outputs;
  int64_t total = 0;
  Clock::time_point prepared = t0;
  try {
    // Every job has the same [., 3, H, W] (Compatible); PrepareTensors concatenates them along
    // the batch axis into the engine's input: the one copy of the request bytes.
    std::vector<TensorView> inputs;
    inputs.reserve(batch.size());
    for (auto& job : batch) {
      const TensorView& input = std::get<TensorWork>(job.work).input;
      total += input.shape()[0];
      inputs.push_back(input);
    }
    engine_batch = std::make_shared<Batch>(predictor_->PrepareTensors(inputs));
    prepared = Clock::now();
    outputs = predictor_->Run(*engine_batch);
  } catch (const Error& e) {
    for (auto& j : batch) Fail(j, e);
    return;
  } catch (const std::bad_alloc&) {
    for (auto& j : batch) Fail(j, OutOfMemory());
    return;
  } catch (const std::exception& e) {
    for (auto& j : batch) Fail(j, RuntimeError(std::string("inference failed: ") + e.what()));
    return;
  }
  const double us = UsSince(t0);
  if (metrics_) {
    metrics_->inference_count->Inc(static_cast<double>(total));
    metrics_->exec_count->Inc();
    metrics_->inference_seconds->Observe(us * 1e-6 / static_cast<double>(total));
  }
  // Each job gets views of its rows of every output (no copy).
  int64_t offset = 0;
  for (auto& job : batch) {
    const int64_t b = std::get<TensorWork>(job.work).input.shape()[0];
    JobResult out;
    out.batch_size = static_cast<int>(total);
    out.batch = engine_batch;
    out.timings = job.timings;
    out.timings.preprocess_ms = std::chrono::duration<double, std::milli>(prepared - t0).count();
    out.timings.inference_ms = us / 1000 - out.timings.preprocess_ms;
    for (const NamedTensorView& o : outputs) {
      const std::vector<int64_t>& shape = o.tensor.shape();
      if (shape.empty() || shape[0] != total) {
        out.status =
            RuntimeError("output '" + o.name + "' has no batch axis of " + std::to_string(total));
        out.outputs.clear();
        break;
      }
      const size_t row_bytes = o.tensor.bytes() / static_cast<size_t>(total);
      std::vector<int64_t> part_shape = shape;
      part_shape[0] = b;
      const auto* data = static_cast<const uint8_t*>(o.tensor.data());
      out.outputs.push_back({o.name, TensorView(o.tensor.dtype(), std::move(part_shape),
                                                data + static_cast<size_t>(offset) * row_bytes)});
    }
    offset += b;
    Finish(job, std::move(out));
  }
}

}  // namespace cvdeploy::server
