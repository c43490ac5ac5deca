// SPDX-License-Identifier: Apache-2.0
#include "server/route_groups.h"

#include <vector>

namespace cvdeploy::server {
namespace {

using security::RouteGroup;

// As Api::Handle's Segments: "/a/b" -> {"a", "b"}; empty segments are kept.
std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 1;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

RouteClass Of(RouteGroup group, std::string_view model = {}) {
  return RouteClass{group, std::string(model), false};
}

// /v2/models/{m}[/versions/{v}][/ready|/infer]
std::optional<RouteClass> ModelRoute(const std::vector<std::string_view>& seg) {
  if (seg.size() < 3 || seg[0] != "v2" || seg[1] != "models" || seg[2].empty()) {
    return std::nullopt;
  }
  size_t next = 3;
  if (seg.size() >= 5 && seg[3] == "versions") next = 5;
  if (seg.size() == next) return Of(RouteGroup::kMetadata, seg[2]);
  if (seg.size() == next + 1 && seg[next] == "ready") return Of(RouteGroup::kHealth, seg[2]);
  if (seg.size() == next + 1 && seg[next] == "infer") return Of(RouteGroup::kInfer, seg[2]);
  return std::nullopt;
}

}  // namespace

RouteClass ClassifyRoute(std::string_view method, std::string_view path) {
  (void)method;
  if (path.empty() || path[0] != '/') return {};
  if (path == kLoginPath) return RouteClass{std::nullopt, "", true};
  if (path == kPolicyPath) return Of(RouteGroup::kAdmin);
  if (path == "/") {
    RouteClass root = Of(RouteGroup::kHealth);
    root.anonymous_ok = true;
    return root;
  }
  const auto seg = Split(path);
  // The dashboard: its static shell (no data) is served without credentials too; its data
  // endpoints, drift and samples need "monitor".
  if (!seg.empty() && seg[0] == "dashboard") {
    RouteClass shell;
    shell.anonymous_ok = true;
    return shell;
  }
  if (seg.size() == 3 && seg[0] == "v1" && seg[1] == "dashboard" &&
      (seg[2] == "history" || seg[2] == "models")) {
    return Of(RouteGroup::kMonitor);
  }
  if (seg.size() == 4 && seg[0] == "v1" && seg[1] == "models" && !seg[2].empty() &&
      (seg[3] == "drift" || seg[3] == "samples")) {
    return Of(RouteGroup::kMonitor, seg[2]);
  }
  if (seg.size() == 1 && seg[0] == "metrics") return Of(RouteGroup::kMetrics);
  if (seg.size() == 2 && (seg[0] == "v1" || seg[0] == "v2") && seg[1] == "models") {
    return Of(RouteGroup::kMetadata);
  }
  if (seg.size() == 1 && seg[0] == "v2") return Of(RouteGroup::kMetadata);
  if (seg.size() == 3 && seg[0] == "v2" && seg[1] == "health" &&
      (seg[2] == "live" || seg[2] == "ready")) {
    return Of(RouteGroup::kHealth);
  }
  if (seg.size() == 3 && seg[0] == "v2" && seg[1] == "repository" && seg[2] == "index") {
    return Of(RouteGroup::kRepositoryRead);
  }
  if (seg.size() == 5 && seg[0] == "v2" && seg[1] == "repository" && seg[2] == "models" &&
      !seg[3].empty() && (seg[4] == "load" || seg[4] == "unload")) {
    return Of(RouteGroup::kRepositoryWrite, seg[3]);
  }
  if (auto r = ModelRoute(seg)) return *r;
  if (seg.size() == 4 && seg[0] == "v1" && seg[1] == "models" && !seg[2].empty() &&
      seg[3] == "predict") {
    return Of(RouteGroup::kInfer, seg[2]);
  }
  return {};
}

}  // namespace cvdeploy::server
