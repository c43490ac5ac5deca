// SPDX-License-Identifier: Apache-2.0
// Reads the credential of a request from its Authorization header (untrusted bytes; fuzzed by
// tests/fuzz/credentials_fuzz.cpp) and tells which authenticator checks it:
//   "Bearer cvd_..."          -> an API key (the keys file)
//   "Bearer <JWT>"            -> a JWT; its unverified "iss" claim chooses the verifier (the
//                                server's own session issuer, or the OIDC JWKS). The claim is
//                                only a routing hint: the chosen verifier checks everything.
//   anything else             -> malformed (401 invalid_token) or another scheme (401).
// Pure functions; the token views point into the header. Never throws.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cvdeploy::server {

enum class CredentialKind {
  kNone,         // no Authorization header
  kApiKey,       // Bearer cvd_...
  kJwt,          // Bearer header.payload.signature
  kMalformed,    // Bearer with an empty, oversized or ill-formed token
  kOtherScheme,  // Basic, Digest, ...
};

struct Credential {
  CredentialKind kind = CredentialKind::kNone;
  std::string_view token;  // kApiKey, kJwt: the token as sent
  std::string issuer;      // kJwt: the unverified "iss" claim, "" when absent or unreadable
};

// Tokens longer than this are malformed (a JWT with a few claims is well under 2 KiB).
inline constexpr size_t kMaxTokenBytes = 8192;

Credential ParseAuthorization(std::optional<std::string_view> header);

}  // namespace cvdeploy::server
