// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/session_tokens.h"

#include <nlohmann/json.hpp>

#include "cvdeploy/error.h"
#include "cvdeploy/security/secret_file.h"

namespace cvdeploy::security {
namespace {

// The verifying clock is the issuing clock, or that of a replica sharing the key file; a few
// seconds cover the latter.
constexpr std::chrono::seconds kSessionLeeway{5};

// RFC 7638 JWK thumbprint: SHA-256 of the required members in lexicographic order, no spaces.
std::string Thumbprint(const Ed25519Key& key) {
  const std::string jwk =
      R"({"crv":"Ed25519","kty":"OKP","x":")" + Base64UrlEncode(key.RawPublic()) + "\"}";
  return Base64UrlEncode(Sha256(jwk));
}

}  // namespace

SessionTokens::SessionTokens(Ed25519Key key, std::string issuer, std::chrono::seconds ttl)
    : key_(std::move(key)), issuer_(std::move(issuer)), ttl_(ttl) {
  if (!key_.has_private()) throw InvalidArgument("session tokens need the private signing key");
  if (issuer_.empty()) throw InvalidArgument("session tokens need an issuer");
  if (ttl_.count() <= 0) throw InvalidArgument("session token lifetime must be positive");
  kid_ = Thumbprint(key_);
  jwks_.keys.push_back(JwkKey::FromEd25519(kid_, key_));
  rules_.issuer = issuer_;
  rules_.audience = kAudience;
  rules_.roles_claim = "roles";
  rules_.leeway = kSessionLeeway;
  rules_.mfa_methods = {"otp"};
}

SessionTokens::Issued SessionTokens::Issue(const Identity& who,
                                           std::chrono::system_clock::time_point now) const {
  if (who.name.empty()) throw InvalidArgument("a session token needs a user name");
  const int64_t iat = std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
  const nlohmann::json header = {{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", kid_}};
  nlohmann::json amr = nlohmann::json::array({"pwd"});
  if (who.mfa) amr.push_back("otp");
  const nlohmann::json claims = {
      {"iss", issuer_},
      {"sub", who.name},
      {"aud", kAudience},
      {"iat", iat},
      {"exp", iat + ttl_.count()},
      {"jti", Base64UrlEncode(RandomBytes(16))},
      {"roles", who.roles},
      {"amr", amr},
  };
  const std::string signing_input =
      Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
  return {signing_input + "." + Base64UrlEncode(key_.Sign(signing_input)), ttl_.count()};
}

AuthResult SessionTokens::Verify(std::string_view token,
                                 std::chrono::system_clock::time_point now) const {
  return VerifyJwt(token, jwks_, rules_, AuthMethod::kSession, now);
}

Ed25519Key SessionTokens::LoadOrGenerateKey(const std::string& path) {
  if (path.empty()) return Ed25519Key::Generate();
  const std::string pem = ReadSecretFile(path);
  Ed25519Key key;
  try {
    key = Ed25519Key::FromPem(pem);
  } catch (const Error&) {
    throw InvalidArgument(path + ": the session key is not an Ed25519 PEM key");
  }
  if (!key.has_private()) {
    throw InvalidArgument(path + ": the session key file holds no private key");
  }
  return key;
}

}  // namespace cvdeploy::security
