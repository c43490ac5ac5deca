// SPDX-License-Identifier: Apache-2.0
// Role-based access control: the policy (`--auth-policy FILE`, JSON) and its decisions.
//
// A policy holds roles (sets of permissions over route groups, optionally scoped to model
// name patterns, optionally requiring a second factor and carrying a rate limit), the public
// routes (reachable without credentials) and the bindings that turn an mTLS certificate
// subject/SAN or a JWT claim value into roles. Built-in roles (viewer, inferencer, operator,
// admin; table in docs/security.md) are always present unless the file redefines them.
//
// Contracts: Policy is immutable after construction and thread-safe to share (PolicyStore
// hands out shared_ptr<const Policy>). Parse/LoadFile throw cvdeploy::Error(kBadInput) with a
// one-line message naming the file and the offending entry; LoadFile also refuses a file with
// permissions wider than 0600 (CheckSecretFile: kPermissionDenied / kNotFound). Authorize never
// throws; deny by default: an identity without a role that grants the group is denied.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cvdeploy/security/identity.h"

namespace cvdeploy::security {

// The route groups permissions are granted over (src/server/route_groups.h maps each route).
enum class RouteGroup {
  kHealth,           // /v2/health/live|ready, model readiness
  kMetadata,         // server and model metadata
  kInfer,            // KServe infer, image predict
  kMetrics,          // /metrics
  kRepositoryRead,   // /v2/repository/index
  kRepositoryWrite,  // /v2/repository/models/{m}/load|unload
  kAdmin,            // keys, users, audit, policy (GET /v1/auth/policy)
  kMonitor,          // dashboard data: /v1/dashboard/*, /v1/models/{m}/drift|samples
};
inline constexpr std::array<RouteGroup, 8> kAllRouteGroups = {
    RouteGroup::kHealth,  RouteGroup::kMetadata,       RouteGroup::kInfer,
    RouteGroup::kMetrics, RouteGroup::kRepositoryRead, RouteGroup::kRepositoryWrite,
    RouteGroup::kAdmin,   RouteGroup::kMonitor};
// "health", "metadata", "infer", "metrics", "repository.read", "repository.write", "admin",
// "monitor".
const char* RouteGroupName(RouteGroup group);
std::optional<RouteGroup> ParseRouteGroup(std::string_view name);

// A token bucket's parameters: `requests_per_second` refill, `burst` capacity (>= 1).
struct RateLimit {
  double requests_per_second = 0;
  double burst = 0;
};

struct Role {
  std::string name;
  uint32_t permissions = 0;         // bit (1 << RouteGroup)
  std::vector<std::string> models;  // fnmatch patterns; empty: every model
  bool mfa = false;                 // only identities with Identity::mfa
  std::optional<RateLimit> rate_limit;
  bool Grants(RouteGroup group) const { return permissions & (1u << static_cast<int>(group)); }
};

struct Decision {
  bool allowed = false;
  std::string reason;  // when denied: "role viewer lacks infer", "model out of scope", ...
  std::string role;    // when allowed: the role that granted it
  // When allowed: the most generous rate limit among the roles that grant the request (or
  // the policy's default); nullopt: unlimited.
  std::optional<RateLimit> rate_limit;
};

class Policy {
 public:
  // The built-in roles, the default public routes, no bindings.
  static Policy Default();
  // Parses a policy document; `source` names it in errors. Throws Error(kBadInput).
  static Policy Parse(std::string_view text, const std::string& source);
  // CheckSecretFile(path), then Parse.
  static Policy LoadFile(const std::string& path);

  const std::map<std::string, Role>& roles() const { return roles_; }
  const Role* FindRole(std::string_view name) const;
  const std::vector<std::string>& public_routes() const { return public_routes_; }
  bool IsPublicRoute(std::string_view path) const;
  // Roles bound to a verified client certificate by its subject or one of its SANs
  // ("DNS:host", "email:a@b", "URI:spiffe://..."; exact matches).
  std::vector<std::string> RolesForCertificate(std::string_view subject,
                                               const std::vector<std::string>& sans) const;
  // Roles for the values of a JWT's roles claim: values bound in `jwt_claims`, plus values
  // that are themselves role names when `jwt_role_names_direct` (default true).
  std::vector<std::string> RolesForClaims(const std::vector<std::string>& values) const;
  // Whether a verified client certificate counts as a second factor (default true).
  bool certificate_counts_as_mfa() const { return certificate_is_mfa_; }

  // Whether `identity` may use a route of `group` about `model` ("" for routes about no
  // model). Model scope: every pattern list on the way (the role's, the API key's own
  // Identity::models) must match the model.
  Decision Authorize(const Identity& identity, RouteGroup group, std::string_view model) const;

  // A JSON summary for the admin route (roles, public routes, binding counts; no secrets).
  std::string SummaryJson() const;

 private:
  std::map<std::string, Role> roles_;
  std::vector<std::string> public_routes_;
  std::map<std::string, std::vector<std::string>> cert_subjects_, cert_sans_, jwt_claims_;
  bool jwt_direct_ = true;
  bool certificate_is_mfa_ = true;
  std::optional<RateLimit> default_rate_limit_;
};

// Whether `name` matches any of the fnmatch `patterns` (an empty list matches everything; a
// name with a NUL byte matches no pattern, since fnmatch would read only up to it).
bool ModelInScope(const std::vector<std::string>& patterns, std::string_view name);

}  // namespace cvdeploy::security
