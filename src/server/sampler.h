// SPDX-License-Identifier: Apache-2.0
// Sampled request logging (`serve --sample-rate R --sample-dir DIR`, docs/operations.md
// "Sampling"): the per-request decision, a bounded queue and the background writer that stores
// each sampled request (input, response JSON, meta.json: cvdeploy/samples.h) in a rotating
// store of at most max_bytes, oldest deleted first. The store's size is scanned at start, so
// the bound holds across restarts.
//
// Contracts: Decide and Offer are thread-safe and never block on the disk (Offer drops the
// sample when the queue is full); disk errors never reach a request: each kind (mkdir, write,
// rename, delete) is logged once and counted as cvdeploy_samples_total{result="failed"}.
// Files are written 0600 into a hidden directory renamed into place whole; DIR and its day
// directories are created 0700. The destructor writes what is queued, then joins the writer.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cvdeploy/options.h"
#include "cvdeploy/samples.h"
#include "cvdeploy/server.h"
#include "cvdeploy/types.h"
#include "server/metrics.h"
#include "server/trace_context.h"

namespace cvdeploy::server {

// One sampled request, handed from a scheduler thread to the writer.
struct SampleRecord {
  samples::SampleMeta meta;  // all but input, input_bytes and the redaction fields
  // Image kind: the encoded image as received, and its extension ("jpg", "png", ...).
  std::string image, image_ext;
  // Tensor kind: raw bytes viewed in a buffer `tensor_owner` keeps alive (the request).
  std::shared_ptr<const void> tensor_owner;
  const uint8_t* tensor_data = nullptr;
  size_t tensor_size = 0;
  std::string response;          // response.json
  std::vector<BoxXYXY> persons;  // boxes to blur with --sample-redact (image pixels)
};

// A sample's metadata as known when the request is accepted (time and input are the writer's).
samples::SampleMeta NewSampleMeta(const std::string& request_id, const std::string& trace_id,
                                  const std::string& model, const std::string& version,
                                  const std::string& kind, const PredictOptions* options);
// The stage timings as meta.json's "timings_ms" (stages not gone through left out).
std::map<std::string, double> TimingsMap(const StageTimings& timings);
// The boxes --sample-redact blurs: every detection of class "person" (a pose model's
// detections are persons too, faces included in their boxes).
std::vector<BoxXYXY> PersonBoxes(const Result& result);

class Sampler {
 public:
  // Creates `options.dir` (0700) and checks that a file can be written there; scans it.
  // Throws Error(kPermissionDenied) "sample directory DIR: reason" otherwise.
  // `before_write` (tests only) runs on the writer thread before each sample is written.
  Sampler(const SamplingOptions& options, Registry& registry,
          std::function<void()> before_write = {});
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Whether this request is sampled: uniform, probability `rate`.
  bool Decide();
  bool redact() const { return options_.redact; }
  // Queues the record for the writer; drops it (counted) when the queue is full. Never blocks
  // on the disk, never throws.
  void Offer(SampleRecord&& record) noexcept;
  // The metadata of the last written samples of `model` ("" = all), newest last, at most
  // `limit`: {"model", "rate", "redact", "stored_bytes", "max_bytes", "samples": [meta]}.
  nlohmann::ordered_json Recent(const std::string& model, size_t limit) const;

 private:
  void Run();
  void Write(SampleRecord& record);
  // Deletes the oldest samples until the store fits max_bytes (writer thread only).
  void Rotate();
  // Fills recent_ from the newest samples already in the store (an earlier run's), so that the
  // listing survives a restart. Constructor only.
  void SeedRecent();
  void DiskError(const std::string& kind, const std::string& message);

  const SamplingOptions options_;
  Counter* written_;
  Counter* dropped_;
  Counter* failed_;
  Gauge* stored_bytes_;
  Gauge* stored_count_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SampleRecord> queue_;
  bool stopping_ = false;
  std::deque<nlohmann::ordered_json> recent_;  // last written metadata (bounded)

  // Writer thread only.
  std::deque<samples::SampleDir> store_;  // oldest first
  uint64_t store_bytes_ = 0;
  uint64_t sequence_ = 0;
  std::set<std::string> logged_kinds_;
  std::function<void()> before_write_;
  std::thread writer_;
};

}  // namespace cvdeploy::server
