// SPDX-License-Identifier: Apache-2.0
// Who made a request, as the authenticators establish it and RBAC consumes it.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cvdeploy::security {

enum class AuthMethod {
  kApiKey,             // Authorization: Bearer cvd_... checked against the keys file
  kJwt,                // a token from an OIDC identity provider, checked against the JWKS
  kSession,            // a session token this server issued after password + TOTP login
  kClientCertificate,  // an mTLS client certificate the server's client CA signed
};

struct Identity {
  AuthMethod method = AuthMethod::kApiKey;
  std::string name;                 // key name, user name, token subject, certificate subject
  std::vector<std::string> roles;   // cvdeploy role names
  std::vector<std::string> models;  // an API key's model scope (glob patterns); empty: any
  bool mfa = false;                 // a second factor was verified (see docs/security.md)
  std::optional<std::chrono::system_clock::time_point> expires;
};

// The outcome of checking one credential. On failure `reason` is a short stable label for
// metrics and the audit log ("missing", "malformed", "unknown_key", "revoked", "expired",
// "not_yet_valid", "bad_signature", "unknown_kid", "bad_alg", "wrong_issuer",
// "wrong_audience", "bad_password", "bad_totp", "replayed_totp", "locked_out", ...) and
// `message` one line that is safe to send to the client: it never contains the secret.
struct AuthResult {
  std::optional<Identity> identity;
  std::string reason, message;
  // Seconds the client should wait before trying again (lockout), 0 when not applicable.
  int retry_after_s = 0;
  bool ok() const { return identity.has_value(); }
  static AuthResult Success(Identity id) { return {std::move(id), {}, {}, 0}; }
  static AuthResult Failure(std::string reason, std::string message, int retry_after_s = 0) {
    return {std::nullopt, std::move(reason), std::move(message), retry_after_s};
  }
};

const char* AuthMethodName(AuthMethod method);  // "api_key", "jwt", "session", "mtls"

}  // namespace cvdeploy::security
