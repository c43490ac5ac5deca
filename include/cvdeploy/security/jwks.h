// SPDX-License-Identifier: Apache-2.0
// JSON Web Key Sets (RFC 7517) as the JWT verifier uses them: the public keys of an identity
// provider, read from a local file (never fetched), each key bound to exactly one JWS
// algorithm (RFC 7518) that follows from its type:
//   kty "RSA" (n, e; modulus >= 2048 bits)  -> RS256
//   kty "EC"  (crv "P-256", x, y)           -> ES256
//   kty "OKP" (crv "Ed25519", x)            -> EdDSA
// A key's optional "alg" must name that same algorithm and its optional "use" must be "sig";
// keys that fail any rule (other types, curves, sizes, points off the curve, duplicate kid)
// are skipped with one warning each; a set with no usable key is an error. Keys are built with
// OpenSSL 3 (EVP_PKEY_fromdata, EVP_PKEY_public_check) and Ed25519Key (crypto.h).
// JwkKey and Jwks are immutable after construction and safe to share between threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cvdeploy/security/crypto.h"

namespace cvdeploy::security {

enum class JwsAlgorithm { kRs256, kEs256, kEdDsa };

const char* JwsAlgorithmName(JwsAlgorithm algorithm);  // "RS256", "ES256", "EdDSA"
// The algorithm a JWS header's "alg" names; nullopt for anything else ("none", "HS256",
// "RS384", "PS256", "ES256K", different case, ...).
std::optional<JwsAlgorithm> ParseJwsAlgorithm(std::string_view name);

// One public verification key.
class JwkKey {
 public:
  // An Ed25519 public key (the private part, if any, is not used).
  static JwkKey FromEd25519(std::string kid, const Ed25519Key& key);

  const std::string& kid() const { return kid_; }  // empty when the JWK had none
  JwsAlgorithm algorithm() const { return algorithm_; }
  // True when `signature` (the JWS signature bytes: PKCS#1 v1.5 for RS256, raw r||s of 64
  // bytes for ES256, 64 bytes for EdDSA) is valid for `signing_input` under this key's
  // algorithm. False for any malformed signature; never throws.
  bool Verify(std::string_view signing_input, std::string_view signature) const;

 private:
  struct Pkey;
  JwkKey(std::string kid, JwsAlgorithm algorithm) : kid_(std::move(kid)), algorithm_(algorithm) {}
  friend class JwkBuilder;
  std::string kid_;
  JwsAlgorithm algorithm_;
  std::shared_ptr<Pkey> pkey_;         // RS256, ES256
  std::optional<Ed25519Key> ed25519_;  // EdDSA
};

struct Jwks {
  std::vector<JwkKey> keys;           // at least one, kids unique
  std::vector<std::string> warnings;  // one line per skipped key; no key material in them
  // The key with this kid, or nullptr.
  const JwkKey* Find(std::string_view kid) const;
};

// Parses a JWKS document ({"keys": [...]}). `what` names the source in messages. Throws
// Error(kBadInput) "WHAT: reason" when the text is not a JSON object with a "keys" array or
// no key in it is usable (the message then includes the first skipped key's reason).
Jwks ParseJwks(std::string_view text, const std::string& what);

// Largest JWKS file read (a provider's set is a few KiB).
inline constexpr size_t kMaxJwksFileBytes = 1 << 20;

// Reads and parses a JWKS file. Throws Error naming the file: kNotFound when it does not
// exist, kPermissionDenied when group or others may write it (whoever can write it can add
// keys that the server trusts), kBadInput when unreadable, larger than kMaxJwksFileBytes or
// rejected by ParseJwks.
Jwks LoadJwksFile(const std::string& path);

}  // namespace cvdeploy::security
