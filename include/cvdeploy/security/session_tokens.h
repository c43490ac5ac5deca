// SPDX-License-Identifier: Apache-2.0
// The server's own short-lived session tokens, issued by POST /v1/auth/login after a password
// and TOTP check: JWTs signed with the server's Ed25519 key,
//   header {"alg":"EdDSA","typ":"JWT","kid":<RFC 7638 thumbprint of the public key>}
//   claims iss, sub, aud "cvdeploy", iat, exp (iat + ttl), jti (128 random bits), roles,
//          amr (["pwd","otp"] when the identity passed TOTP, ["pwd"] otherwise)
// Verification goes through the same VerifyJwt as IdP tokens (jwt.h), with the server's
// public key as a one-key JWKS, and gives Identity::method kSession, mfa when amr holds
// "otp". Tokens are bearer tokens; they cannot be revoked before they expire (the short TTL
// is the control). Immutable after construction; Issue and Verify are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "cvdeploy/security/crypto.h"
#include "cvdeploy/security/identity.h"
#include "cvdeploy/security/jwt.h"

namespace cvdeploy::security {

class SessionTokens {
 public:
  static constexpr const char* kAudience = "cvdeploy";

  // `key` must hold the private key (kInvalidArgument otherwise); `ttl` must be positive.
  SessionTokens(Ed25519Key key, std::string issuer = "cvdeploy",
                std::chrono::seconds ttl = std::chrono::minutes(15));

  struct Issued {
    std::string token;
    int64_t expires_in;  // seconds, as the login response's "expires_in"
  };
  // A token for `who` (name -> sub, roles -> roles, mfa -> amr "otp"), valid from `now`.
  Issued Issue(const Identity& who, std::chrono::system_clock::time_point now) const;
  // As VerifyJwt: never throws; failure reasons as in jwt.h.
  AuthResult Verify(std::string_view token, std::chrono::system_clock::time_point now) const;

  // The signing key from `path` (--session-key: a PEM "PRIVATE KEY" file, e.g. from
  // `openssl genpkey -algorithm ed25519`, refused unless it is a 0600 file of this user as
  // CheckSecretFile says), or, for an empty path, a fresh key: its tokens then die with the
  // process. Throws Error naming the file (kNotFound, kPermissionDenied, kInvalidArgument
  // when it is not an Ed25519 private key).
  static Ed25519Key LoadOrGenerateKey(const std::string& path);

  const std::string& kid() const { return kid_; }
  std::chrono::seconds ttl() const { return ttl_; }

 private:
  Ed25519Key key_;
  std::string issuer_, kid_;
  std::chrono::seconds ttl_;
  Jwks jwks_;         // the public key alone, as VerifyJwt takes it
  JwtOptions rules_;  // issuer, audience kAudience, leeway, mfa method "otp"
};

}  // namespace cvdeploy::security
