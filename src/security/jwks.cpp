// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/jwks.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <set>
#include <sstream>

#include "cvdeploy/error.h"
#include "security/jose_json.h"

namespace cvdeploy::security {

struct JwkKey::Pkey {
  EVP_PKEY* key = nullptr;
  ~Pkey() { EVP_PKEY_free(key); }
};

namespace {

constexpr int kMinRsaBits = 2048;
// Larger moduli only cost verification time (a JWKS is configuration, but a fuzzer or a
// mistaken file should not make every request slow).
constexpr int kMaxRsaBits = 8192;
constexpr size_t kMaxRsaExponentBytes = 32;  // SP 800-56B: e < 2^256

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using BldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM, OSSL_PARAM_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// A base64url member of a JWK, decoded; throws std::string (the reason) when it is missing or
// not base64url.
std::string Member(const nlohmann::json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) throw std::string("no \"") + name + "\" string";
  std::optional<std::string> bytes = Base64UrlDecode(it->get_ref<const std::string&>());
  if (!bytes || bytes->empty()) throw std::string("\"") + name + "\" is not base64url";
  return *bytes;
}

// Builds a public key from OSSL_PARAMs and runs OpenSSL's public-key check (RSA: SP 800-56B
// checks of n and e; EC: the point is on the curve and not the point at infinity).
EVP_PKEY* FromData(const char* type, OSSL_PARAM_BLD* bld) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    ERR_clear_error();
    throw std::string("OpenSSL refused the key parameters");
  }
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    throw std::string("the public key fails OpenSSL's key check");
  }
  return pkey;
}

EVP_PKEY* RsaKey(const nlohmann::json& jwk) {
  const std::string n = Member(jwk, "n"), e = Member(jwk, "e");
  if (e.size() > kMaxRsaExponentBytes) throw std::string("RSA exponent too large");
  BnPtr bn_n(BN_bin2bn(Bytes(n), static_cast<int>(n.size()), nullptr));
  BnPtr bn_e(BN_bin2bn(Bytes(e), static_cast<int>(e.size()), nullptr));
  if (!bn_n || !bn_e) throw std::string("out of memory");
  const int bits = BN_num_bits(bn_n.get());
  if (bits < kMinRsaBits) {
    throw "RSA modulus of " + std::to_string(bits) + " bits (at least 2048 are required)";
  }
  if (bits > kMaxRsaBits) throw "RSA modulus of " + std::to_string(bits) + " bits (at most 8192)";
  BldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    throw std::string("out of memory");
  }
  return FromData("RSA", bld.get());
}

EVP_PKEY* EcKey(const nlohmann::json& jwk) {
  auto crv = jwk.find("crv");
  if (crv == jwk.end() || *crv != "P-256") throw std::string("EC key whose crv is not P-256");
  const std::string x = Member(jwk, "x"), y = Member(jwk, "y");
  // RFC 7518 section 6.2.1.2: the coordinates are the full 32 bytes, leading zeros kept.
  if (x.size() != 32 || y.size() != 32) throw std::string("P-256 coordinates must be 32 bytes");
  const std::string point = "\x04" + x + y;  // SEC 1 uncompressed point
  BldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    throw std::string("out of memory");
  }
  return FromData("EC", bld.get());
}

// The algorithm a JWK's kty (and crv) determine; throws the reason for unsupported ones.
JwsAlgorithm AlgorithmOf(const nlohmann::json& jwk) {
  auto kty = jwk.find("kty");
  if (kty == jwk.end() || !kty->is_string()) throw std::string("no \"kty\" string");
  if (*kty == "RSA") return JwsAlgorithm::kRs256;
  if (*kty == "EC") return JwsAlgorithm::kEs256;
  if (*kty == "OKP") {
    auto crv = jwk.find("crv");
    if (crv == jwk.end() || *crv != "Ed25519")
      throw std::string("OKP key whose crv is not Ed25519");
    return JwsAlgorithm::kEdDsa;
  }
  throw std::string("unsupported kty (RSA, EC and OKP are supported)");
}

