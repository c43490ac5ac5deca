// SPDX-License-Identifier: Apache-2.0
#include "server/auth_setup.h"

#include <boost/asio/ip/address.hpp>

#include "cvdeploy/error.h"
#include "cvdeploy/security/api_keys.h"
#include "cvdeploy/security/audit_log.h"
#include "cvdeploy/security/jwt.h"
#include "cvdeploy/security/policy_store.h"
#include "cvdeploy/security/session_tokens.h"
#include "cvdeploy/security/users.h"

namespace cvdeploy::server {
namespace {

constexpr auto kInsecureWarningEvery = std::chrono::minutes(10);
const char* const kInsecureWarning =
    "serving WITHOUT authentication on a non-loopback address (--insecure-no-auth): anyone who "
    "can reach the port can run and manage models";

}  // namespace

bool IsLoopbackHost(const std::string& host) {
  std::string h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h == "localhost") return true;
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(h, ec);
  return !ec && address.is_loopback();
}

bool AuthConfigured(const ServerOptions& options) {
  const AuthOptions& a = options.auth;
  return !a.keys_file.empty() || !a.users_file.empty() || !a.jwt.jwks_file.empty() ||
         !options.tls.client_ca_file.empty();
}

void CheckSecureDefault(const ServerOptions& options) {
  if (IsLoopbackHost(options.host) || AuthConfigured(options) || options.auth.insecure_no_auth) {
    return;
  }
  throw Error(ErrorCode::kInvalidArgument,
              "refusing to serve on " + options.host +
                  " without authentication: configure --keys-file, --users-file, --jwt-jwks "
                  "or an mTLS client CA, bind 127.0.0.1, or accept the risk with "
                  "--insecure-no-auth");
}

struct SecurityStack::Impl {
  std::shared_ptr<security::PolicyStore> policies;
  std::shared_ptr<security::JwtVerifier> jwt;
  std::shared_ptr<security::SessionTokens> sessions;
  std::shared_ptr<security::ApiKeyStore> keys;
  std::shared_ptr<security::UserStore> users;
  std::shared_ptr<security::AuditLog> audit_log;
  std::chrono::steady_clock::time_point next_reload_check;
  std::chrono::steady_clock::time_point next_last_used_flush;
};

namespace {

// The issuer of the server's own session tokens; an IdP token with another iss goes to the
// JWKS verifier.
constexpr const char* kSessionIssuer = "cvdeploy";

void AddJwt(const AuthOptions& options, Authenticators& a, SecurityStack::Impl& impl,
            const ServerLog& log) {
  if (options.jwt.jwks_file.empty()) return;
  security::JwtOptions jwt;
  jwt.jwks_file = options.jwt.jwks_file;
  jwt.issuer = options.jwt.issuer;
  jwt.audience = options.jwt.audience;
  jwt.roles_claim = options.jwt.roles_claim;
  if (jwt.issuer.empty() || jwt.audience.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "--jwt-jwks needs --jwt-issuer and --jwt-audience (without them any token the "
                "provider issued for another application would pass)");
  }
  if (jwt.issuer == kSessionIssuer) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("--jwt-issuer may not be '") + kSessionIssuer +
                    "': that is the issuer of the server's own session tokens");
  }
  impl.jwt = std::make_shared<security::JwtVerifier>(jwt);
  for (const auto& w : impl.jwt->warnings()) log("warning", w);
  a.jwt = [verifier = impl.jwt](std::string_view token, auto now) {
    return verifier->Verify(token, now);
  };
}

void AddKeys(const AuthOptions& options, Authenticators& a, SecurityStack::Impl& impl) {
  if (options.keys_file.empty()) return;
  // last_used goes to the file from RunServer's loop (Tick), not from a request: the write
  // and its fsync stay off the I/O threads.
  security::ApiKeyStoreOptions store_options;
  store_options.persist_last_used = false;
  impl.keys = std::make_shared<security::ApiKeyStore>(options.keys_file, store_options);
  a.api_key = [keys = impl.keys](std::string_view key, auto now) {
    return keys->Authenticate(key, now);
  };
  a.api_key_quick = [keys = impl.keys](std::string_view key, auto now) {
    return keys->AuthenticateWithoutHashing(key, now);
  };
}

