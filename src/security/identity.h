// SPDX-License-Identifier: Apache-2.0
// Who made a request, as the authenticators establish it and RBAC consumes it.
#pragma once

#include <chrono>
#include <optional>
#include <string>
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

const char* AuthMethodName(AuthMethod method);  // "api_key", "jwt", "session", "mtls"

}  // namespace cvdeploy::security