// The kid for messages: JSON-quoted (so control characters are escaped) and shortened.
std::string QuotedKid(const std::string& kid) {
  std::string quoted =
      nlohmann::json(kid).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  if (quoted.size() > 66) quoted = quoted.substr(0, 62) + "...\"";
  return quoted;
}

}  // namespace

// Builds JwkKey objects (a friend of JwkKey, so that its constructor stays private).
class JwkBuilder {
 public:
  // The key, or throws std::string with the reason it is not usable.
  static JwkKey Build(const nlohmann::json& jwk) {
    if (!jwk.is_object()) throw std::string("not a JSON object");
    std::string kid;
    if (auto it = jwk.find("kid"); it != jwk.end()) {
      if (!it->is_string()) throw std::string("\"kid\" is not a string");
      kid = it->get<std::string>();
    }
    if (auto it = jwk.find("use"); it != jwk.end() && *it != "sig") {
      throw std::string("\"use\" is not \"sig\"");
    }
    const JwsAlgorithm algorithm = AlgorithmOf(jwk);
    if (auto it = jwk.find("alg"); it != jwk.end() && *it != JwsAlgorithmName(algorithm)) {
      throw std::string("\"alg\" is not ") + JwsAlgorithmName(algorithm) + " (the only algorithm " +
          "cvdeploy accepts for this key type)";
    }
    JwkKey key(std::move(kid), algorithm);
    if (algorithm == JwsAlgorithm::kEdDsa) {
      try {
        key.ed25519_ = Ed25519Key::FromRawPublic(Member(jwk, "x"));
      } catch (const Error&) {
        throw std::string("\"x\" is not a 32-byte Ed25519 public key");
      }
      return key;
    }
    key.pkey_ = std::make_shared<JwkKey::Pkey>();
    key.pkey_->key = algorithm == JwsAlgorithm::kRs256 ? RsaKey(jwk) : EcKey(jwk);
    return key;
  }
  static JwkKey FromEd25519(std::string kid, const Ed25519Key& key) {
    JwkKey out(std::move(kid), JwsAlgorithm::kEdDsa);
    out.ed25519_ = Ed25519Key::FromRawPublic(key.RawPublic());
    return out;
  }
};

const char* JwsAlgorithmName(JwsAlgorithm algorithm) {
  switch (algorithm) {
    case JwsAlgorithm::kRs256:
      return "RS256";
    case JwsAlgorithm::kEs256:
      return "ES256";
    case JwsAlgorithm::kEdDsa:
      return "EdDSA";
  }
  return "?";
}

std::optional<JwsAlgorithm> ParseJwsAlgorithm(std::string_view name) {
  for (JwsAlgorithm a : {JwsAlgorithm::kRs256, JwsAlgorithm::kEs256, JwsAlgorithm::kEdDsa}) {
    if (name == JwsAlgorithmName(a)) return a;
  }
  return std::nullopt;
}

JwkKey JwkKey::FromEd25519(std::string kid, const Ed25519Key& key) {
  return JwkBuilder::FromEd25519(std::move(kid), key);
}

