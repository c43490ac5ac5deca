// SPDX-License-Identifier: Apache-2.0
// The per-model-version series of the server's metrics (Triton-style names with units),
// resolved once when a version loads so the request path never looks them up.
#pragma once

#include <string>

#include "server/metrics.h"

namespace cvdeploy::server {

struct VersionMetrics {
  Counter* success = nullptr;          // cvdeploy_inference_request_success_total
  Counter* failure = nullptr;          // cvdeploy_inference_request_failure_total
  Counter* inference_count = nullptr;  // inputs inferred (a batch of 4 counts 4)
  Counter* exec_count = nullptr;       // engine executions (average batch = count / exec)
  Gauge* pending = nullptr;            // requests waiting in the queue
  Histogram *request_us = nullptr, *queue_us = nullptr, *decode_us = nullptr,
            *preprocess_us = nullptr, *inference_us = nullptr, *postprocess_us = nullptr;

  static VersionMetrics Create(Registry& registry, const std::string& model,
                               const std::string& version);
};

}  // namespace cvdeploy::server