void AddUsers(const AuthOptions& options, Authenticators& a, SecurityStack::Impl& impl) {
  if (options.users_file.empty()) return;
  impl.users = std::make_shared<security::UserStore>(options.users_file);
  a.login = [users = impl.users](const std::string& user, const std::string& password,
                                 const std::string& totp, const std::string& client, auto now) {
    return users->Login(user, password, totp, client, now);
  };
  impl.sessions = std::make_shared<security::SessionTokens>(
      security::SessionTokens::LoadOrGenerateKey(options.session_key_file), kSessionIssuer,
      std::chrono::seconds(options.session_ttl_s));
  a.session_issuer = kSessionIssuer;
  a.session = [sessions = impl.sessions](std::string_view token, auto now) {
    return sessions->Verify(token, now);
  };
  a.issue = [sessions = impl.sessions](const security::Identity& who, auto now) {
    const auto issued = sessions->Issue(who, now);
    return Authenticators::Issued{issued.token, issued.expires_in};
  };
}

}  // namespace

SecurityStack::SecurityStack(const ServerOptions& options, Registry& registry, ServerLog log)
    : impl_(std::make_unique<Impl>()), log_(std::move(log)) {
  CheckSecureDefault(options);
  AuditSubmit submit;
  if (!options.audit.path.empty()) {
    security::AuditOptions audit;
    audit.path = options.audit.path;
    audit.hmac_key_file = options.audit.hmac_key_file;
    audit.signing_key_file = options.audit.signing_key_file;
    audit.fail_open = options.audit.fail_open;
    audit.checkpoint_every = options.audit.checkpoint_every;
    audit.rotate_bytes = options.audit.rotate_bytes;
    if (options.audit.sync == "none") {
      audit.sync = security::AuditOptions::Sync::kNone;
    } else if (options.audit.sync == "every") {
      audit.sync = security::AuditOptions::Sync::kEvery;
    } else if (options.audit.sync == "batch") {
      audit.sync = security::AuditOptions::Sync::kBatch;
    } else {
      throw InvalidArgument("audit sync '" + options.audit.sync + "': use none, batch or every");
    }
    if (audit.hmac_key_file.empty() || audit.signing_key_file.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "--audit-log needs --audit-hmac-key-file and --audit-signing-key (create them "
                  "with `cvdeploy audit keygen`)");
    }
    impl_->audit_log = std::make_shared<security::AuditLog>(audit);
    submit = [log = impl_->audit_log](nlohmann::json event,
                                      std::function<void(const Status&)> done) {
      log->Submit(std::move(event), std::move(done));
    };
  }
  audit_ = std::make_unique<AuditSink>(std::move(submit), registry, options.audit.fail_open);
  auto& reload_ok = registry.GetCounter("cvdeploy_auth_policy_reloads_total",
                                        "Policy file reloads, by result", {{"result", "ok"}});
  auto& reload_invalid =
      registry.GetCounter("cvdeploy_auth_policy_reloads_total", "Policy file reloads, by result",
                          {{"result", "invalid"}});
  const bool auth = AuthConfigured(options) || !options.auth.policy_file.empty();
  if (!auth) {
    warn_insecure_ = options.auth.insecure_no_auth && !IsLoopbackHost(options.host);
    // Without authentication the audit log still records every request (as "anonymous").
    if (impl_->audit_log) gate_ = AuthGate::AuditOnly(*audit_, registry);
    return;
  }
  // Credentials and session tokens would cross the network in clear text.
  warn_cleartext_ = !IsLoopbackHost(options.host) && !options.tls.enabled();
  AuditSink* audit = audit_.get();
  ServerLog server_log = log_;
  impl_->policies = std::make_shared<security::PolicyStore>(
      options.auth.policy_file,
      std::chrono::milliseconds(static_cast<int64_t>(options.auth.policy_check_interval_s * 1000)),
      [audit, server_log, &reload_ok, &reload_invalid](bool ok, const std::string& message) {
        (ok ? reload_ok : reload_invalid).Inc();
        server_log(ok ? "info" : "error", message);
        audit->Record(
            {{"action", "policy.reload"}, {"result", ok ? "ok" : "invalid"}, {"message", message}});
      });
  Authenticators authenticators;
  AddJwt(options.auth, authenticators, *impl_, log_);
  AddKeys(options.auth, authenticators, *impl_);
  AddUsers(options.auth, authenticators, *impl_);
  gate_ = std::make_unique<AuthGate>(impl_->policies, std::move(authenticators), *audit_, registry,
                                     std::max(2, options.io_threads));
}

