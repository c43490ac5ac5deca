// SPDX-License-Identifier: Apache-2.0
// A test-only JWS signer: generates RSA, EC P-256 and Ed25519 keys with OpenSSL, writes their
// public JWKs (base64url n/e, x/y, x) and signs compact JWTs with them, independently of the
// verifier under test (src/security/jwt.h), so that the tests check the verifier against
// tokens it did not make. Throws std::runtime_error when OpenSSL fails. Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

typedef struct evp_pkey_st EVP_PKEY;

namespace cvdeploy::testing {

class TestJwsKey {
 public:
  static TestJwsKey Rsa(int bits = 2048);
  static TestJwsKey EcP256();
  static TestJwsKey Ed25519();

  // "RS256", "ES256" or "EdDSA".
  const std::string& alg() const { return alg_; }
  // The public JWK: kty and its members, kid, and "alg"/"use" when `with_alg` is set.
  nlohmann::json Jwk(const std::string& kid, bool with_alg = false) const;
  // The JWS signature of `signing_input` (RS256: PKCS#1 v1.5; ES256: raw r||s, 64 bytes).
  std::string Sign(std::string_view signing_input) const;
  std::string PublicPem() const;   // SubjectPublicKeyInfo PEM
  std::string PublicDer() const;   // SubjectPublicKeyInfo DER
  std::string PrivatePem() const;  // PKCS#8 PEM (for PyJWT)

 private:
  std::shared_ptr<EVP_PKEY> key_;
  std::string alg_;
};

// BASE64URL(header) "." BASE64URL(claims), with the JSON texts verbatim.
std::string JwsSigningInput(const std::string& header_json, const std::string& claims_json);
// A signed compact token: header gets "alg" = key.alg() (and "kid" when not empty).
std::string MakeJwt(const TestJwsKey& key, const std::string& kid, const nlohmann::json& claims);
// A compact token from the given parts (any header, any signature bytes).
std::string MakeRawJwt(const std::string& header_json, const std::string& claims_json,
                       const std::string& signature);
// {"keys": [...]}.
std::string JwksText(const std::vector<nlohmann::json>& jwks);

}  // namespace cvdeploy::testing
