// SPDX-License-Identifier: Apache-2.0
// Verification of JSON Web Tokens (JWS compact serialization, RFC 7515/7519) from an OIDC
// identity provider, against the provider's public keys in a local JWKS file (jwks.h). Only
// RS256, ES256 and EdDSA are accepted, and each key verifies only the one algorithm its type
// determines, so "alg": "none", HS256 "signed" with a public key and any other algorithm
// confusion fail as "bad_alg" before a signature is looked at. OpenSSL 3 EVP is used directly
// (see docs/security.md, "OIDC/JWT and session tokens").
//
// Failure reasons (AuthResult::reason): "malformed", "bad_alg", "unknown_kid",
// "bad_signature", "expired", "not_yet_valid", "wrong_issuer", "wrong_audience". Messages are
// safe to send to the client: they never contain the token or any part of it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cvdeploy/security/identity.h"
#include "cvdeploy/security/jwks.h"

namespace cvdeploy::security {

struct JwtOptions {
  std::string jwks_file;  // --jwt-jwks (JwtVerifier only)
  std::string issuer;     // --jwt-issuer: "iss" must equal it
  std::string audience;   // --jwt-audience: "aud" (string or array) must contain it
  // --jwt-roles-claim: a top-level claim name, or a dotted path into nested objects
  // ("realm_access.roles" for Keycloak); an exact top-level name wins over the path. Its value
  // is an array of strings or one space-separated string.
  std::string roles_claim = "roles";
  // Clock skew allowed on exp, nbf and iat.
  std::chrono::seconds leeway{60};
  // "amr" values (RFC 8176) that count as a second factor: Identity::mfa is true when the
  // token's amr array holds one of them. "pwd", "pin", "kba", "geo", "wia", "user", "tel",
  // "rba" and "pop" are single factors or weak signals and are left out.
  std::vector<std::string> mfa_methods = {"mfa", "otp",  "hwk",  "swk",    "sc", "sms",
                                          "fpt", "face", "iris", "retina", "vbm"};
  size_t max_token_bytes = 8192;  // longer tokens are "malformed" before any parsing
};

// Verifies `token` against `keys` and the claim rules of `options` (its jwks_file is not
// used) at time `now`, and builds the Identity (method `method`, name = "sub", roles from
// options.roles_claim, mfa from "amr", expires = "exp"). This is the one verification path:
// JwtVerifier and SessionTokens both call it. Thread-safe; never throws.
AuthResult VerifyJwt(std::string_view token, const Jwks& keys, const JwtOptions& options,
                     AuthMethod method, std::chrono::system_clock::time_point now);

// OIDC tokens against a JWKS file that can be replaced while the server runs (key rotation).
// Thread-safe: Verify, ReloadIfChanged and warnings may be called concurrently; a reload
// swaps the whole key set atomically (a request sees the old or the new set, never a mix).
class JwtVerifier {
 public:
  // Loads options.jwks_file (LoadJwksFile). Throws Error naming the file when it cannot be
  // used, and kInvalidArgument when issuer or audience is empty (both are required: without
  // the audience check any token the provider issued for another application would pass).
  explicit JwtVerifier(JwtOptions options);

  AuthResult Verify(std::string_view token, std::chrono::system_clock::time_point now) const;

  // Re-reads the JWKS file when it changed (inode, size, mtime or ctime; replace it by rename
  // for an atomic rotation). A new set that cannot be used is refused and the current keys
  // stay; the reason is then in warnings(). Returns true when the file was re-read (whether
  // or not the new set was taken), so the caller knows when to log warnings(). Never throws.
  bool ReloadIfChanged();

  // The skipped-key warnings of the current set, then the last failed reload's reason (if
  // the last read failed). The server logs them after construction and after each reload.
  std::vector<std::string> warnings() const;

  const JwtOptions& options() const { return options_; }

 private:
  struct FileStamp {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0, ctime_ns = 0;
    bool operator==(const FileStamp& o) const {
      return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns &&
             ctime_ns == o.ctime_ns;
    }
  };
  static FileStamp Stamp(const std::string& path);  // all zero when stat fails

  const JwtOptions options_;
  mutable std::shared_mutex mutex_;
  std::shared_ptr<const Jwks> keys_;  // guarded by mutex_
  FileStamp stamp_;                   // guarded by mutex_
  std::string reload_error_;          // guarded by mutex_
};

}  // namespace cvdeploy::security