SecurityStack::~SecurityStack() = default;

Handler SecurityStack::Protect(Handler handler) {
  if (!gate_) return handler;
  return gate_->Wrap(std::move(handler));
}

void SecurityStack::Started(const std::string& address) {
  if (warn_cleartext_) {
    log_("warning",
         "authentication is on but TLS is off on a non-loopback address: API keys, passwords "
         "and tokens cross the network in clear text; add --tls-cert/--tls-key (or terminate "
         "TLS in front of the server)");
  }
  if (warn_insecure_) {
    log_("warning", kInsecureWarning);
    next_warning_ = std::chrono::steady_clock::now() + kInsecureWarningEvery;
  }
  audit_->Record(
      {{"action", "server.start"}, {"address", address}, {"authentication", gate_ != nullptr}});
}

void SecurityStack::Tick() {
  const auto now = std::chrono::steady_clock::now();
  if (now < impl_->next_reload_check) return;
  impl_->next_reload_check = now + std::chrono::seconds(1);
  // The policy is also checked on the request path; this reports a change on an idle server.
  if (impl_->policies) impl_->policies->Current();
  if (impl_->keys && now >= impl_->next_last_used_flush) {
    impl_->next_last_used_flush = now + std::chrono::minutes(1);
    impl_->keys->FlushLastUsed();
  }
  if (impl_->jwt) {
    if (impl_->jwt->ReloadIfChanged()) {
      log_("info", "JWKS file changed: " + impl_->jwt->options().jwks_file + " reread");
      for (const auto& w : impl_->jwt->warnings()) log_("warning", w);
      audit_->Record({{"action", "jwks.reload"}, {"file", impl_->jwt->options().jwks_file}});
    }
  }
  if (!warn_insecure_ || now < next_warning_) return;
  log_("warning", kInsecureWarning);
  next_warning_ = std::chrono::steady_clock::now() + kInsecureWarningEvery;
}

void SecurityStack::Stopped() {
  stopped_ = true;
  if (gate_) gate_->Stop();
  if (impl_->keys) impl_->keys->FlushLastUsed();
  audit_->Record({{"action", "server.stop"}});
  if (impl_->audit_log) {
    const Status closed = impl_->audit_log->Close();  // the final checkpoint
    if (!closed.ok()) log_("error", "audit log: " + closed.message());
  }
}

void SecurityStack::CertificateEvent(bool ok, const std::string& detail) {
  audit_->Record(
      {{"action", "certificate.reload"}, {"result", ok ? "ok" : "failed"}, {"detail", detail}});
}

void SecurityStack::RepositoryEvent(const std::string& level, const std::string& message) {
  // The repository unloads after the log closed (at the end of RunServer): server.stop covers
  // those.
  if (stopped_) return;
  audit_->Record({{"action", "model"}, {"level", level}, {"message", message}});
}

}  // namespace cvdeploy::server
