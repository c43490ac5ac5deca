// SPDX-License-Identifier: Apache-2.0
// The server's routes: KServe v2 (health, metadata, infer, repository control), the image
// endpoint /v1/models/{model}/predict, the drift report /v1/models/{model}/drift, the model
// listings /v1/models and /v2/models, the status document at / and /metrics. Handlers validate on
// the I/O thread (cheap checks: JSON structure, shapes, image headers, limits) and hand the work to
// the model's scheduler; they never run inference and never throw (errors become
// {"error": reason} with a 4xx/5xx status, mapped in one place: CurrentExceptionResponse).
// The dashboard's routes are answered first by its own handler (dashboard.h).
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "cvdeploy/server.h"
#include "server/dashboard.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/model_repository.h"
#include "server/sampler.h"

namespace cvdeploy::server {

class Api {
 public:
  // `sampler` (null: sampling off) must outlive the Api and every job it submits.
  Api(ModelRepository& repository, Registry& registry, ApiOptions options,
      Sampler* sampler = nullptr);
  // Answers exactly once through `respond` (a copy of which may outlive the call); never throws.
  void Handle(HttpRequest& request, const Respond& respond) noexcept;
  // Readiness turns false while the server drains for shutdown.
  void SetDraining() { draining_ = true; }

 private:
  void Health(const std::string& what, const Respond& respond);
  void ServerMetadata(const Respond& respond);
  void ModelMetadata(const std::string& model, std::optional<int64_t> version,
                     const Respond& respond);
  void ModelReady(const std::string& model, std::optional<int64_t> version, const Respond& respond);
  void Infer(HttpRequest& request, const std::string& model, std::optional<int64_t> version,
             const Respond& respond);
  void Predict(HttpRequest& request, const std::string& model, const Respond& respond);
  void Repository(const std::string& model, const std::string& action, const Respond& respond);
  // GET /v1/models, /v2/models: {"models": ModelList}. GET /: the status document
  // (api_models.cpp; docs/server.md).
  void ListModels(const HttpRequest& request, const Respond& respond);
  void Root(const HttpRequest& request, const Respond& respond);
  // GET /v1/models/{m}/drift: the drift report of the highest served version (api_models.cpp).
  void DriftReport(const std::string& model, const Respond& respond);
  // GET /v1/models/{m}/samples?limit=N: metadata of the model's last sampled requests, 404
  // when sampling is off (api_models.cpp).
  void Samples(const HttpRequest& request, const std::string& model, const Respond& respond);
  // The models of the repository index the caller may read (HttpRequest::may_read_metadata),
  // by name: [{"name", "versions": [ready versions, ascending], "ready", "state"}]; models
  // unloaded or never loaded are left out.
  nlohmann::json ModelList(const HttpRequest& request) const;
  // Resolves the request's deadline from X-Request-Timeout-Ms; throws kInvalidArgument.
  Clock::time_point Deadline(const HttpRequest& request) const;
  // Submits `job` to the version (or, for an unversioned request racing with an unload,
  // to the version that replaced it). Answers 503 itself when the queue is full.
  void Submit(std::shared_ptr<ModelVersion> version, const std::string& model, bool pinned, Job job,
              const Respond& respond);

  // Answers a request refused before it reached the queue; counted as a failure of `version`.
  static void Reject(const ModelVersion& version, HttpResponse response, const Respond& respond);

  ModelRepository& repository_;
  Registry& registry_;
  ApiOptions options_;
  std::atomic<bool> draining_{false};
  std::unique_ptr<Dashboard> dashboard_;  // /dashboard and /v1/dashboard/* (dashboard.h)
  Sampler* sampler_;                      // null: sampling off
};

// Parses "{model}/versions/{v}"-style version text; nullopt for a non-positive or bad value.
std::optional<int64_t> ParseVersion(const std::string& text);

}  // namespace cvdeploy::server
