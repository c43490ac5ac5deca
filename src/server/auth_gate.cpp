// SPDX-License-Identifier: Apache-2.0
#include "server/auth_gate.h"

#include <cmath>

#include "cvdeploy/json.h"
#include "server/credentials.h"

namespace cvdeploy::server {
namespace {

using nlohmann::json;
using security::AuthResult;
using security::Identity;

HttpResponse Unauthorized(const std::string& message, bool bad_token) {
  HttpResponse r = JsonError(401, message);
  r.headers.emplace_back("WWW-Authenticate",
                         bad_token ? R"(Bearer realm="cvdeploy", error="invalid_token")"
                                   : R"(Bearer realm="cvdeploy")");
  return r;
}

std::string RetryAfter(double seconds) {
  return std::to_string(std::max<int64_t>(1, static_cast<int64_t>(std::ceil(seconds))));
}

json IdentityJson(const Identity& id) {
  return json{{"name", id.name},
              {"method", security::AuthMethodName(id.method)},
              {"roles", id.roles},
              {"mfa", id.mfa}};
}

// The audit event of a gated request, before the identity and the outcome are known.
json RequestEvent(const HttpRequest& request, const RouteClass& route) {
  return json{{"action", "request"},
              {"request_id", request.request_id},
              {"client", request.client},
              {"method", request.method},
              {"path", request.path},
              {"group", route.group ? security::RouteGroupName(*route.group) : "unknown"},
              {"model", route.model},
              {"bytes_in", request.body.size()}};
}

}  // namespace

std::string IdentityLabel(const Identity& identity) {
  return std::string(security::AuthMethodName(identity.method)) + ":" + identity.name;
}

AuthGate::AuthGate(std::shared_ptr<security::PolicyStore> policies, Authenticators authenticators,
                   AuditSink& audit, Registry& registry, int worker_threads)
    : policies_(std::move(policies)),
      auth_(std::move(authenticators)),
      audit_(audit),
      registry_(registry),
      workers_(worker_threads, kMaxQueuedAuthentications),
      rate_limited_(registry.GetCounter("cvdeploy_auth_rate_limited_total",
                                        "Requests refused 429 by a per-identity rate limit", {})) {
  for (security::RouteGroup g : security::kAllRouteGroups) {
    denials_[static_cast<size_t>(g)] = &registry.GetCounter(
        "cvdeploy_auth_denials_total", "Requests refused 403 by the policy, by route group",
        {{"group", security::RouteGroupName(g)}});
  }
}

std::unique_ptr<AuthGate> AuthGate::AuditOnly(AuditSink& audit, Registry& registry) {
  auto gate = std::make_unique<AuthGate>(
      std::make_shared<security::PolicyStore>(security::Policy::Default()), Authenticators{}, audit,
      registry, 1);
  gate->audit_only_ = true;
  return gate;
}

Handler AuthGate::Wrap(Handler next) {
  return [this, next = std::move(next)](HttpRequest& request, Respond respond) {
    Handle(request, respond, next);
  };
}

void AuthGate::Handle(HttpRequest& request, const Respond& respond, const Handler& next) noexcept {
  try {
    const RouteClass route = ClassifyRoute(request.method, request.path);
    if (audit_only_ && !route.is_public) {
      auto policy = policies_->Current();
      if (policy->IsPublicRoute(request.path)) return next(request, respond);
      return Admit(request, respond, next, route, policy);
    }
    if (route.is_public) {
      // Login runs argon2id: off the I/O thread.
      json busy{{"action", "login.failure"}, {"request_id", request.request_id},
                {"client", request.client},  {"method", request.method},
                {"path", request.path},      {"username", ""}};
      return Offload(
          respond, [this, &request, respond] { Login(request, respond); }, std::move(busy));
    }
    auto policy = policies_->Current();
    const Credential credential = ParseAuthorization(request.Header("authorization"));
    const bool anonymous = credential.kind == CredentialKind::kNone && !request.peer_certificate;
    if (policy->IsPublicRoute(request.path) || (route.anonymous_ok && anonymous)) {
      // Nobody is identified here, so nobody's metadata rights apply.
      request.may_read_metadata = [](std::string_view) { return false; };
      return next(request, respond);
    }
    if (credential.kind != CredentialKind::kApiKey || !auth_.api_key) {
      return Admit(request, respond, next, route, policy);
    }
    if (auth_.api_key_quick) {
      // Decided without argon2id (a cached key, an unknown id): no hand-off.
      if (auto decided = auth_.api_key_quick(credential.token, std::chrono::system_clock::now())) {
        return Admit(request, respond, next, route, policy, std::move(decided));
      }
    }
    // The request and the handler outlive the task: the transport keeps the request until it
    // is answered (the task holds a Respond), and RunServer stops the workers before the
    // listeners go.
    json busy = RequestEvent(request, route);
    busy["action"] = "auth.failure";
    Offload(
        respond,
        [this, &request, respond, next, route, policy] {
          Admit(request, respond, next, route, policy);
        },
        std::move(busy));
  } catch (...) {
    respond(CurrentExceptionResponse());
  }
}

void AuthGate::Offload(const Respond& respond, std::function<void()> task, json busy_event) {
  auto guarded = [respond, task = std::move(task)] {
    try {
      task();
    } catch (...) {
      respond(CurrentExceptionResponse());
    }
  };
  if (workers_.Post(std::move(guarded))) return;
  registry_
      .GetCounter("cvdeploy_auth_failures_total", "Requests refused 401, by reason",
                  {{"reason", "busy"}})
      .Inc();
  HttpResponse r = JsonError(503, "too many authentications in progress; retry later");
  r.headers.emplace_back("Retry-After", "1");
  // Refused, like a 401: audited (a flood of logins or key checks leaves its trace).
  busy_event["reason"] = "busy";
  Finish(std::move(busy_event), std::move(r), respond);
}

void AuthGate::Stop() { workers_.Stop(); }

AuthResult AuthGate::Authenticate(const HttpRequest& request, const security::Policy& policy,
                                  bool* bad_token, std::optional<AuthResult> decided) const {
  const auto now = std::chrono::system_clock::now();
  const Credential c = ParseAuthorization(request.Header("authorization"));
  *bad_token = c.kind != CredentialKind::kNone && c.kind != CredentialKind::kOtherScheme;
  switch (c.kind) {
    case CredentialKind::kApiKey:
      if (!auth_.api_key) return AuthResult::Failure("unknown_key", "API keys are not enabled");
      if (decided) return std::move(*decided);
      return auth_.api_key(c.token, now);
    case CredentialKind::kJwt:
      if (!auth_.session_issuer.empty() && c.issuer == auth_.session_issuer && auth_.session) {
        return auth_.session(c.token, now);
      }
      if (!auth_.jwt) return AuthResult::Failure("wrong_issuer", "token issuer is not accepted");
      return auth_.jwt(c.token, now);
    case CredentialKind::kMalformed:
      return AuthResult::Failure("malformed", "malformed bearer token");
    case CredentialKind::kOtherScheme:
      return AuthResult::Failure("bad_scheme", "only the Bearer authorization scheme is accepted");
    case CredentialKind::kNone:
      break;
  }
  // Without a token: a client certificate the TLS handshake verified against the client CA.
  // Its roles come from the policy's bindings (none bound: authenticated, but 403).
  if (request.peer_certificate) {
    const PeerCertificate& cert = *request.peer_certificate;
    Identity id;
    id.method = security::AuthMethod::kClientCertificate;
    id.name = cert.subject;
    id.roles = policy.RolesForCertificate(cert.subject, cert.sans);
    id.mfa = policy.certificate_counts_as_mfa();
    return AuthResult::Success(std::move(id));
  }
  return AuthResult::Failure("missing", "authentication required");
}

void AuthGate::Admit(HttpRequest& request, const Respond& respond, const Handler& next,
                     const RouteClass& route, std::shared_ptr<const security::Policy> policies,
                     std::optional<AuthResult> decided) {
  const security::Policy& policy = *policies;
  json event = RequestEvent(request, route);
  if (audit_only_) {
    event["identity"] = {{"name", "anonymous"}, {"method", "none"}};
    if (route.group == security::RouteGroup::kInfer) event["action"] = "infer";
    Respond audited([this, event = std::move(event), respond](HttpResponse r) mutable {
      Finish(std::move(event), std::move(r), respond);
    });
    return next(request, audited);
  }
  bool bad_token = false;
  AuthResult auth = Authenticate(request, policy, &bad_token, std::move(decided));
  if (!auth.ok()) {
    registry_
        .GetCounter("cvdeploy_auth_failures_total", "Requests refused 401, by reason",
                    {{"reason", auth.reason}})
        .Inc();
    event["action"] = "auth.failure";
    event["reason"] = auth.reason;
    return Finish(std::move(event), Unauthorized(auth.message, bad_token), respond);
  }
  Identity& id = *auth.identity;
  // An IdP's role or group names become cvdeploy roles through the policy's bindings.
  if (id.method == security::AuthMethod::kJwt) id.roles = policy.RolesForClaims(id.roles);
  event["identity"] = IdentityJson(id);
  if (route.group) {
    const security::Decision d = policy.Authorize(id, *route.group, route.model);
    if (!d.allowed) {
      denials_[static_cast<size_t>(*route.group)]->Inc();
      event["action"] = "authz.denied";
      event["reason"] = d.reason;
      HttpResponse r = JsonError(403, d.reason);
      r.identity = IdentityLabel(id);
      return Finish(std::move(event), std::move(r), respond);
    }
    event["role"] = d.role;
    if (d.rate_limit) {
      auto taken = limiter_.Take(IdentityLabel(id), d.rate_limit->requests_per_second,
                                 d.rate_limit->burst, security::RateLimiter::Clock::now());
      if (!taken.allowed) {
        rate_limited_.Inc();
        event["action"] = "rate_limited";
        HttpResponse r = JsonError(429, "rate limit of role " + d.role + " exceeded; retry later");
        r.headers.emplace_back("Retry-After", RetryAfter(taken.retry_after_s));
        r.identity = IdentityLabel(id);
        return Finish(std::move(event), std::move(r), respond);
      }
    }
    if (*route.group == security::RouteGroup::kInfer) event["action"] = "infer";
    if (route.model.empty() && (*route.group == security::RouteGroup::kHealth ||
                                *route.group == security::RouteGroup::kMetadata ||
                                *route.group == security::RouteGroup::kMonitor)) {
      // The model listings (GET /, /v1/models, /v2/models) and the dashboard's data
      // (/v1/dashboard/*) show only what this caller may read.
      request.may_read_metadata = [policies, id](std::string_view model) {
        return policies->Authorize(id, security::RouteGroup::kMetadata, model).allowed;
      };
    }
    if (*route.group == security::RouteGroup::kAdmin && request.path == kPolicyPath) {
      HttpResponse r;
      if (request.method == "GET" || request.method == "HEAD") {
        r.body = policy.SummaryJson();
      } else {
        r = JsonError(405, "method not allowed; use GET");
        r.headers.emplace_back("Allow", "GET");
      }
      r.identity = IdentityLabel(id);
      return Finish(std::move(event), std::move(r), respond);
    }
  }
  const std::string label = IdentityLabel(id);
  Respond audited([this, event = std::move(event), respond, label](HttpResponse r) mutable {
    r.identity = label;
    Finish(std::move(event), std::move(r), respond);
  });
  next(request, audited);
}

void AuthGate::Finish(json event, HttpResponse response, const Respond& respond) {
  event["status"] = response.status;
  if (!response.log.model.empty()) event["model"] = response.log.model;
  if (!response.log.version.empty()) event["version"] = response.log.version;
  event["bytes_out"] = response.body.size();
  auto shared = std::make_shared<HttpResponse>(std::move(response));
  audit_.Record(std::move(event), [shared, respond](bool proceed) {
    if (proceed) return respond(std::move(*shared));
    HttpResponse r = JsonError(503, "the audit log cannot be written; request refused");
    r.log = shared->log;
    r.identity = shared->identity;
    respond(std::move(r));
  });
}

}  // namespace cvdeploy::server
