// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/jwt.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>
#include <sstream>

#include "cvdeploy/error.h"
#include "security/jose_json.h"

namespace cvdeploy::security {
namespace {

// NumericDates beyond the year 9999 are refused, which also keeps the arithmetic below far
// from int64 overflow.
constexpr double kMaxNumericDate = 253402300799.0;

AuthResult Fail(const char* reason, const std::string& message) {
  return AuthResult::Failure(reason, message);
}

// The three parts of a JWS compact token, decoded, and the exact bytes that were signed.
struct JwsParts {
  std::string header, payload, signature;
  std::string_view signing_input;  // "BASE64URL(header).BASE64URL(payload)" inside the token
};

std::optional<JwsParts> SplitJws(std::string_view token) {
  const size_t first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return std::nullopt;  // JWE (five parts) and anything else is not ours
  }
  // RFC 7515 encodes without padding; '=' would give one signature several encodings.
  if (token.find('=') != std::string_view::npos) return std::nullopt;
  auto header = Base64UrlDecode(token.substr(0, first));
  auto payload = Base64UrlDecode(token.substr(first + 1, second - first - 1));
  auto signature = Base64UrlDecode(token.substr(second + 1));
  if (!header || !payload || !signature || header->empty() || payload->empty()) {
    return std::nullopt;
  }
  return JwsParts{std::move(*header), std::move(*payload), std::move(*signature),
                  token.substr(0, second)};
}

// A NumericDate claim (RFC 7519 section 2: seconds, possibly fractional), floored. Returns
// false when the claim is present but not a number in range; `out` stays empty when absent.
bool ReadNumericDate(const nlohmann::json& claims, const char* name, std::optional<int64_t>* out) {
  auto it = claims.find(name);
  if (it == claims.end()) return true;
  if (!it->is_number()) return false;
  const double value = it->get<double>();
  if (!std::isfinite(value) || std::fabs(value) > kMaxNumericDate) return false;
  *out = static_cast<int64_t>(std::floor(value));
  return true;
}

// The roles claim: an exact top-level member, or else a dotted path through nested objects.
const nlohmann::json* FindClaim(const nlohmann::json& claims, const std::string& path) {
  if (auto it = claims.find(path); it != claims.end()) return &*it;
  const nlohmann::json* node = &claims;
  std::istringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '.')) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(part);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node == &claims ? nullptr : node;
}

// Array of strings (other elements ignored) or one space-separated string; anything else
// gives no roles (least privilege).
std::vector<std::string> RolesOf(const nlohmann::json* value) {
  std::vector<std::string> roles;
  if (value == nullptr) return roles;
  if (value->is_array()) {
    for (const auto& role : *value) {
      if (role.is_string() && !role.get_ref<const std::string&>().empty()) {
        roles.push_back(role.get<std::string>());
      }
    }
  } else if (value->is_string()) {
    std::istringstream words(value->get<std::string>());
    for (std::string word; words >> word;) roles.push_back(word);
  }
  return roles;
}

bool HasMfa(const nlohmann::json& claims, const std::vector<std::string>& methods) {
  auto amr = claims.find("amr");
  if (amr == claims.end() || !amr->is_array()) return false;
  for (const auto& value : *amr) {
    if (value.is_string() && std::find(methods.begin(), methods.end(),
                                       value.get_ref<const std::string&>()) != methods.end()) {
      return true;
    }
  }
  return false;
}

bool AudienceMatches(const nlohmann::json& claims, const std::string& audience) {
  auto aud = claims.find("aud");
  if (aud == claims.end()) return false;
  if (aud->is_string()) return *aud == audience;
  if (!aud->is_array()) return false;
  return std::any_of(aud->begin(), aud->end(),
                     [&](const nlohmann::json& a) { return a.is_string() && a == audience; });
}

// The claim rules, after the signature verified.
AuthResult CheckClaims(const nlohmann::json& claims, const JwtOptions& options, AuthMethod method,
                       std::chrono::system_clock::time_point now) {
  std::optional<int64_t> exp, nbf, iat;
  if (!ReadNumericDate(claims, "exp", &exp) || !ReadNumericDate(claims, "nbf", &nbf) ||
      !ReadNumericDate(claims, "iat", &iat)) {
    return Fail("malformed", "token has a time claim (exp, nbf, iat) that is not a date");
  }
  if (!exp) return Fail("malformed", "token has no exp claim");
  const int64_t now_s = std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
  const int64_t leeway = options.leeway.count();
  if (now_s > *exp + leeway) return Fail("expired", "token has expired");
  if (nbf && now_s < *nbf - leeway) return Fail("not_yet_valid", "token is not valid yet");
  if (iat && *iat > now_s + leeway) return Fail("not_yet_valid", "token was issued in the future");
  auto iss = claims.find("iss");
  if (iss == claims.end() || !iss->is_string() || *iss != options.issuer) {
    return Fail("wrong_issuer", "token was not issued by the expected issuer");
  }
  if (!AudienceMatches(claims, options.audience)) {
    return Fail("wrong_audience", "token is not meant for this server (aud)");
  }
  auto sub = claims.find("sub");
  if (sub == claims.end() || !sub->is_string() || sub->get_ref<const std::string&>().empty()) {
    return Fail("malformed", "token has no sub claim");
  }
  Identity id;
  id.method = method;
  id.name = sub->get<std::string>();
  id.roles = RolesOf(FindClaim(claims, options.roles_claim));
  id.mfa = HasMfa(claims, options.mfa_methods);
  id.expires = std::chrono::system_clock::time_point(std::chrono::seconds(*exp));
  return AuthResult::Success(std::move(id));
}

}  // namespace

