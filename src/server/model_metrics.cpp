// SPDX-License-Identifier: Apache-2.0
#include "server/model_metrics.h"

#include <functional>

namespace cvdeploy::server {

const std::vector<std::string>& VersionSeriesFamilies() {
  static const std::vector<std::string> families = {
      "cvdeploy_inference_request_success_total",
      "cvdeploy_inference_request_failure_total",
      "cvdeploy_inference_count_total",
      "cvdeploy_inference_exec_count_total",
      "cvdeploy_pending_requests",
      "cvdeploy_request_duration_us",
      "cvdeploy_queue_duration_us",
      "cvdeploy_decode_duration_us",
      "cvdeploy_preprocess_duration_us",
      "cvdeploy_inference_duration_us",
      "cvdeploy_postprocess_duration_us",
      kModelReadyMetric,
      kModelLoadDurationMetric,
      kDriftPsiMetric,
  };
  return families;
}

namespace {

// Releases its lease when the last shared_ptr to it goes.
class Lease {
 public:
  explicit Lease(std::function<void()> release) : release_(std::move(release)) {}
  ~Lease() { release_(); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

 private:
  std::function<void()> release_;
};

}  // namespace

std::shared_ptr<const void> VersionSeriesLeases::Acquire(const std::string& model,
                                                         const std::string& version,
                                                         const std::function<void()>& create) {
  auto key = std::make_pair(model, version);
  {
    std::lock_guard<std::mutex> lock(mu_);
    create();
    ++holders_[key];
  }
  return std::make_shared<Lease>(
      [self = shared_from_this(), key = std::move(key)] { self->Release(key); });
}

int VersionSeriesLeases::Holders(const std::string& model, const std::string& version) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = holders_.find({model, version});
  return it == holders_.end() ? 0 : it->second;
}

void VersionSeriesLeases::Release(const std::pair<std::string, std::string>& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = holders_.find(key);
  if (it == holders_.end() || --it->second > 0) return;
  holders_.erase(it);
  registry_.RemoveSeries({{"model", key.first}, {"version", key.second}}, VersionSeriesFamilies());
}

VersionMetrics VersionMetrics::Create(Registry& r, const std::string& model,
                                      const std::string& version) {
  const Labels labels{{"model", model}, {"version", version}};
  const auto buckets = LatencyBucketsUs();
  VersionMetrics m;
  m.success = &r.GetCounter("cvdeploy_inference_request_success_total",
                            "Inference requests answered successfully", labels);
  m.failure = &r.GetCounter("cvdeploy_inference_request_failure_total",
                            "Inference requests that failed (any 4xx or 5xx answer)", labels);
  m.inference_count = &r.GetCounter("cvdeploy_inference_count_total",
                                    "Inputs inferred; a batch of N counts N", labels);
  m.exec_count = &r.GetCounter("cvdeploy_inference_exec_count_total",
                               "Engine executions; inference_count / exec_count is the average "
                               "batch size",
                               labels);
  m.pending =
      &r.GetGauge("cvdeploy_pending_requests", "Requests waiting in the model's queue", labels);
  m.request_us =
      &r.GetHistogram("cvdeploy_request_duration_us",
                      "Inference request time in the server, microseconds", labels, buckets);
  m.queue_us = &r.GetHistogram("cvdeploy_queue_duration_us",
                               "Time a request waited in the queue, microseconds", labels, buckets);
  m.decode_us = &r.GetHistogram("cvdeploy_decode_duration_us", "Image decoding time, microseconds",
                                labels, buckets);
  m.preprocess_us =
      &r.GetHistogram("cvdeploy_preprocess_duration_us",
                      "Letterbox and tensor fill time per input, microseconds", labels, buckets);
  m.inference_us =
      &r.GetHistogram("cvdeploy_inference_duration_us",
                      "Engine execution time per input, microseconds", labels, buckets);
  m.postprocess_us =
      &r.GetHistogram("cvdeploy_postprocess_duration_us",
                      "Decoding and NMS time per input, microseconds", labels, buckets);
  return m;
}

}  // namespace cvdeploy::server
