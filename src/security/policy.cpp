// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/policy.h"

#include <fnmatch.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "cvdeploy/error.h"
#include "cvdeploy/security/secret_file.h"

namespace cvdeploy::security {
namespace {

using nlohmann::json;

constexpr const char* kGroupNames[] = {"health",          "metadata",         "infer", "metrics",
                                       "repository.read", "repository.write", "admin", "monitor"};

uint32_t Bit(RouteGroup g) { return 1u << static_cast<int>(g); }

uint32_t Bits(std::initializer_list<RouteGroup> groups) {
  uint32_t out = 0;
  for (RouteGroup g : groups) out |= Bit(g);
  return out;
}

std::map<std::string, Role> BuiltinRoles() {
  using G = RouteGroup;
  std::map<std::string, Role> roles;
  roles["viewer"] = {
      "viewer", Bits({G::kHealth, G::kMetadata, G::kMetrics, G::kMonitor}), {}, false, {}};
  roles["inferencer"] = {"inferencer", Bits({G::kHealth, G::kMetadata, G::kInfer}), {}, false, {}};
  roles["operator"] = {"operator",
                       Bits({G::kHealth, G::kMetadata, G::kInfer, G::kMetrics, G::kRepositoryRead,
                             G::kRepositoryWrite, G::kMonitor}),
                       {},
                       false,
                       {}};
  uint32_t all = 0;
  for (RouteGroup g : kAllRouteGroups) all |= Bit(g);
  roles["admin"] = {"admin", all, {}, true, {}};
  return roles;
}

}  // namespace

const char* RouteGroupName(RouteGroup group) { return kGroupNames[static_cast<int>(group)]; }

std::optional<RouteGroup> ParseRouteGroup(std::string_view name) {
  for (RouteGroup g : kAllRouteGroups) {
    if (name == RouteGroupName(g)) return g;
  }
  return std::nullopt;
}

bool ModelInScope(const std::vector<std::string>& patterns, std::string_view name) {
  if (patterns.empty()) return true;
  // fnmatch reads C strings: "yolo\0other" would be judged as "yolo". A name with a NUL byte
  // (percent-decoded from the path) matches no pattern.
  if (name.find('\0') != std::string_view::npos) return false;
  const std::string n(name);
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return fnmatch(p.c_str(), n.c_str(), 0) == 0; });
}

Policy Policy::Default() {
  Policy p;
  p.roles_ = BuiltinRoles();
  p.public_routes_ = {"/v2/health/live", "/v2/health/ready"};
  return p;
}

Policy Policy::LoadFile(const std::string& path) { return Parse(ReadSecretFile(path), path); }

const Role* Policy::FindRole(std::string_view name) const {
  auto it = roles_.find(std::string(name));
  return it == roles_.end() ? nullptr : &it->second;
}

bool Policy::IsPublicRoute(std::string_view path) const {
  return std::find(public_routes_.begin(), public_routes_.end(), path) != public_routes_.end();
}

std::vector<std::string> Policy::RolesForCertificate(std::string_view subject,
                                                     const std::vector<std::string>& sans) const {
  std::set<std::string> out;
  if (auto it = cert_subjects_.find(std::string(subject)); it != cert_subjects_.end()) {
    out.insert(it->second.begin(), it->second.end());
  }
  for (const auto& san : sans) {
    if (auto it = cert_sans_.find(san); it != cert_sans_.end()) {
      out.insert(it->second.begin(), it->second.end());
    }
  }
  return {out.begin(), out.end()};
}

std::vector<std::string> Policy::RolesForClaims(const std::vector<std::string>& values) const {
  std::set<std::string> out;
  for (const auto& v : values) {
    if (auto it = jwt_claims_.find(v); it != jwt_claims_.end()) {
      out.insert(it->second.begin(), it->second.end());
    }
    if (jwt_direct_ && roles_.count(v)) out.insert(v);
  }
  return {out.begin(), out.end()};
}

Decision Policy::Authorize(const Identity& identity, RouteGroup group,
                           std::string_view model) const {
  Decision d;
  const std::string group_name = RouteGroupName(group);
  std::vector<std::string> lacking;
  bool out_of_scope = false;
  std::string needs_mfa;
  for (const auto& name : identity.roles) {
    const Role* role = FindRole(name);
    if (!role || !role->Grants(group)) {
      lacking.push_back(name);
      continue;
    }
    if (!model.empty() &&
        (!ModelInScope(role->models, model) || !ModelInScope(identity.models, model))) {
      out_of_scope = true;
      continue;
    }
    if (role->mfa && !identity.mfa) {
      needs_mfa = role->name;
      continue;
    }
    const auto limit = role->rate_limit ? role->rate_limit : default_rate_limit_;
    if (!d.allowed) {
      d.allowed = true;
      d.role = role->name;
      d.rate_limit = limit;
    } else if (d.rate_limit &&
               (!limit || limit->requests_per_second > d.rate_limit->requests_per_second)) {
      d.role = role->name;
      d.rate_limit = limit;
    }
  }
  if (d.allowed) return d;
  if (!needs_mfa.empty()) {
    d.reason = "role " + needs_mfa + " requires a second factor (mfa required)";
  } else if (out_of_scope) {
    d.reason = "model out of scope for this identity";
  } else if (identity.roles.empty()) {
    d.reason = "identity has no role (needs " + group_name + ")";
  } else {
    std::string names;
    for (const auto& n : lacking) names += (names.empty() ? "" : ", ") + n;
    d.reason = std::string(lacking.size() > 1 ? "roles " : "role ") + names + " lack" +
               (lacking.size() > 1 ? " " : "s ") + group_name;
  }
  return d;
}

std::string Policy::SummaryJson() const {
  json roles = json::object();
  for (const auto& [name, role] : roles_) {
    json perms = json::array();
    for (RouteGroup g : kAllRouteGroups) {
      if (role.Grants(g)) perms.push_back(RouteGroupName(g));
    }
    json r{{"permissions", perms}, {"models", role.models}, {"mfa", role.mfa}};
    if (role.rate_limit) {
      r["rate_limit"] = {{"requests_per_second", role.rate_limit->requests_per_second},
                         {"burst", role.rate_limit->burst}};
    }
    roles[name] = r;
  }
  return json{{"roles", roles},
              {"public_routes", public_routes_},
              {"certificate_bindings", cert_subjects_.size() + cert_sans_.size()},
              {"jwt_claim_bindings", jwt_claims_.size()},
              {"jwt_role_names_direct", jwt_direct_},
              {"certificate_counts_as_mfa", certificate_is_mfa_}}
      .dump();
}

}  // namespace cvdeploy::security
