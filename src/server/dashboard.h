// SPDX-License-Identifier: Apache-2.0
// The live dashboard (docs/server.md, "Dashboard"): the static page at /dashboard (HTML, JS
// and CSS embedded in the binary, served with strict security headers) and its data
// endpoints GET /v1/dashboard/models and GET /v1/dashboard/history (route group "monitor").
// Owns the metric history and the background thread that samples the served versions'
// counters into it every history interval; the request path never samples.
//
// Contracts: Handle is thread-safe and never throws (errors are answered as
// {"error": ...}); the sampler thread starts in the constructor and is joined by the
// destructor, which must run before the repository is destroyed.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cvdeploy/server.h"
#include "server/http.h"
#include "server/metric_history.h"
#include "server/model_repository.h"

namespace cvdeploy::server {

// The headers of every dashboard response (static or data): CSP default-src 'self' with no
// inline script, nosniff, frame-ancestors 'none' (and X-Frame-Options DENY), no referrer.
std::vector<std::pair<std::string, std::string>> DashboardSecurityHeaders();

class Dashboard {
 public:
  // `interval_s` > 0 and `points` >= 1 (ApiOptions::history_*); starts the sampler.
  Dashboard(ModelRepository& repository, double interval_s, size_t points);
  ~Dashboard();
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

  // Answers the dashboard's routes and returns true; false (nothing answered) for any other
  // path. A wrong method on a dashboard route is answered 405.
  bool Handle(const HttpRequest& request, const Respond& respond);

  // Takes one snapshot now (the sampler calls it every interval).
  void Sample();
  const MetricHistory& history() const { return history_; }

 private:
  std::vector<ModelCounters> Snapshot() const;
  HttpResponse Static(const std::string& file) const;
  nlohmann::json Models(const HttpRequest& request) const;
  void Run();

  ModelRepository& repository_;
  MetricHistory history_;
  const double interval_s_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread sampler_;
};

}  // namespace cvdeploy::server
