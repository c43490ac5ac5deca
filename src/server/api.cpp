// SPDX-License-Identifier: Apache-2.0
#include "server/api.h"

#include "cvdeploy/build_info.h"
#include "cvdeploy/system.h"
#include "server/http_error.h"
#include "server/kserve.h"

namespace cvdeploy::server {
namespace {

std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 1;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string::npos ? path.size() : slash;
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

HttpResponse Json(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse MethodNotAllowed(const std::string& allowed) {
  HttpResponse r = JsonError(405, "method not allowed; use " + allowed);
  r.headers.emplace_back("Allow", allowed);
  return r;
}

}  // namespace

std::optional<int64_t> ParseVersion(const std::string& text) {
  if (text.empty() || text.size() > 18 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const int64_t v = std::stoll(text);
  if (v < 1) return std::nullopt;
  return v;
}

Api::Api(ModelRepository& repository, Registry& registry, ApiOptions options, Sampler* sampler)
    : repository_(repository),
      registry_(registry),
      options_(options),
      dashboard_(std::make_unique<Dashboard>(repository, options.history_interval_s,
                                             options.history_points)),
      sampler_(sampler) {}

void Api::Handle(HttpRequest& request, const Respond& respond) noexcept {
  try {
    if (dashboard_->Handle(request, respond)) return;
    const auto seg = Segments(request.path);
    const std::string& method = request.method;
    // A route that exists but not for this method is a protocol answer (405 with Allow), not
    // an error code: answers it and returns true.
    auto wrong_method = [&](const std::string& allowed) {
      if (method == allowed || (allowed == "GET, POST" && (method == "GET" || method == "POST"))) {
        return false;
      }
      respond(MethodNotAllowed(allowed));
      return true;
    };
    if (seg.size() == 1 && seg[0] == "metrics" && options_.serve_metrics) {
      if (wrong_method("GET")) return;
      HttpResponse r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = registry_.Render();
      return respond(std::move(r));
    }
    if (request.path == "/") {
      if (wrong_method("GET")) return;
      return Root(request, respond);
    }
    if (seg.size() == 2 && (seg[0] == "v1" || seg[0] == "v2") && seg[1] == "models") {
      if (wrong_method("GET")) return;
      return ListModels(request, respond);
    }
    if (seg.size() == 1 && seg[0] == "v2") {
      if (wrong_method("GET")) return;
      return ServerMetadata(respond);
    }
    if (seg.size() == 3 && seg[0] == "v2" && seg[1] == "health") {
      if (wrong_method("GET")) return;
      if (seg[2] == "live" || seg[2] == "ready") return Health(seg[2], respond);
    }
    if (seg.size() >= 3 && seg[0] == "v2" && seg[1] == "repository") {
      if (seg.size() == 3 && seg[2] == "index") {
        if (wrong_method("GET, POST")) return;
        return Repository("", "index", respond);
      }
      // An empty model name is no route (as for /v2/models//...): the classifier gives it no
      // group and so no model scope.
      if (seg.size() == 5 && seg[2] == "models" && !seg[3].empty() &&
          (seg[4] == "load" || seg[4] == "unload")) {
        if (wrong_method("POST")) return;
        return Repository(seg[3], seg[4], respond);
      }
    }
    if (seg.size() >= 3 && seg[0] == "v2" && seg[1] == "models" && !seg[2].empty()) {
      const std::string& model = seg[2];
      std::optional<int64_t> version;
      size_t next = 3;
      if (seg.size() >= 5 && seg[3] == "versions") {
        version = ParseVersion(seg[4]);
        if (!version) {
          throw EscapedError(ErrorCode::kInvalidArgument,
                             "bad version '" + seg[4] + "': a positive integer");
        }
        next = 5;
      }
      if (seg.size() == next) {
        if (wrong_method("GET")) return;
        return ModelMetadata(model, version, respond);
      }
      if (seg.size() == next + 1 && seg[next] == "ready") {
        if (wrong_method("GET")) return;
        return ModelReady(model, version, respond);
      }
      if (seg.size() == next + 1 && seg[next] == "infer") {
        if (wrong_method("POST")) return;
        return Infer(request, model, version, respond);
      }
    }
    if (seg.size() == 4 && seg[0] == "v1" && seg[1] == "models" && !seg[2].empty() &&
        seg[3] == "predict") {
      if (wrong_method("POST")) return;
      return Predict(request, seg[2], respond);
    }
    if (seg.size() == 4 && seg[0] == "v1" && seg[1] == "models" && !seg[2].empty() &&
        seg[3] == "drift") {
      if (wrong_method("GET")) return;
      return DriftReport(seg[2], respond);
    }
    if (seg.size() == 4 && seg[0] == "v1" && seg[1] == "models" && !seg[2].empty() &&
        seg[3] == "samples") {
      if (wrong_method("GET")) return;
      return Samples(request, seg[2], respond);
    }
    throw EscapedError(ErrorCode::kNotFound, "no route for " + request.method + " " + request.path);
  } catch (...) {
    // `respond` is still usable here whatever a handler did with its copies; an answer given
    // before the exception stands and this one is ignored.
    respond(CurrentExceptionResponse());
  }
}

void Api::Health(const std::string& what, const Respond& respond) {
  if (what == "live") return respond(Json(200, {{"live", true}}));
  // KServe v2: readiness is the status code (200 true, 4xx false).
  const bool ready = !draining_ && repository_.AllReady();
  nlohmann::json body{{"ready", ready}};
  if (draining_) body["reason"] = "shutting down";
  respond(Json(ready ? 200 : 400, body));
}

void Api::ServerMetadata(const Respond& respond) {
  std::vector<std::string> extensions{"binary_tensor_data"};
  if (options_.explicit_control) extensions.push_back("model_repository");
  respond(Json(200, kserve::ServerMetadataJson("cvdeploy", CVDEPLOY_VERSION, extensions)));
}

void Api::ModelMetadata(const std::string& model, std::optional<int64_t> version,
                        const Respond& respond) {
  auto found = repository_.Find(model, version);
  if (!found) return respond(ErrorResponse(found.status()));
  const std::shared_ptr<ModelVersion>& v = *found;
  const ModelInfo& info = v->predictor->info();
  // The tensor interface is float32 both ways (half models are converted internally).
  std::vector<kserve::TensorMeta> inputs, outputs;
  for (const auto& t : info.inputs) inputs.push_back({t.name, "FP32", t.shape});
  for (const auto& t : info.outputs) outputs.push_back({t.name, "FP32", t.shape});
  std::vector<std::string> versions;
  if (version) {
    versions.push_back(std::to_string(*version));
  } else {
    for (int64_t s : repository_.ServedVersions(model)) versions.push_back(std::to_string(s));
  }
  auto doc = kserve::ModelMetadataJson(model, versions, "onnxruntime_onnx", inputs, outputs);
  // cvdeploy extension: what the image endpoint will do with this model.
  const ModelMeta& meta = info.meta;
  doc["parameters"] = {{"task", std::string(TaskName(meta.task))},
                       {"imgsz", {meta.imgsz_h, meta.imgsz_w}},
                       {"rect", meta.dynamic && v->rect},
                       {"graph_optimization", GraphOptimizationName(v->graph_optimization)},
                       {"classes", meta.names.size()},
                       {"max_batch_size", v->config.max_batch_size},
                       {"instances", v->scheduler->options().instances}};
  respond(Json(200, doc));
}

void Api::ModelReady(const std::string& model, std::optional<int64_t> version,
                     const Respond& respond) {
  auto v = repository_.Find(model, version);
  if (!v && v.error().code() == ErrorCode::kNotFound) return respond(ErrorResponse(v.status()));
  nlohmann::json body{{"name", model}, {"ready", v.ok()}};
  if (v) body["version"] = (*v)->VersionString();
  if (!v) body["reason"] = v.error().what();
  // KServe v2: readiness is the status code (200 ready, 400 not ready), not an error.
  respond(Json(v ? 200 : 400, body));
}

void Api::Repository(const std::string& model, const std::string& action, const Respond& respond) {
  // Reading the index is harmless and always served; changing what is loaded needs explicit
  // model control.
  if (action == "index") return respond(Json(200, repository_.Index()));
  if (!options_.explicit_control) {
    throw PermissionDenied(
        "model control is disabled; start the server with --model-control explicit to load or "
        "unload models");
  }
  auto done = [respond](const Status& status) {
    if (status.ok()) return respond(Json(200, nlohmann::json::object()));
    respond(ErrorResponse(status));
  };
  if (action == "load") {
    repository_.LoadAsync(model, done);
  } else {
    repository_.UnloadAsync(model, done);
  }
}

Clock::time_point Api::Deadline(const HttpRequest& request) const {
  auto header = request.Header("x-request-timeout-ms");
  if (!header) return Clock::now() + options_.default_timeout;
  const std::string text(*header);
  if (text.empty() || text.size() > 9 ||
      text.find_first_not_of("0123456789") != std::string::npos || std::stol(text) < 1) {
    throw EscapedError(ErrorCode::kInvalidArgument,
                       "X-Request-Timeout-Ms must be a positive integer (milliseconds), got '" +
                           text.substr(0, 32) + "'");
  }
  return Clock::now() + std::chrono::milliseconds(std::stol(text));
}

void Api::Reject(const ModelVersion& version, HttpResponse response, const Respond& respond) {
  version.metrics.failure->Inc();
  response.log = LogFields{version.name, version.VersionString(), 0};
  respond(std::move(response));
}

void Api::Submit(std::shared_ptr<ModelVersion> version, const std::string& model, bool pinned,
                 Job job, const Respond& respond) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    // Submit takes the job only on acceptance, so it can be offered again.
    auto admission = version->scheduler->Submit(std::move(job));
    if (admission == Scheduler::Admission::kAccepted) return;
    if (admission == Scheduler::Admission::kQueueFull) {
      version->metrics.failure->Inc();
      HttpResponse r = ErrorResponse(EscapedError(
          ErrorCode::kUnavailable, "model '" + model + "' version " + version->VersionString() +
                                       " is at its queue limit of " +
                                       std::to_string(version->scheduler->options().max_queue) +
                                       " requests; retry later"));
      r.headers.emplace_back("Retry-After", "1");
      r.log.model = model;
      r.log.version = version->VersionString();
      return respond(std::move(r));
    }
    // kStopped: the version was unloaded between lookup and submission.
    if (pinned) break;
    auto found = repository_.Find(model, std::nullopt);
    if (!found) return respond(ErrorResponse(found.status()));
    version = *found;
  }
  respond(ErrorResponse(EscapedError(
      ErrorCode::kUnavailable,
      "model '" + model + "' version " + version->VersionString() + " is being unloaded")));
}

}  // namespace cvdeploy::server
