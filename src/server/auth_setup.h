// SPDX-License-Identifier: Apache-2.0
// Builds the server's security stack from ServerOptions: the secure-default check, the audit
// log, the policy store (hot reload, reported to the log, the audit log and
// cvdeploy_auth_policy_reloads_total{result}), the authenticators and the AuthGate. RunServer
// owns one SecurityStack for its lifetime; without authentication (a loopback server, or
// --insecure-no-auth) the gate is absent, or audit-only when an audit log is configured.
//
// Thread safety: construction, Started, Tick and Stopped run on RunServer's thread; Gate()
// and Audit() are used from I/O threads (both thread-safe).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "cvdeploy/server.h"
#include "server/audit_sink.h"
#include "server/auth_gate.h"
#include "server/metrics.h"

namespace cvdeploy::server {

using ServerLog = std::function<void(const std::string& level, const std::string& message)>;

// Throws Error(kInvalidArgument) with one line saying why and how when `options` bind a
// non-loopback address without authentication and without insecure_no_auth.
void CheckSecureDefault(const ServerOptions& options);

class SecurityStack {
 public:
  // Throws cvdeploy::Error for a bad policy, keys, users, JWKS or key file (kBadInput,
  // kPermissionDenied, kNotFound) or an audit log that cannot be opened.
  SecurityStack(const ServerOptions& options, Registry& registry, ServerLog log);
  ~SecurityStack();

  AuthGate* Gate() { return gate_.get(); }  // null: neither authentication nor audit log
  AuditSink& Audit() { return *audit_; }
  // `handler` behind the gate (or as it is without one).
  Handler Protect(Handler handler);

  void Started(const std::string& address);
  // Called now and then by RunServer's loop: repeats the --insecure-no-auth warning every
  // 10 minutes.
  void Tick();
  // Audits the stop and closes the audit log (its final checkpoint).
  void Stopped();
  // A TLS certificate reload (TlsManager's reload hook) for the audit log.
  void CertificateEvent(bool ok, const std::string& detail);
  // A model repository event (load, unload, failure) for the audit log; ignored after
  // Stopped().
  void RepositoryEvent(const std::string& level, const std::string& message);

  struct Impl;  // the authenticators and the audit log (auth_setup.cpp)

 private:
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<AuditSink> audit_;
  std::unique_ptr<AuthGate> gate_;
  ServerLog log_;
  bool warn_insecure_ = false;
  bool warn_cleartext_ = false;
  std::atomic<bool> stopped_{false};
  std::chrono::steady_clock::time_point next_warning_;
};

}  // namespace cvdeploy::server