bool JwkKey::Verify(std::string_view signing_input, std::string_view signature) const {
  if (algorithm_ == JwsAlgorithm::kEdDsa) return ed25519_->Verify(signing_input, signature);
  std::string der;
  if (algorithm_ == JwsAlgorithm::kEs256) {
    // JWS carries r||s (RFC 7518 section 3.4); OpenSSL verifies a DER ECDSA-Sig-Value.
    if (signature.size() != 64) return false;
    EcdsaSigPtr sig(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(Bytes(signature), 32, nullptr);
    BIGNUM* s = BN_bin2bn(Bytes(signature) + 32, 32, nullptr);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      ERR_clear_error();
      return false;
    }
    unsigned char* out = nullptr;
    const int len = i2d_ECDSA_SIG(sig.get(), &out);
    if (len <= 0) {
      ERR_clear_error();
      return false;
    }
    der.assign(reinterpret_cast<char*>(out), static_cast<size_t>(len));
    OPENSSL_free(out);
    signature = der;
  } else if (signature.size() != static_cast<size_t>(EVP_PKEY_get_size(pkey_->key))) {
    return false;  // RS256: exactly the modulus length (RFC 8017 section 8.2.2)
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  const bool ok =
      ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey_->key) == 1 &&
      EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(), Bytes(signing_input),
                       signing_input.size()) == 1;
  if (!ok) ERR_clear_error();
  return ok;
}

const JwkKey* Jwks::Find(std::string_view kid) const {
  for (const JwkKey& key : keys) {
    if (key.kid() == kid) return &key;
  }
  return nullptr;
}

Jwks ParseJwks(std::string_view text, const std::string& what) {
  std::optional<nlohmann::json> doc = ParseJoseJson(text);
  if (!doc) throw BadInput(what + ": not a valid JWKS (invalid JSON, too deep or duplicate names)");
  auto list = doc->is_object() ? doc->find("keys") : doc->end();
  if (list == doc->end() || !list->is_array()) {
    throw BadInput(what + ": not a JWKS (no \"keys\" array)");
  }
  Jwks jwks;
  std::set<std::string> kids;
  std::string first_reason;
  for (size_t i = 0; i < list->size(); ++i) {
    const nlohmann::json& jwk = (*list)[i];
    std::string label = "key " + std::to_string(i);
    if (jwk.is_object() && jwk.contains("kid") && jwk["kid"].is_string()) {
      label += " (kid " + QuotedKid(jwk["kid"].get<std::string>()) + ")";
    }
    try {
      JwkKey key = JwkBuilder::Build(jwk);
      if (!kids.insert(key.kid()).second) throw std::string("its kid repeats an earlier key's");
      for (const char* secret : {"d", "p", "q", "dp", "dq", "qi", "k"}) {
        if (jwk.contains(secret)) {
          jwks.warnings.push_back(what + ": " + label +
                                  " holds private key members; only its public part is used " +
                                  "(a JWKS should hold public keys only)");
          break;
        }
      }
      jwks.keys.push_back(std::move(key));
    } catch (const std::string& reason) {
      if (first_reason.empty()) first_reason = label + ": " + reason;
      jwks.warnings.push_back(what + ": " + label + " skipped: " + reason);
    }
  }
  if (jwks.keys.empty()) {
    throw BadInput(
        what + ": no usable key in the JWKS" +
        (first_reason.empty() ? std::string(" (\"keys\" is empty)") : " (" + first_reason + ")"));
  }
  if (jwks.keys.size() > 1 && kids.count("")) {
    jwks.warnings.push_back(what + ": a key without kid cannot be selected while the set has " +
                            "several keys (tokens must name a kid then)");
  }
  return jwks;
}

Jwks LoadJwksFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) throw NotFound(path + ": JWKS file does not exist");
    throw BadInput(path + ": cannot read the JWKS file");
  }
  if (!S_ISREG(st.st_mode)) throw BadInput(path + ": the JWKS is not a regular file");
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    throw PermissionDenied(path + ": the JWKS file is writable by group or others (whoever can " +
                           "write it can add trusted keys); chmod go-w it");
  }
  if (static_cast<size_t>(st.st_size) > kMaxJwksFileBytes) {
    throw BadInput(path + ": the JWKS file is larger than 1 MiB");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) throw BadInput(path + ": cannot read the JWKS file");
  if (text.str().size() > kMaxJwksFileBytes) {
    throw BadInput(path + ": the JWKS file is larger than 1 MiB");
  }
  return ParseJwks(text.str(), path);
}

}  // namespace cvdeploy::security
