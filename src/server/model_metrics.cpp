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
      "cvdeploy_request_duration_seconds",
      "cvdeploy_queue_duration_seconds",
      "cvdeploy_decode_duration_seconds",
      "cvdeploy_preprocess_duration_seconds",
      "cvdeploy_inference_duration_seconds",
      "cvdeploy_postprocess_duration_seconds",
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
  const auto buckets = LatencyBucketsSeconds();
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
  m.request_seconds =
      &r.GetHistogram("cvdeploy_request_duration_seconds",
                      "Inference request time in the server, seconds", labels, buckets);
  m.queue_seconds = &r.GetHistogram("cvdeploy_queue_duration_seconds",
                                    "Time a request waited in the queue, seconds", labels, buckets);
  m.decode_seconds = &r.GetHistogram("cvdeploy_decode_duration_seconds",
                                     "Image decoding time, seconds", labels, buckets);
  m.preprocess_seconds =
      &r.GetHistogram("cvdeploy_preprocess_duration_seconds",
                      "Letterbox and tensor fill time per input, seconds", labels, buckets);
  m.inference_seconds =
      &r.GetHistogram("cvdeploy_inference_duration_seconds",
                      "Engine execution time per input, seconds", labels, buckets);
  m.postprocess_seconds =
      &r.GetHistogram("cvdeploy_postprocess_duration_seconds",
                      "Decoding and NMS time per input, seconds", labels, buckets);
  return m;
}

}  // namespace cvdeploy::server
