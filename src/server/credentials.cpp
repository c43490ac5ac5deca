// SPDX-License-Identifier: Apache-2.0
#include "server/credentials.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "cvdeploy/json.h"
#include "cvdeploy/security/crypto.h"

namespace cvdeploy::server {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool IsB64Token(std::string_view t) {
  size_t end = t.size();
  while (end > 0 && t[end - 1] == '=') --end;
  if (end == 0) return false;
  return std::all_of(t.begin(), t.begin() + end, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
           c == '~' || c == '+' || c == '/';
  });
}

// The unverified "iss" of a compact JWS, "" when it cannot be read.
std::string PeekIssuer(std::string_view payload_b64) {
  auto payload = security::Base64UrlDecode(payload_b64);
  if (!payload) return {};
  try {
    auto claims = ParseJsonBounded(*payload, "token payload", 8);
    if (claims.is_object() && claims.contains("iss") && claims["iss"].is_string()) {
      return claims["iss"].get<std::string>();
    }
  } catch (const std::exception&) {
  }
  return {};
}

}  // namespace

Credential ParseAuthorization(std::optional<std::string_view> header) {
  Credential c;
  if (!header) return c;
  std::string_view h = *header;
  const size_t space = h.find(' ');
  if (space == std::string_view::npos || !IEquals(h.substr(0, space), "bearer")) {
    c.kind = IEquals(h.substr(0, space), "bearer") ? CredentialKind::kMalformed
                                                   : CredentialKind::kOtherScheme;
    return c;
  }
  std::string_view token = h.substr(space + 1);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  c.kind = CredentialKind::kMalformed;
  if (token.empty() || token.size() > kMaxTokenBytes || !IsB64Token(token)) return c;
  c.token = token;
  if (token.substr(0, 4) == "cvd_") {
    c.kind = CredentialKind::kApiKey;
    return c;
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot1 == 0 || dot2 == std::string_view::npos || dot2 == dot1 + 1 ||
      token.find('.', dot2 + 1) != std::string_view::npos) {
    c.token = {};
    return c;
  }
  c.kind = CredentialKind::kJwt;
  c.issuer = PeekIssuer(token.substr(dot1 + 1, dot2 - dot1 - 1));
  return c;
}

}  // namespace cvdeploy::server
