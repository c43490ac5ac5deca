// SPDX-License-Identifier: Apache-2.0
// The server's own session tokens (security/session_tokens.h): issue and verify, the token's
// header and claims, expiry, tampering, another server's key, wrong audience and issuer, and
// the signing key file rules.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cvdeploy/error.h"
#include "cvdeploy/security/crypto.h"
#include "cvdeploy/security/session_tokens.h"

namespace cvdeploy::security {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::minutes;
using std::chrono::seconds;

const std::chrono::system_clock::time_point kNow{seconds(1800000000)};

Identity Alice(bool mfa = true) {
  Identity who;
  who.method = AuthMethod::kSession;
  who.name = "alice";
  who.roles = {"admin", "viewer"};
  who.mfa = mfa;
  return who;
}

json Part(const std::string& token, int index) {
  size_t begin = 0;
  for (int i = 0; i < index; ++i) begin = token.find('.', begin) + 1;
  const size_t end = token.find('.', begin);
  return json::parse(*Base64UrlDecode(token.substr(begin, end - begin)));
}

// A token with the given header and claims, signed with `key` (bypassing Issue).
std::string SignRaw(const Ed25519Key& key, const json& header, const json& claims) {
  const std::string input = Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
  return input + "." + Base64UrlEncode(key.Sign(input));
}

TEST(SessionTokens, IssueThenVerify) {
  const SessionTokens tokens(Ed25519Key::Generate());
  const SessionTokens::Issued issued = tokens.Issue(Alice(), kNow);
  EXPECT_EQ(issued.expires_in, 900);
  const json header = Part(issued.token, 0), claims = Part(issued.token, 1);
  EXPECT_EQ(header, (json{{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", tokens.kid()}}));
  EXPECT_EQ(claims["iss"], "cvdeploy");
  EXPECT_EQ(claims["aud"], "cvdeploy");
  EXPECT_EQ(claims["sub"], "alice");
  EXPECT_EQ(claims["iat"], 1800000000);
  EXPECT_EQ(claims["exp"], 1800000900);
  EXPECT_EQ(claims["roles"], (json{"admin", "viewer"}));
  EXPECT_EQ(claims["amr"], (json{"pwd", "otp"}));
  EXPECT_EQ(Base64UrlDecode(claims["jti"].get<std::string>())->size(), 16u);
  EXPECT_NE(Part(tokens.Issue(Alice(), kNow).token, 1)["jti"], claims["jti"]);

  const AuthResult result = tokens.Verify(issued.token, kNow + minutes(14));
  ASSERT_TRUE(result.ok()) << result.reason << ": " << result.message;
  EXPECT_EQ(result.identity->method, AuthMethod::kSession);
  EXPECT_EQ(result.identity->name, "alice");
  EXPECT_EQ(result.identity->roles, (std::vector<std::string>{"admin", "viewer"}));
  EXPECT_TRUE(result.identity->mfa);
  EXPECT_EQ(result.identity->expires, kNow + minutes(15));

  const AuthResult no_otp = tokens.Verify(tokens.Issue(Alice(false), kNow).token, kNow);
  ASSERT_TRUE(no_otp.ok());
  EXPECT_FALSE(no_otp.identity->mfa);
}

TEST(SessionTokens, ExpiresAfterTheTtl) {
  const SessionTokens tokens(Ed25519Key::Generate(), "edge-1", minutes(5));
  const std::string token = tokens.Issue(Alice(), kNow).token;
  EXPECT_TRUE(tokens.Verify(token, kNow + minutes(5)).ok());
  EXPECT_TRUE(tokens.Verify(token, kNow + minutes(5) + seconds(5)).ok());  // leeway
  EXPECT_EQ(tokens.Verify(token, kNow + minutes(5) + seconds(6)).reason, "expired");
  EXPECT_EQ(tokens.Verify(token, kNow + minutes(60)).reason, "expired");
  EXPECT_EQ(tokens.Verify(token, kNow - seconds(6)).reason, "not_yet_valid");
}

TEST(SessionTokens, RejectsTamperingOtherKeysAndOtherAudiences) {
  const Ed25519Key key = Ed25519Key::Generate();
  const SessionTokens tokens(key);
  const std::string token = tokens.Issue(Alice(false), kNow).token;

  // Tampered: the claims raised to mfa, the signature kept.
  json claims = Part(token, 1);
  claims["amr"] = {"pwd", "otp"};
  const size_t first = token.find('.'), second = token.find('.', first + 1);
  const std::string tampered =
      token.substr(0, first + 1) + Base64UrlEncode(claims.dump()) + token.substr(second);
  EXPECT_EQ(tokens.Verify(tampered, kNow).reason, "bad_signature");
  std::string flipped = token;
  flipped[second + 10] = flipped[second + 10] == 'A' ? 'B' : 'A';
  EXPECT_EQ(tokens.Verify(flipped, kNow).reason, "bad_signature");

  // Another server's key: its kid is another thumbprint; with ours copied, the signature fails.
  const Ed25519Key other_key = Ed25519Key::Generate();
  const SessionTokens other(other_key);
  EXPECT_NE(other.kid(), tokens.kid());
  EXPECT_EQ(tokens.Verify(other.Issue(Alice(), kNow).token, kNow).reason, "unknown_kid");
  const json header = Part(token, 0);
  EXPECT_EQ(tokens.Verify(SignRaw(other_key, header, Part(token, 1)), kNow).reason,
            "bad_signature");

  // Our key, other claims.
  json wrong_aud = Part(token, 1);
  wrong_aud["aud"] = "another-service";
  EXPECT_EQ(tokens.Verify(SignRaw(key, header, wrong_aud), kNow).reason, "wrong_audience");
  EXPECT_TRUE(tokens.Verify(SignRaw(key, header, Part(token, 1)), kNow).ok());  // the control
  const SessionTokens other_issuer(key, "another-issuer");
  EXPECT_EQ(other_issuer.kid(), tokens.kid());
  EXPECT_EQ(tokens.Verify(other_issuer.Issue(Alice(), kNow).token, kNow).reason, "wrong_issuer");
  json none_header = header;
  none_header["alg"] = "none";
  EXPECT_EQ(tokens.Verify(SignRaw(key, none_header, Part(token, 1)), kNow).reason, "bad_alg");
  EXPECT_EQ(tokens.Verify("", kNow).reason, "malformed");
}

// RFC 8037 appendix A: the Ed25519 key whose RFC 7638 thumbprint is given there.
TEST(SessionTokens, KidIsTheRfc7638Thumbprint) {
  const std::string d = *Base64UrlDecode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
  // PKCS#8 wrapping of a raw Ed25519 private key (RFC 8410).
  const std::string der = *HexDecode("302e020100300506032b657004220420") + d;
  std::string b64 = Base64UrlEncode(der);
  for (char& c : b64) c = c == '-' ? '+' : c == '_' ? '/' : c;
  const std::string pem = "-----BEGIN PRIVATE KEY-----\n" + b64 + "\n-----END PRIVATE KEY-----\n";
  const Ed25519Key key = Ed25519Key::FromPem(pem);
  EXPECT_EQ(Base64UrlEncode(key.RawPublic()), "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
  EXPECT_EQ(SessionTokens(key).kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
}

TEST(SessionTokens, KeyFileRules) {
  const fs::path dir =
      fs::temp_directory_path() / ("cvdeploy-session-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const Ed25519Key key = Ed25519Key::Generate();
  const auto write = [&](const std::string& name, const std::string& text, fs::perms perms) {
    const fs::path path = dir / name;
    std::ofstream(path) << text;
    fs::permissions(path, perms);
    return path.string();
  };
  const fs::perms secret = fs::perms::owner_read | fs::perms::owner_write;
  const std::string good = write("good.pem", key.PrivatePem(), secret);
  EXPECT_EQ(SessionTokens::LoadOrGenerateKey(good).RawPublic(), key.RawPublic());
  const auto code_of = [](const std::string& path) {
    try {
      SessionTokens::LoadOrGenerateKey(path);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      return e.code();
    }
    return ErrorCode::kRuntime;
  };
  EXPECT_EQ(code_of(write("open.pem", key.PrivatePem(), secret | fs::perms::group_read)),
            ErrorCode::kPermissionDenied);
  EXPECT_EQ(code_of(write("public.pem", key.PublicPem(), secret)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of(write("text.pem", "not a key\n", secret)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of((dir / "missing.pem").string()), ErrorCode::kNotFound);
  const Ed25519Key generated = SessionTokens::LoadOrGenerateKey("");
  EXPECT_TRUE(generated.has_private());
  EXPECT_NE(generated.RawPublic(), key.RawPublic());
  EXPECT_THROW(SessionTokens(Ed25519Key::FromPem(key.PublicPem())), Error);
  EXPECT_THROW(SessionTokens(key, "cvdeploy", seconds(0)), Error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cvdeploy::security
