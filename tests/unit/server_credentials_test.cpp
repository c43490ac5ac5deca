// SPDX-License-Identifier: Apache-2.0
// The Authorization header reader (which authenticator gets a token) and the loopback test
// behind the secure default.
#include <gtest/gtest.h>

#include "cvdeploy/security/crypto.h"
#include "cvdeploy/server.h"
#include "server/credentials.h"

namespace cvdeploy::server {
namespace {

std::string Jwt(const std::string& claims) {
  std::string token = security::Base64UrlEncode(R"({"alg":"EdDSA"})");
  token += ".";
  token += security::Base64UrlEncode(claims);
  token += ".c2ln";
  return token;
}

// prefix + rest, built with append: GCC 12 reports a false -Wrestrict on "literal" + string.
std::string Cat(const char* prefix, const std::string& rest, const char* suffix = "") {
  std::string out(prefix);
  out.append(rest);
  out.append(suffix);
  return out;
}

TEST(Credentials, KindsOfHeader) {
  EXPECT_EQ(ParseAuthorization(std::nullopt).kind, CredentialKind::kNone);
  const std::string key = "cvd_0123456789abcdef_abcDEF-_";
  for (const std::string& header :
       {Cat("Bearer ", key), Cat("bearer ", key), Cat("BEARER   ", key, " ")}) {
    const Credential c = ParseAuthorization(header);
    EXPECT_EQ(c.kind, CredentialKind::kApiKey) << header;
    EXPECT_EQ(c.token, key) << header;
  }
  EXPECT_EQ(ParseAuthorization("Basic dXNlcjpwYXNz").kind, CredentialKind::kOtherScheme);
  EXPECT_EQ(ParseAuthorization("Bearertoken").kind, CredentialKind::kOtherScheme);
  for (const char* bad :
       {"Bearer", "Bearer ", "Bearer a b", "Bearer a\"b", "Bearer ===", "Bearer a..b",
        "Bearer .a.b", "Bearer a.b", "Bearer a.b.c.d", "Bearer caf\xc3\xa9"}) {
    const Credential c = ParseAuthorization(std::string_view(bad));
    EXPECT_EQ(c.kind, CredentialKind::kMalformed) << bad;
    EXPECT_TRUE(c.token.empty()) << bad;
  }
  EXPECT_EQ(ParseAuthorization(Cat("Bearer ", std::string(kMaxTokenBytes + 1, 'a'))).kind,
            CredentialKind::kMalformed);
}

TEST(Credentials, JwtIssuerIsReadButNotTrusted) {
  const Credential session = ParseAuthorization(Cat("Bearer ", Jwt(R"({"iss":"cvdeploy"})")));
  EXPECT_EQ(session.kind, CredentialKind::kJwt);
  EXPECT_EQ(session.issuer, "cvdeploy");
  // Unreadable payloads still go to a verifier (which refuses them), with no issuer.
  for (const std::string& claims : {std::string(R"({"iss":7})"), std::string("not json"),
                                    std::string("[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]")}) {
    const Credential c = ParseAuthorization(Cat("Bearer ", Jwt(claims)));
    EXPECT_EQ(c.kind, CredentialKind::kJwt) << claims;
    EXPECT_EQ(c.issuer, "") << claims;
  }
  EXPECT_EQ(ParseAuthorization("Bearer a!b.c.d").kind, CredentialKind::kMalformed);
  EXPECT_EQ(ParseAuthorization("Bearer ab.%%%.cd").kind, CredentialKind::kMalformed);
}

TEST(SecureDefault, LoopbackHosts) {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com",
                           "localhost.example.com", "", "128.0.0.1", "::ffff:8.8.8.8"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

TEST(SecureDefault, AuthConfiguredByAnyAuthenticator) {
  ServerOptions o;
  EXPECT_FALSE(AuthConfigured(o));
  o.auth.policy_file = std::string("p.json");  // a policy authenticates nobody
  EXPECT_FALSE(AuthConfigured(o));
  const std::string file = "f";  // assigned as std::string (GCC 12's false -Wrestrict)
  ServerOptions keys, users, jwt, mtls;
  keys.auth.keys_file = file;
  users.auth.users_file = file;
  jwt.auth.jwt.jwks_file = file;
  mtls.tls.client_ca_file = file;
  EXPECT_TRUE(AuthConfigured(keys));
  EXPECT_TRUE(AuthConfigured(users));
  EXPECT_TRUE(AuthConfigured(jwt));
  EXPECT_TRUE(AuthConfigured(mtls));
}

}  // namespace
}  // namespace cvdeploy::server
