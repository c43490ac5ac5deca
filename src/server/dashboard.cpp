// SPDX-License-Identifier: Apache-2.0
#include "server/dashboard.h"

#include <chrono>
#include <cmath>
#include <set>

#include "cvdeploy/json.h"
#include "server/api.h"  // ParseVersion
#include "server/embedded_files.h"
#include "server/http_error.h"

namespace cvdeploy::server {
namespace {

const char* ContentType(const std::string& file) {
  auto ends = [&](const char* ext) {
    const std::string e(ext);
    return file.size() >= e.size() && file.compare(file.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  return "application/octet-stream";
}

HttpResponse JsonNoStore(const nlohmann::json& body) {
  HttpResponse r;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.headers = DashboardSecurityHeaders();
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// The "cvdeploy_optimizations" record quantize/fp16/prune write into the model's metadata,
// as JSON (null when absent; the raw text when it does not parse).
nlohmann::json OptimizationRecord(const ModelMeta& meta) {
  const auto it = meta.raw.find("cvdeploy_optimizations");
  if (it == meta.raw.end()) return nullptr;
  try {
    return ParseJsonBounded(it->second, "metadata cvdeploy_optimizations");
  } catch (const std::exception&) {
    return it->second.substr(0, 4096);  // too deep or not JSON: shown as text
  }
}

double NowUnixS() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> DashboardSecurityHeaders() {
  return {{"Content-Security-Policy",
           "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
           "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'none'"},
          {"X-Content-Type-Options", "nosniff"},
          {"X-Frame-Options", "DENY"},
          {"Referrer-Policy", "no-referrer"},
          {"Cross-Origin-Opener-Policy", "same-origin"}};
}

Dashboard::Dashboard(ModelRepository& repository, double interval_s, size_t points)
    : repository_(repository), history_(points, interval_s), interval_s_(interval_s) {
  sampler_ = std::thread([this] { Run(); });
}

Dashboard::~Dashboard() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  sampler_.join();
}

void Dashboard::Run() {
  const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(interval_s_));
  auto next = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    try {
      Sample();
    } catch (...) {
      // A snapshot that fails (out of memory) is skipped; the next interval tries again.
    }
    lock.lock();
    next += interval;
    cv_.wait_until(lock, next, [this] { return stopping_; });
  }
}

std::vector<ModelCounters> Dashboard::Snapshot() const {
  std::vector<ModelCounters> out;
  std::set<std::string> seen;
  for (const auto& entry : repository_.Index()) {
    const std::string name = entry.value("name", "");
    if (name.empty() || !seen.insert(name).second) continue;
    auto found = repository_.Find(name, std::nullopt);
    if (!found) continue;
    const ModelVersion& v = **found;
    const VersionMetrics& m = v.metrics;
    if (!m.success || !m.failure || !m.pending || !m.request_seconds) continue;
    ModelCounters c;
    c.model = name;
    c.version = v.VersionString();
    c.success = m.success->Value();
    c.failure = m.failure->Value();
    c.pending = m.pending->Value();
    c.bounds = m.request_seconds->Bounds();
    c.cumulative = m.request_seconds->CumulativeCounts();
    out.push_back(std::move(c));
  }
  return out;
}

void Dashboard::Sample() { history_.Record(NowUnixS(), Snapshot()); }

HttpResponse Dashboard::Static(const std::string& file) const {
  const EmbeddedFile* f = FindEmbeddedFile(file);
  if (!f) throw EscapedError(ErrorCode::kNotFound, "no dashboard file " + file);
  HttpResponse r;
  r.content_type = ContentType(file);
  r.body.assign(reinterpret_cast<const char*>(f->data), f->size);
  r.headers = DashboardSecurityHeaders();
  // The files change only with the binary: revalidate rather than serve a stale page after an
  // upgrade.
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

nlohmann::json Dashboard::Models(const HttpRequest& request) const {
  nlohmann::json models = nlohmann::json::object();
  for (const auto& entry : repository_.Index()) {
    const std::string name = entry.value("name", "");
    if (name.empty()) continue;
    if (request.may_read_metadata && !request.may_read_metadata(name)) continue;
    nlohmann::json version = {{"version", entry.value("version", "")},
                              {"state", entry.value("state", "")},
                              {"reason", entry.value("reason", "")},
                              {"ready", entry.value("state", "") == "READY"}};
    auto parsed = ParseVersion(entry.value("version", ""));
    if (parsed) {
      if (auto found = repository_.Find(name, parsed)) {
        const ModelVersion& v = **found;
        const ModelInfo& info = v.predictor->info();
        version["load_ms"] = std::round(v.load_ms * 10) / 10;
        version["golden"] = v.golden;
        version["task"] = std::string(TaskName(info.meta.task));
        version["imgsz"] = {info.meta.imgsz_h, info.meta.imgsz_w};
        version["classes"] = info.meta.names.size();
        version["sha256"] = info.sha256;
        version["instances"] = v.scheduler->options().instances;
        version["max_batch_size"] = v.config.max_batch_size;
        version["optimizations"] = OptimizationRecord(info.meta);
      }
    }
    if (!models.contains(name))
      models[name] = {{"name", name}, {"versions", nlohmann::json::array()}};
    models[name]["versions"].push_back(std::move(version));
  }
  nlohmann::json list = nlohmann::json::array();
  for (auto& [name, m] : models.items()) list.push_back(std::move(m));
  return {{"models", std::move(list)}};
}

bool Dashboard::Handle(const HttpRequest& request, const Respond& respond) {
  const std::string& path = request.path;
  std::string file;
  if (path == "/dashboard" || path == "/dashboard/") {
    file = "index.html";
  } else if (path.rfind("/dashboard/", 0) == 0) {
    file = path.substr(std::string("/dashboard/").size());
  } else if (path != "/v1/dashboard/history" && path != "/v1/dashboard/models") {
    return false;
  }
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse r = JsonError(405, "method not allowed; use GET");
    r.headers.emplace_back("Allow", "GET");
    respond(std::move(r));
    return true;
  }
  try {
    if (!file.empty()) {
      respond(Static(file));
    } else if (path == "/v1/dashboard/history") {
      respond(JsonNoStore(history_.ToJson([&](const std::string& model) {
        return !request.may_read_metadata || request.may_read_metadata(model);
      })));
    } else {
      respond(JsonNoStore(Models(request)));
    }
  } catch (...) {
    respond(CurrentExceptionResponse());
  }
  return true;
}

}  // namespace cvdeploy::server
