// SPDX-License-Identifier: Apache-2.0
// The authentication and authorization middleware in front of Api::Handle (server.cpp builds
// the chain: transport -> AuthGate -> Api). For each request:
//   1. classify the route (route_groups.h); public routes (the policy's list, the login
//      route) pass without credentials;
//   2. authenticate: the Bearer token (API key, session token or OIDC JWT; credentials.h) or,
//      without one, a verified mTLS client certificate bound by the policy; none or a bad
//      one -> 401 {"error"} with WWW-Authenticate: Bearer realm="cvdeploy"
//      [, error="invalid_token"] (RFC 6750);
//   3. authorize (Policy::Authorize) -> 403 {"error": reason};
//   4. rate limit per identity (the role's token bucket) -> 429 with Retry-After;
//   5. hand the request on; its response is audited before it is sent (fail closed: 503 when
//      the entry cannot be written, see AuditSink).
// A route served without credentials too (RouteClass::anonymous_ok: GET /) passes a request
// that carries none on unauthenticated and unaudited, as a public route; one that carries a
// credential is checked as above. Requests that pass carry HttpRequest::may_read_metadata.
// Every non-public request leaves exactly one audit entry. Error bodies never contain the
// credential. The identity is passed on in the access log (LogFields::identity).
//
// Thread-safe: Handle runs on any I/O thread; the authenticators must be thread-safe. Logins
// and API key checks run on the gate's workers (argon2id must not stall the I/O threads), so
// `next` may be called, and the response sent, from a worker thread.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "cvdeploy/security/identity.h"
#include "cvdeploy/security/policy_store.h"
#include "cvdeploy/security/rate_limiter.h"
#include "server/audit_sink.h"
#include "server/auth_workers.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/route_groups.h"

namespace cvdeploy::server {

// The credential checkers; an empty one means that kind of credential is not configured
// (such a token is answered 401).
struct Authenticators {
  using Check = std::function<security::AuthResult(std::string_view token,
                                                   std::chrono::system_clock::time_point now)>;
  Check api_key;  // "cvd_..." (ApiKeyStore::Authenticate)
  // The part of api_key that needs no argon2id (ApiKeyStore::AuthenticateWithoutHashing):
  // nullopt when the full check is needed. Requests it decides stay on the I/O thread; only
  // the rest go to the workers. Empty: every API key request goes to a worker.
  std::function<std::optional<security::AuthResult>(std::string_view token,
                                                    std::chrono::system_clock::time_point now)>
      api_key_quick;
  Check session;               // JWTs whose iss is `session_issuer` (SessionTokens::Verify)
  std::string session_issuer;  // "" : no session tokens
  Check jwt;                   // other JWTs (JwtVerifier::Verify)
  // POST /v1/auth/login: UserStore::Login, then the session token for the identity.
  using Login = std::function<security::AuthResult(
      const std::string& user, const std::string& password, const std::string& totp,
      const std::string& client, std::chrono::system_clock::time_point now)>;
  struct Issued {
    std::string token;
    int64_t expires_in = 0;  // seconds
  };
  using Issue = std::function<Issued(const security::Identity& identity,
                                     std::chrono::system_clock::time_point now)>;
  Login login;  // empty: the login route answers 404
  Issue issue;
};

// Authentications waiting for a worker; more: 503.
inline constexpr size_t kMaxQueuedAuthentications = 256;

// Largest login request body; larger: 413.
inline constexpr size_t kMaxLoginBodyBytes = 4096;

class AuthGate {
 public:
  // `audit` must outlive the gate. `worker_threads` run logins and API key checks (argon2id)
  // off the I/O threads.
  AuthGate(std::shared_ptr<security::PolicyStore> policies, Authenticators authenticators,
           AuditSink& audit, Registry& registry, int worker_threads = 2);

  // A gate that authenticates nobody and only audits: for a server with an audit log but no
  // authentication (loopback, or --insecure-no-auth). Every request but the policy's public
  // routes passes as the identity "anonymous" and leaves one audit entry, written before its
  // response is sent, as with authentication.
  static std::unique_ptr<AuthGate> AuditOnly(AuditSink& audit, Registry& registry);

  // Runs the steps above and calls `next` for a request that passed. Never throws.
  void Handle(HttpRequest& request, const Respond& respond, const Handler& next) noexcept;
  // A handler that runs Handle in front of `next`.
  Handler Wrap(Handler next);
  // Stops the workers (queued authentications are answered 503). Call before the handlers
  // passed to Handle are destroyed.
  void Stop();

 private:
  // `decided`: the API key's result when Handle already has it (api_key_quick), so that the
  // key is not looked up twice.
  security::AuthResult Authenticate(const HttpRequest& request, const security::Policy& policy,
                                    bool* bad_token,
                                    std::optional<security::AuthResult> decided) const;
  void Admit(HttpRequest& request, const Respond& respond, const Handler& next,
             const RouteClass& route, std::shared_ptr<const security::Policy> policy,
             std::optional<security::AuthResult> decided = std::nullopt);
  void Login(HttpRequest& request, const Respond& respond);
  // Runs `task` on a worker, or answers 503 when too many are queued and audits
  // `busy_event` with reason "busy".
  void Offload(const Respond& respond, std::function<void()> task, nlohmann::json busy_event);
  // Audits `event` with the response's status and sends `response` (or 503 when the entry
  // cannot be written and auditing fails closed).
  void Finish(nlohmann::json event, HttpResponse response, const Respond& respond);

  std::shared_ptr<security::PolicyStore> policies_;
  Authenticators auth_;
  AuditSink& audit_;
  Registry& registry_;
  security::RateLimiter limiter_;
  AuthWorkers workers_;
  Counter& rate_limited_;
  std::array<Counter*, security::kAllRouteGroups.size()> denials_{};
  bool audit_only_ = false;
};

// Identity as the access log and the audit log name it: "api_key:ci-bot".
std::string IdentityLabel(const security::Identity& identity);

}  // namespace cvdeploy::server