AuthResult VerifyJwt(std::string_view token, const Jwks& keys, const JwtOptions& options,
                     AuthMethod method, std::chrono::system_clock::time_point now) {
  try {
    if (token.size() > options.max_token_bytes) return Fail("malformed", "token is too long");
    std::optional<JwsParts> parts = SplitJws(token);
    if (!parts) return Fail("malformed", "token is not a JWS (three base64url parts)");
    std::optional<nlohmann::json> header = ParseJoseJson(parts->header);
    if (!header || !header->is_object()) {
      return Fail("malformed", "token header is not a JSON object");
    }
    auto alg = header->find("alg");
    std::optional<JwsAlgorithm> algorithm;
    if (alg != header->end() && alg->is_string()) {
      algorithm = ParseJwsAlgorithm(alg->get_ref<const std::string&>());
    }
    if (!algorithm) return Fail("bad_alg", "token algorithm is not accepted (RS256, ES256, EdDSA)");
    // RFC 7515 section 4.1.11: extensions marked critical must be understood; we know none.
    if (header->contains("crit")) return Fail("malformed", "token has a crit header");
    const JwkKey* key = nullptr;
    if (auto kid = header->find("kid"); kid != header->end()) {
      if (!kid->is_string()) return Fail("malformed", "token kid is not a string");
      key = keys.Find(kid->get_ref<const std::string&>());
      if (key == nullptr) return Fail("unknown_kid", "token kid is not in the key set");
    } else if (keys.keys.size() == 1) {
      key = &keys.keys.front();
    } else {
      return Fail("unknown_kid", "token has no kid and the key set has several keys");
    }
    // The key decides the algorithm; the header must agree (no algorithm confusion).
    if (key->algorithm() != *algorithm) {
      return Fail("bad_alg", "token algorithm does not match its key");
    }
    if (!key->Verify(parts->signing_input, parts->signature)) {
      return Fail("bad_signature", "token signature is not valid");
    }
    std::optional<nlohmann::json> claims = ParseJoseJson(parts->payload);
    if (!claims || !claims->is_object()) {
      return Fail("malformed", "token claims are not a JSON object");
    }
    return CheckClaims(*claims, options, method, now);
  } catch (const std::exception&) {
    // Only allocation failures can get here; the token is not described.
    return Fail("malformed", "token could not be checked");
  }
}

JwtVerifier::JwtVerifier(JwtOptions options) : options_(std::move(options)) {
  if (options_.issuer.empty()) throw InvalidArgument("JWT verification needs an issuer");
  if (options_.audience.empty()) throw InvalidArgument("JWT verification needs an audience");
  stamp_ = Stamp(options_.jwks_file);
  keys_ = std::make_shared<const Jwks>(LoadJwksFile(options_.jwks_file));
}

AuthResult JwtVerifier::Verify(std::string_view token,
                               std::chrono::system_clock::time_point now) const {
  std::shared_ptr<const Jwks> keys;
  {
    std::shared_lock lock(mutex_);
    keys = keys_;
  }
  return VerifyJwt(token, *keys, options_, AuthMethod::kJwt, now);
}

JwtVerifier::FileStamp JwtVerifier::Stamp(const std::string& path) {
  FileStamp stamp;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return stamp;
  stamp.dev = st.st_dev;
  stamp.ino = st.st_ino;
  stamp.size = st.st_size;
  stamp.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  stamp.ctime_ns = int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec;
  return stamp;
}

bool JwtVerifier::ReloadIfChanged() {
  const FileStamp stamp = Stamp(options_.jwks_file);
  {
    std::shared_lock lock(mutex_);
    if (stamp == stamp_) return false;
  }
  // Read outside the lock: verification goes on with the current keys meanwhile.
  std::shared_ptr<const Jwks> fresh;
  std::string error;
  try {
    fresh = std::make_shared<const Jwks>(LoadJwksFile(options_.jwks_file));
  } catch (const std::exception& e) {
    error = std::string(e.what()) + " (the previous keys stay in use)";
  }
  std::unique_lock lock(mutex_);
  stamp_ = stamp;
  reload_error_ = error;
  if (fresh) keys_ = std::move(fresh);
  return true;
}

std::vector<std::string> JwtVerifier::warnings() const {
  std::shared_lock lock(mutex_);
  std::vector<std::string> out = keys_->warnings;
  if (!reload_error_.empty()) out.push_back(reload_error_);
  return out;
}

}  // namespace cvdeploy::security
