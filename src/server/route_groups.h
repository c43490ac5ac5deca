// SPDX-License-Identifier: Apache-2.0
// Route classification for authorization: (method, path) -> the route group a request needs,
// the model it is about, and whether the route is public by nature (the login route).
//
// The path is split exactly as Api::Handle splits it, so a request is classified as the route
// that will serve it. The method is not considered for the group (a wrong method on a known
// path is the handler's 405, after authorization). A path no route serves is "unknown": it
// still needs an authenticated identity (an unauthenticated client gets 401 for any protected
// or unknown path and so cannot learn which routes exist); an authenticated one then gets the
// handler's 404. The model listings (GET /v1/models, /v2/models) are metadata about no single
// model: the handler filters them by the caller's model scope. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cvdeploy/security/policy.h"

namespace cvdeploy::server {

// The login route (public; throttled by the user store) and the admin policy route.
inline constexpr std::string_view kLoginPath = "/v1/auth/login";
inline constexpr std::string_view kPolicyPath = "/v1/auth/policy";

struct RouteClass {
  std::optional<security::RouteGroup> group;  // nullopt: unknown path (authenticated only)
  std::string model;                          // the model the route is about, or ""
  bool is_public = false;                     // public whatever the policy says (login)
  // Served to a caller without credentials too (GET /, group health): the gate passes such a
  // request on unauthenticated and the handler shows it only what is public (name, version,
  // links). A caller with credentials is authenticated and authorized as usual.
  bool anonymous_ok = false;
};

RouteClass ClassifyRoute(std::string_view method, std::string_view path);

}  // namespace cvdeploy::server
