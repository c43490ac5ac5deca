// SPDX-License-Identifier: Apache-2.0
// GET /v1/models and /v2/models (the served models, their ready versions and readiness) and
// GET / (a small status document with links), both built from the repository index and
// filtered by what the caller may read (HttpRequest::may_read_metadata); and
// GET /v1/models/{m}/drift, the data-drift report of the model's highest served version.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "cvdeploy/build_info.h"
#include "server/api.h"
#include "server/http_error.h"

namespace cvdeploy::server {
namespace {

HttpResponse JsonOk(const nlohmann::ordered_json& body) {
  HttpResponse r;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

bool MayRead(const HttpRequest& request, const std::string& model) {
  return !request.may_read_metadata || request.may_read_metadata(model);
}

// Versions are decimal strings: ascending by value.
bool VersionLess(const std::string& a, const std::string& b) {
  return a.size() != b.size() ? a.size() < b.size() : a < b;
}

}  // namespace

nlohmann::json Api::ModelList(const HttpRequest& request) const {
  struct Summary {
    std::vector<std::string> ready;
    bool loading = false;
  };
  std::map<std::string, Summary> models;  // by name
  for (const auto& entry : repository_.Index()) {
    // Entries without a version are models unloaded or not loaded: not served, not listed.
    if (!entry.contains("version")) continue;
    const std::string name = entry.value("name", "");
    if (!MayRead(request, name)) continue;
    Summary& s = models[name];
    const std::string state = entry.value("state", "");
    if (state == "READY") s.ready.push_back(entry.value("version", ""));
    if (state == "LOADING") s.loading = true;
  }
  nlohmann::json out = nlohmann::json::array();
  for (auto& [name, s] : models) {
    std::sort(s.ready.begin(), s.ready.end(), VersionLess);
    const bool ready = !s.ready.empty();
    out.push_back({{"name", name},
                   {"versions", s.ready},
                   {"ready", ready},
                   {"state", ready ? "READY" : (s.loading ? "LOADING" : "UNAVAILABLE")}});
  }
  return out;
}

void Api::ListModels(const HttpRequest& request, const Respond& respond) {
  respond(JsonOk({{"models", ModelList(request)}}));
}

void Api::Root(const HttpRequest& request, const Respond& respond) {
  nlohmann::ordered_json doc = {{"name", "cvdeploy"}, {"version", CVDEPLOY_VERSION}};
  // The models only for a caller who may read metadata (always without authentication).
  if (MayRead(request, "")) doc["models"] = ModelList(request);
  nlohmann::ordered_json links = {{"health", "/v2/health/ready"}, {"models", "/v1/models"}};
  if (options_.serve_metrics) links["metrics"] = "/metrics";
  links["docs"] = "docs/server.md";
  doc["links"] = links;
  respond(JsonOk(doc));
}

void Api::DriftReport(const std::string& model, const Respond& respond) {
  auto found = repository_.Find(model, std::nullopt);
  if (!found) return respond(ErrorResponse(found.status()));
  const std::shared_ptr<ModelVersion>& v = *found;
  if (!v->drift) {
    return respond(ErrorResponse(
        Status(ErrorCode::kNotFound, "model '" + model +
                                         "' has no drift baseline (config.json \"drift\": "
                                         "{\"baseline\": FILE} or baseline.json beside the "
                                         "model; make one with cvdeploy profile-data)")));
  }
  respond(JsonOk(v->drift->Report()));
}

void Api::Samples(const HttpRequest& request, const std::string& model, const Respond& respond) {
  auto found = repository_.Find(model, std::nullopt);
  if (!found) return respond(ErrorResponse(found.status()));
  if (!sampler_) {
    return respond(ErrorResponse(
        Status(ErrorCode::kNotFound,
               "sampling is off (start the server with --sample-rate R --sample-dir DIR)")));
  }
  size_t limit = 20;
  for (const auto& [key, value] : request.query) {
    if (key != "limit") {
      throw EscapedError(ErrorCode::kInvalidArgument,
                         "unknown query parameter '" + key.substr(0, 64) + "' (known: limit)");
    }
    if (value.empty() || value.size() > 3 || value.find_first_not_of("0123456789") != value.npos ||
        std::stoi(value) < 1 || std::stoi(value) > 100) {
      throw EscapedError(
          ErrorCode::kInvalidArgument,
          "query parameter limit='" + value.substr(0, 32) + "' must be an integer in [1, 100]");
    }
    limit = static_cast<size_t>(std::stoi(value));
  }
  respond(JsonOk(sampler_->Recent(model, limit)));
}

}  // namespace cvdeploy::server
