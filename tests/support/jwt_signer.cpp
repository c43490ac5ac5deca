// SPDX-License-Identifier: Apache-2.0
#include "support/jwt_signer.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <stdexcept>

#include "cvdeploy/security/crypto.h"

namespace cvdeploy::testing {
namespace {

using security::Base64UrlEncode;

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("jwt_signer: OpenSSL failed: ") + what);
}

std::string BnParam(EVP_PKEY* key, const char* name, int pad) {
  BIGNUM* bn = nullptr;
  Check(EVP_PKEY_get_bn_param(key, name, &bn) == 1, name);
  std::string out(pad > 0 ? pad : BN_num_bytes(bn), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

}  // namespace

TestJwsKey TestJwsKey::Rsa(int bits) {
  TestJwsKey k;
  k.key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)),
               EVP_PKEY_free);
  Check(k.key_ != nullptr, "RSA keygen");
  k.alg_ = "RS256";
  return k;
}

TestJwsKey TestJwsKey::EcP256() {
  TestJwsKey k;
  k.key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
  Check(k.key_ != nullptr, "EC keygen");
  k.alg_ = "ES256";
  return k;
}

TestJwsKey TestJwsKey::Ed25519() {
  TestJwsKey k;
  k.key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), EVP_PKEY_free);
  Check(k.key_ != nullptr, "Ed25519 keygen");
  k.alg_ = "EdDSA";
  return k;
}

nlohmann::json TestJwsKey::Jwk(const std::string& kid, bool with_alg) const {
  nlohmann::json jwk;
  EVP_PKEY* key = key_.get();
  if (alg_ == "RS256") {
    jwk = {{"kty", "RSA"},
           {"n", Base64UrlEncode(BnParam(key, OSSL_PKEY_PARAM_RSA_N, 0))},
           {"e", Base64UrlEncode(BnParam(key, OSSL_PKEY_PARAM_RSA_E, 0))}};
  } else if (alg_ == "ES256") {
    jwk = {{"kty", "EC"},
           {"crv", "P-256"},
           {"x", Base64UrlEncode(BnParam(key, OSSL_PKEY_PARAM_EC_PUB_X, 32))},
           {"y", Base64UrlEncode(BnParam(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32))}};
  } else {
    std::string raw(32, '\0');
    size_t len = raw.size();
    Check(EVP_PKEY_get_raw_public_key(key, reinterpret_cast<unsigned char*>(raw.data()), &len) == 1,
          "raw public key");
    jwk = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", Base64UrlEncode(raw)}};
  }
  if (!kid.empty()) jwk["kid"] = kid;
  if (with_alg) {
    jwk["alg"] = alg_;
    jwk["use"] = "sig";
  }
  return jwk;
}

std::string TestJwsKey::Sign(std::string_view signing_input) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  const EVP_MD* md = alg_ == "EdDSA" ? nullptr : EVP_sha256();
  Check(ctx && EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key_.get()) == 1, "sign init");
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(signing_input.data());
  Check(EVP_DigestSign(ctx.get(), nullptr, &len, in, signing_input.size()) == 1, "sign size");
  std::string sig(len, '\0');
  Check(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                       signing_input.size()) == 1,
        "sign");
  sig.resize(len);
  if (alg_ != "ES256") return sig;
  // DER ECDSA-Sig-Value -> r||s, each left-padded to 32 bytes (RFC 7518 section 3.4).
  const auto* der = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(sig.size()));
  Check(ecdsa != nullptr, "ECDSA DER");
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(ecdsa);
  return raw;
}

std::string TestJwsKey::PublicPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  Check(bio && PEM_write_bio_PUBKEY(bio, key_.get()) == 1, "public PEM");
  return BioText(bio);
}

std::string TestJwsKey::PublicDer() const {
  unsigned char* out = nullptr;
  const int len = i2d_PUBKEY(key_.get(), &out);
  Check(len > 0, "public DER");
  std::string der(reinterpret_cast<char*>(out), static_cast<size_t>(len));
  OPENSSL_free(out);
  return der;
}

std::string TestJwsKey::PrivatePem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  Check(
      bio && PEM_write_bio_PrivateKey(bio, key_.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1,
      "private PEM");
  return BioText(bio);
}

std::string JwsSigningInput(const std::string& header_json, const std::string& claims_json) {
  return Base64UrlEncode(header_json) + "." + Base64UrlEncode(claims_json);
}

std::string MakeJwt(const TestJwsKey& key, const std::string& kid, const nlohmann::json& claims) {
  nlohmann::json header = {{"alg", key.alg()}, {"typ", "JWT"}};
  if (!kid.empty()) header["kid"] = kid;
  const std::string input = JwsSigningInput(header.dump(), claims.dump());
  return input + "." + Base64UrlEncode(key.Sign(input));
}

std::string MakeRawJwt(const std::string& header_json, const std::string& claims_json,
                       const std::string& signature) {
  return JwsSigningInput(header_json, claims_json) + "." + Base64UrlEncode(signature);
}

std::string JwksText(const std::vector<nlohmann::json>& jwks) {
  return nlohmann::json({{"keys", jwks}}).dump(2);
}

}  // namespace cvdeploy::testing
