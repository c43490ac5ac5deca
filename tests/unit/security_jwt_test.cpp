// SPDX-License-Identifier: Apache-2.0
// OIDC/JWT verification (security/jwt.h, jwks.h) against tokens signed independently by the
// test signer (support/jwt_signer.h) with RSA-2048, EC P-256 and Ed25519 keys: the accepted
// tokens and their identities, a table of rejected tokens with their reasons (algorithm
// confusion included), JWKS parsing rules, key rotation by file replacement, and a
// cross-check with PyJWT.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cvdeploy/error.h"
#include "cvdeploy/security/crypto.h"
#include "cvdeploy/security/jwt.h"
#include "support/jwt_signer.h"
#include "support/process.h"

namespace cvdeploy::security {
namespace {

namespace fs = std::filesystem;
using cvdeploy::testing::JwksText;
using cvdeploy::testing::JwsSigningInput;
using cvdeploy::testing::MakeJwt;
using cvdeploy::testing::MakeRawJwt;
using cvdeploy::testing::TestJwsKey;
using nlohmann::json;

constexpr int64_t kNow = 1800000000;
const std::chrono::system_clock::time_point kNowTp{std::chrono::seconds(kNow)};
constexpr char kIssuer[] = "https://idp.example.com/realms/prod";
constexpr char kAudience[] = "cvdeploy-api";

fs::path MakeTempDir() {
  fs::path dir = fs::temp_directory_path() / ("cvdeploy-jwt-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

// Writes through a temporary file and rename, as an operator rotating keys should.
void WriteFileAtomically(const fs::path& path, const std::string& text, fs::perms perms) {
  const fs::path tmp = path.string() + ".tmp";
  std::ofstream(tmp, std::ios::binary) << text;
  fs::permissions(tmp, perms);
  fs::rename(tmp, path);
}

json Claims() {
  return {{"iss", kIssuer},       {"aud", kAudience},  {"sub", "alice"},
          {"iat", kNow - 10},     {"exp", kNow + 300}, {"roles", {"inferencer", "viewer"}},
          {"amr", {"pwd", "otp"}}};
}

std::string Header(const std::string& alg, const std::string& kid) {
  json header = {{"alg", alg}, {"typ", "JWT"}};
  if (!kid.empty()) header["kid"] = kid;
  return header.dump();
}

// Replaces one character in the middle of a base64url part with another letter: the result
// still decodes, to different bytes.
std::string FlipChar(std::string token, size_t part) {
  size_t begin = 0;
  for (size_t i = 0; i < part; ++i) begin = token.find('.', begin) + 1;
  const size_t end = std::min(token.find('.', begin), token.size());
  const size_t at = begin + (end - begin) / 2;
  token[at] = token[at] == 'A' ? 'B' : 'A';
  return token;
}

class JwtTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = new TestJwsKey(TestJwsKey::Rsa(2048));
    ec_ = new TestJwsKey(TestJwsKey::EcP256());
    ed_ = new TestJwsKey(TestJwsKey::Ed25519());
  }
  static void TearDownTestSuite() {
    delete rsa_;
    delete ec_;
    delete ed_;
  }
  void SetUp() override {
    dir_ = MakeTempDir();
    jwks_path_ = (dir_ / "jwks.json").string();
    WriteFileAtomically(jwks_path_,
                        JwksText({rsa_->Jwk("rsa-1", true), ec_->Jwk("ec-1"), ed_->Jwk("ed-1")}),
                        fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                            fs::perms::others_read);
  }
  void TearDown() override { fs::remove_all(dir_); }

  JwtOptions Options() const {
    JwtOptions options;
    options.jwks_file = jwks_path_;
    options.issuer = kIssuer;
    options.audience = kAudience;
    return options;
  }
  AuthResult Check(const std::string& token, JwtOptions options) const {
    return JwtVerifier(std::move(options)).Verify(token, kNowTp);
  }
  AuthResult Check(const std::string& token) const { return Check(token, Options()); }

  static TestJwsKey* rsa_;
  static TestJwsKey* ec_;
  static TestJwsKey* ed_;
  fs::path dir_;
  std::string jwks_path_;
};
TestJwsKey* JwtTest::rsa_ = nullptr;
TestJwsKey* JwtTest::ec_ = nullptr;
TestJwsKey* JwtTest::ed_ = nullptr;

TEST_F(JwtTest, ValidTokensOfEachAlgorithmGiveTheIdentity) {
  JwtVerifier verifier(Options());
  EXPECT_TRUE(verifier.warnings().empty());
  for (auto [key, kid] : {std::pair{rsa_, "rsa-1"}, {ec_, "ec-1"}, {ed_, "ed-1"}}) {
    SCOPED_TRACE(key->alg());
    const AuthResult result = verifier.Verify(MakeJwt(*key, kid, Claims()), kNowTp);
    ASSERT_TRUE(result.ok()) << result.reason << ": " << result.message;
    EXPECT_EQ(result.identity->method, AuthMethod::kJwt);
    EXPECT_EQ(result.identity->name, "alice");
    EXPECT_EQ(result.identity->roles, (std::vector<std::string>{"inferencer", "viewer"}));
    EXPECT_TRUE(result.identity->mfa);
    ASSERT_TRUE(result.identity->expires);
    EXPECT_EQ(*result.identity->expires, kNowTp + std::chrono::seconds(300));
  }
}

TEST_F(JwtTest, LeewayBoundariesAndAudienceArrays) {
  JwtVerifier verifier(Options());
  json claims = Claims();
  claims["exp"] = kNow - 60;  // now == exp + leeway: still accepted
  claims["nbf"] = kNow + 60;
  claims["iat"] = kNow + 60;
  claims["aud"] = {"other", kAudience};
  EXPECT_TRUE(verifier.Verify(MakeJwt(*ed_, "ed-1", claims), kNowTp).ok());
  claims["exp"] = kNow - 61;
  EXPECT_EQ(verifier.Verify(MakeJwt(*ed_, "ed-1", claims), kNowTp).reason, "expired");
  JwtOptions strict = Options();
  strict.leeway = std::chrono::seconds(0);
  claims["exp"] = kNow + 1;
  claims["nbf"] = kNow;
  claims["iat"] = kNow;
  EXPECT_TRUE(JwtVerifier(strict).Verify(MakeJwt(*ed_, "ed-1", claims), kNowTp).ok());
  claims["nbf"] = kNow + 1;
  EXPECT_EQ(JwtVerifier(strict).Verify(MakeJwt(*ed_, "ed-1", claims), kNowTp).reason,
            "not_yet_valid");
}

struct RejectCase {
  std::string name, token, reason;
};

TEST_F(JwtTest, RejectedTokensGiveTheirReason) {
  const auto with = [](const char* claim, json value) {
    json claims = Claims();
    if (value.is_null()) {
      claims.erase(claim);
    } else {
      claims[claim] = std::move(value);
    }
    return claims;
  };
  const std::string claims = Claims().dump();
  const std::string rsa_input = JwsSigningInput(Header("none", "rsa-1"), claims);
  const std::string hs_input = JwsSigningInput(Header("HS256", "rsa-1"), claims);
  const std::string rs_on_ec = JwsSigningInput(Header("RS256", "ec-1"), claims);
  const std::string es_on_rsa = JwsSigningInput(Header("ES256", "rsa-1"), claims);
  const std::string ed_on_ec = JwsSigningInput(Header("EdDSA", "ec-1"), claims);
  const std::string good = MakeJwt(*rsa_, "rsa-1", Claims());
  const std::string long_claim(9000, 'x');
  const size_t sig_at = good.rfind('.') + 1;
  const std::string truncated =
      good.substr(0, sig_at) +
      Base64UrlEncode(Base64UrlDecode(good.substr(sig_at))->substr(0, 255));
  const auto signed_ed = [&](const std::string& header, const std::string& body) {
    const std::string input = JwsSigningInput(header, body);
    return input + "." + Base64UrlEncode(ed_->Sign(input));
  };
  const std::vector<RejectCase> cases = {
      {"expired", MakeJwt(*rsa_, "rsa-1", with("exp", kNow - 61)), "expired"},
      {"nbf in the future", MakeJwt(*ec_, "ec-1", with("nbf", kNow + 61)), "not_yet_valid"},
      {"iat in the future", MakeJwt(*ed_, "ed-1", with("iat", kNow + 61)), "not_yet_valid"},
      {"wrong issuer", MakeJwt(*rsa_, "rsa-1", with("iss", "https://evil.example")),
       "wrong_issuer"},
      {"issuer not a string", MakeJwt(*rsa_, "rsa-1", with("iss", json::array({kIssuer}))),
       "wrong_issuer"},
      {"no issuer", MakeJwt(*rsa_, "rsa-1", with("iss", nullptr)), "wrong_issuer"},
      {"wrong audience", MakeJwt(*ec_, "ec-1", with("aud", "other-app")), "wrong_audience"},
      {"audience array without ours", MakeJwt(*ec_, "ec-1", with("aud", {"a", "b"})),
       "wrong_audience"},
      {"no audience", MakeJwt(*ec_, "ec-1", with("aud", nullptr)), "wrong_audience"},
      {"unknown kid", MakeJwt(*rsa_, "rsa-2", Claims()), "unknown_kid"},
      {"no kid with several keys", MakeJwt(*rsa_, "", Claims()), "unknown_kid"},
      {"alg none, no signature", rsa_input + ".", "bad_alg"},
      {"alg none, RSA signature", rsa_input + "." + Base64UrlEncode(rsa_->Sign(rsa_input)),
       "bad_alg"},
      {"alg None", MakeRawJwt(Header("None", "ed-1"), claims, ""), "bad_alg"},
      {"no alg", MakeRawJwt(R"({"kid":"ed-1"})", claims, "x"), "bad_alg"},
      {"HS256 keyed with the RSA public key PEM",
       hs_input + "." + Base64UrlEncode(HmacSha256(rsa_->PublicPem(), hs_input)), "bad_alg"},
      {"HS256 keyed with the RSA public key DER",
       hs_input + "." + Base64UrlEncode(HmacSha256(rsa_->PublicDer(), hs_input)), "bad_alg"},
      {"RS256 header on the EC key", rs_on_ec + "." + Base64UrlEncode(rsa_->Sign(rs_on_ec)),
       "bad_alg"},
      {"ES256 header on the RSA key", es_on_rsa + "." + Base64UrlEncode(ec_->Sign(es_on_rsa)),
       "bad_alg"},
      {"EdDSA header on the EC key", ed_on_ec + "." + Base64UrlEncode(ed_->Sign(ed_on_ec)),
       "bad_alg"},
      {"RS384", MakeRawJwt(Header("RS384", "rsa-1"), claims, "x"), "bad_alg"},
      {"flipped RS256 signature", FlipChar(good, 2), "bad_signature"},
      {"flipped ES256 signature", FlipChar(MakeJwt(*ec_, "ec-1", Claims()), 2), "bad_signature"},
      {"flipped EdDSA signature", FlipChar(MakeJwt(*ed_, "ed-1", Claims()), 2), "bad_signature"},
      {"flipped payload", FlipChar(good, 1), "bad_signature"},
      {"flipped header", FlipChar(MakeJwt(*ed_, "ed-1", Claims()), 0), "malformed"},
      {"signed by another key", MakeJwt(TestJwsKey::Ed25519(), "ed-1", Claims()), "bad_signature"},
      {"RSA signature one byte short", truncated, "bad_signature"},
      {"empty", "", "malformed"},
      {"garbage", "garbage", "malformed"},
      {"two parts", "eyJhbGciOiJFZERTQSJ9.e30", "malformed"},
      {"four parts", good + ".AAAA", "malformed"},
      {"five parts (JWE)", "a.b.c.d.e", "malformed"},
      {"dots only", "..", "malformed"},
      {"not base64url", "!!!.???.***", "malformed"},
      {"padding", good + "==", "malformed"},
      {"header not JSON", MakeRawJwt("{alg:EdDSA}", claims, "x"), "malformed"},
      {"header an array", MakeRawJwt(R"(["EdDSA"])", claims, "x"), "malformed"},
      {"duplicate alg", MakeRawJwt(R"({"alg":"none","alg":"EdDSA","kid":"ed-1"})", claims, "x"),
       "malformed"},
      {"crit header",
       signed_ed(R"({"alg":"EdDSA","kid":"ed-1","crit":["b64"],"b64":false})", claims),
       "malformed"},
      {"kid not a string", MakeRawJwt(R"({"alg":"EdDSA","kid":7})", claims, "x"), "malformed"},
      {"claims an array", signed_ed(Header("EdDSA", "ed-1"), "[1]"), "malformed"},
      {"claims not JSON", signed_ed(Header("EdDSA", "ed-1"), "{\"sub\":"), "malformed"},
      {"duplicate sub", signed_ed(Header("EdDSA", "ed-1"), R"({"sub":"a","sub":"b"})"),
       "malformed"},
      {"deep claims",
       signed_ed(Header("EdDSA", "ed-1"), std::string(40, '[') + std::string(40, ']')),
       "malformed"},
      {"no exp", MakeJwt(*ed_, "ed-1", with("exp", nullptr)), "malformed"},
      {"exp a string", MakeJwt(*ed_, "ed-1", with("exp", std::to_string(kNow + 300))), "malformed"},
      {"exp absurd", MakeJwt(*ed_, "ed-1", with("exp", 1e300)), "malformed"},
      {"no sub", MakeJwt(*ed_, "ed-1", with("sub", nullptr)), "malformed"},
      {"empty sub", MakeJwt(*ed_, "ed-1", with("sub", "")), "malformed"},
      {"longer than 8 KiB", MakeJwt(*ed_, "ed-1", with("pad", long_claim)), "malformed"},
      {"1 MiB of garbage", std::string(1 << 20, 'A'), "malformed"},
  };
  JwtVerifier verifier(Options());
  for (const RejectCase& c : cases) {
    SCOPED_TRACE(c.name);
    const AuthResult result = verifier.Verify(c.token, kNowTp);
    EXPECT_FALSE(result.ok());
    EXPECT_EQ(result.reason, c.reason) << result.message;
    EXPECT_FALSE(result.message.empty());
    // The message never carries the token or a part of it.
    for (size_t at = 0; at + 12 <= c.token.size() && at < 200; at += 12) {
      const std::string piece = c.token.substr(at, 12);
      if (piece.find_first_not_of('.') == std::string::npos) continue;
      EXPECT_EQ(result.message.find(piece), std::string::npos) << piece;
    }
  }
  // The flip cases really changed the token (a no-op flip would pass, not fail, anyway).
  EXPECT_TRUE(verifier.Verify(good, kNowTp).ok());
}

TEST_F(JwtTest, RolesClaimPathsAndMfaMethods) {
  json claims = Claims();
  claims["realm_access"] = {{"roles", {"admin", 7, "operator"}}};
  claims["scope"] = "openid  viewer inferencer";
  claims["cvdeploy.roles"] = {"exact"};
  claims["amr"] = {"pwd"};
  const std::string token = MakeJwt(*ed_, "ed-1", claims);
  const auto roles_of = [&](const std::string& claim) {
    JwtOptions options = Options();
    options.roles_claim = claim;
    const AuthResult result = Check(token, options);
    EXPECT_TRUE(result.ok()) << result.reason;
    EXPECT_FALSE(result.identity->mfa);  // "pwd" is one factor
    return result.identity->roles;
  };
  EXPECT_EQ(roles_of("realm_access.roles"), (std::vector<std::string>{"admin", "operator"}));
  EXPECT_EQ(roles_of("scope"), (std::vector<std::string>{"openid", "viewer", "inferencer"}));
  EXPECT_EQ(roles_of("cvdeploy.roles"), (std::vector<std::string>{"exact"}));
  EXPECT_TRUE(roles_of("groups").empty());
  EXPECT_TRUE(roles_of("realm_access").empty());  // an object is not a role list
  EXPECT_TRUE(roles_of("realm_access.roles.x").empty());

  for (auto [amr, mfa] : {std::pair{json{"hwk"}, true},
                          {json{"pwd", "mfa"}, true},
                          {json{"pwd", "pin"}, false},
                          {json("otp"), false},
                          {json(), false}}) {
    claims["amr"] = amr;
    if (amr.is_null()) claims.erase("amr");
    const AuthResult result = Check(MakeJwt(*ed_, "ed-1", claims));
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result.identity->mfa, mfa) << amr.dump();
  }
  JwtOptions only_hwk = Options();
  only_hwk.mfa_methods = {"hwk"};
  claims["amr"] = {"otp"};
  EXPECT_FALSE(Check(MakeJwt(*ed_, "ed-1", claims), only_hwk).identity->mfa);
}

TEST_F(JwtTest, JwksSkipsUnusableKeysWithOneWarningEach) {
  json off_curve = ec_->Jwk("ec-off");
  std::string y = *Base64UrlDecode(off_curve["y"].get<std::string>());
  y[31] ^= 1;
  off_curve["y"] = Base64UrlEncode(y);
  json short_x = ed_->Jwk("ed-short");
  short_x["x"] = Base64UrlEncode(std::string(31, 'a'));
  json rs384 = rsa_->Jwk("rsa-384");
  rs384["alg"] = "RS384";
  json enc = ec_->Jwk("ec-enc");
  enc["use"] = "enc";
  json p384 = {{"kty", "EC"}, {"crv", "P-384"}, {"kid", "p384"}, {"x", "AA"}, {"y", "AA"}};
  json hmac = {{"kty", "oct"}, {"kid", "hmac"}, {"k", "c2VjcmV0"}};
  const std::vector<json> keys = {ed_->Jwk("ed-1"),
                                  TestJwsKey::Rsa(1024).Jwk("rsa-1024"),
                                  off_curve,
                                  short_x,
                                  rs384,
                                  enc,
                                  p384,
                                  hmac,
                                  ed_->Jwk("ed-1"),
                                  json("not an object"),
                                  {{"kty", "RSA"}, {"kid", "no-n"}, {"e", "AQAB"}}};
  const Jwks jwks = ParseJwks(JwksText(keys), "test.jwks");
  ASSERT_EQ(jwks.keys.size(), 1u);
  EXPECT_EQ(jwks.keys[0].kid(), "ed-1");
  ASSERT_EQ(jwks.warnings.size(), keys.size() - 1);
  for (const std::string& w : jwks.warnings) {
    EXPECT_EQ(w.rfind("test.jwks: key ", 0), 0u) << w;
    EXPECT_NE(w.find("skipped"), std::string::npos) << w;
  }
  EXPECT_NE(jwks.warnings[0].find("1024 bits"), std::string::npos) << jwks.warnings[0];
  EXPECT_NE(jwks.warnings[1].find("OpenSSL"), std::string::npos) << jwks.warnings[1];
  EXPECT_NE(jwks.warnings[7].find("repeats"), std::string::npos) << jwks.warnings[7];
}

TEST_F(JwtTest, JwksErrors) {
  const auto code_of = [](const std::string& text) {
    try {
      ParseJwks(text, "x.jwks");
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("x.jwks: ", 0), 0u) << e.what();
      return e.code();
    }
    return ErrorCode::kRuntime;
  };
  EXPECT_EQ(code_of(""), ErrorCode::kBadInput);
  EXPECT_EQ(code_of("[]"), ErrorCode::kBadInput);
  EXPECT_EQ(code_of(R"({"keys": {}})"), ErrorCode::kBadInput);
  EXPECT_EQ(code_of(R"({"keys": []})"), ErrorCode::kBadInput);
  EXPECT_EQ(code_of(R"({"keys": [{"kty": "oct", "k": "AA"}]})"), ErrorCode::kBadInput);
  EXPECT_EQ(code_of(R"({"keys": [], "keys": []})"), ErrorCode::kBadInput);

  JwtOptions options = Options();
  options.jwks_file = (dir_ / "missing.json").string();
  try {
    JwtVerifier verifier(options);
    ADD_FAILURE() << "a missing JWKS file was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find(options.jwks_file), std::string::npos);
  }
  fs::permissions(jwks_path_, fs::perms::group_write, fs::perm_options::add);
  try {
    JwtVerifier verifier(Options());
    ADD_FAILURE() << "a group-writable JWKS file was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
  }
  fs::permissions(jwks_path_, fs::perms::group_write, fs::perm_options::remove);
  options = Options();
  options.audience.clear();
  EXPECT_THROW(JwtVerifier{options}, Error);
  options = Options();
  options.issuer.clear();
  EXPECT_THROW(JwtVerifier{options}, Error);
}

TEST_F(JwtTest, JwksWithPrivateMembersWarnsAndUsesThePublicPart) {
  json leaked = ed_->Jwk("ed-1");
  leaked["d"] = Base64UrlEncode(std::string(32, 'k'));
  const Jwks jwks = ParseJwks(JwksText({leaked, ec_->Jwk("")}), "idp.jwks");
  ASSERT_EQ(jwks.keys.size(), 2u);
  ASSERT_EQ(jwks.warnings.size(), 2u);
  EXPECT_NE(jwks.warnings[0].find("private key members"), std::string::npos);
  EXPECT_NE(jwks.warnings[1].find("without kid"), std::string::npos);
  for (const std::string& w : jwks.warnings) {
    EXPECT_EQ(w.find(leaked["d"].get<std::string>()), std::string::npos) << w;
  }
  EXPECT_TRUE(
      VerifyJwt(MakeJwt(*ed_, "ed-1", Claims()), jwks, Options(), AuthMethod::kJwt, kNowTp).ok());
}

TEST_F(JwtTest, SingleKeyWithoutKidVerifiesTokensWithoutKid) {
  WriteFileAtomically(jwks_path_, JwksText({ec_->Jwk("")}), fs::perms::owner_all);
  JwtVerifier verifier(Options());
  EXPECT_TRUE(verifier.Verify(MakeJwt(*ec_, "", Claims()), kNowTp).ok());
  EXPECT_EQ(verifier.Verify(MakeJwt(*ec_, "ec-1", Claims()), kNowTp).reason, "unknown_kid");
}

TEST_F(JwtTest, KeyRotationByReplacingTheFile) {
  const fs::perms mode = fs::perms::owner_read | fs::perms::owner_write;
  WriteFileAtomically(jwks_path_, JwksText({ec_->Jwk("2026-11")}), mode);
  JwtVerifier verifier(Options());
  const std::string old_token = MakeJwt(*ec_, "2026-11", Claims());
  const TestJwsKey fresh = TestJwsKey::EcP256();
  const std::string new_token = MakeJwt(fresh, "2026-12", Claims());
  EXPECT_TRUE(verifier.Verify(old_token, kNowTp).ok());
  EXPECT_EQ(verifier.Verify(new_token, kNowTp).reason, "unknown_kid");
  EXPECT_FALSE(verifier.ReloadIfChanged());

  // Rotation: the new key is published next to the old one, then the old one is removed.
  WriteFileAtomically(jwks_path_, JwksText({ec_->Jwk("2026-11"), fresh.Jwk("2026-12")}), mode);
  EXPECT_TRUE(verifier.ReloadIfChanged());
  EXPECT_TRUE(verifier.Verify(old_token, kNowTp).ok());
  EXPECT_TRUE(verifier.Verify(new_token, kNowTp).ok());
  WriteFileAtomically(jwks_path_, JwksText({fresh.Jwk("2026-12")}), mode);
  EXPECT_TRUE(verifier.ReloadIfChanged());
  EXPECT_FALSE(verifier.ReloadIfChanged());
  EXPECT_TRUE(verifier.Verify(new_token, kNowTp).ok());
  EXPECT_EQ(verifier.Verify(old_token, kNowTp).reason, "unknown_kid");
  EXPECT_TRUE(verifier.warnings().empty());

  // A broken replacement is refused: the current keys stay, the reason is a warning.
  WriteFileAtomically(jwks_path_, "{\"keys\": [", mode);
  EXPECT_TRUE(verifier.ReloadIfChanged());
  EXPECT_TRUE(verifier.Verify(new_token, kNowTp).ok());
  ASSERT_EQ(verifier.warnings().size(), 1u);
  EXPECT_NE(verifier.warnings()[0].find("previous keys"), std::string::npos);
  // A file that disappears is a failed reload as well.
  fs::remove(jwks_path_);
  EXPECT_TRUE(verifier.ReloadIfChanged());
  EXPECT_TRUE(verifier.Verify(new_token, kNowTp).ok());
  WriteFileAtomically(jwks_path_, JwksText({fresh.Jwk("2026-12"), ed_->Jwk("ed-1")}), mode);
  EXPECT_TRUE(verifier.ReloadIfChanged());
  EXPECT_TRUE(verifier.warnings().empty());
  EXPECT_TRUE(verifier.Verify(MakeJwt(*ed_, "ed-1", Claims()), kNowTp).ok());
}

// A reload swaps the whole set: verifications running meanwhile always see a set with the key.
TEST_F(JwtTest, VerifyWhileReloading) {
  const fs::perms mode = fs::perms::owner_read | fs::perms::owner_write;
  JwtVerifier verifier(Options());
  const std::string token = MakeJwt(*ed_, "ed-1", Claims());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      do {
        if (!verifier.Verify(token, kNowTp).ok()) ++failures;
      } while (!stop);
    });
  }
  for (int i = 0; i < 40; ++i) {
    std::vector<json> keys = {ed_->Jwk("ed-1")};
    if (i % 2) keys.push_back(ec_->Jwk("ec-" + std::to_string(i)));
    WriteFileAtomically(jwks_path_, JwksText(keys), mode);
    EXPECT_TRUE(verifier.ReloadIfChanged());
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_TRUE(verifier.warnings().empty());
}

// Tokens made by another implementation (PyJWT, Debian python3-jwt) verify, with our JWKS.
TEST_F(JwtTest, TokensFromPyJwtVerify) {
  const std::string python = "/usr/bin/python3";
  const auto probe = cvdeploy::testing::RunProcess(
      python, {"-c", "import jwt, cryptography.hazmat.primitives.asymmetric.ed25519"});
  if (probe.exit_code != 0) GTEST_SKIP() << "PyJWT with python3-cryptography is not installed";
  JwtVerifier verifier(Options());
  for (auto [key, kid] : {std::pair{rsa_, "rsa-1"}, {ec_, "ec-1"}, {ed_, "ed-1"}}) {
    SCOPED_TRACE(key->alg());
    const fs::path pem = dir_ / (std::string(kid) + ".pem");
    std::ofstream(pem) << key->PrivatePem();
    const std::string script =
        "import jwt, sys\n"
        "key = open(sys.argv[1]).read()\n"
        "claims = {'iss': sys.argv[3], 'aud': sys.argv[4], 'sub': 'bob', 'exp': " +
        std::to_string(kNow + 60) + ", 'iat': " + std::to_string(kNow) +
        ", 'groups': ['operator'], 'amr': ['hwk']}\n"
        "print(jwt.encode(claims, key, algorithm=sys.argv[2], headers={'kid': sys.argv[5]}))\n";
    const auto run = cvdeploy::testing::RunProcess(
        python, {"-c", script, pem.string(), key->alg(), kIssuer, kAudience, kid});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    std::string token = run.out;
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    JwtOptions options = Options();
    options.roles_claim = "groups";
    const AuthResult result = JwtVerifier(options).Verify(token, kNowTp);
    ASSERT_TRUE(result.ok()) << result.reason << ": " << result.message;
    EXPECT_EQ(result.identity->name, "bob");
    EXPECT_EQ(result.identity->roles, std::vector<std::string>{"operator"});
    EXPECT_TRUE(result.identity->mfa);
    EXPECT_EQ(verifier.Verify(FlipChar(token, 2), kNowTp).reason, "bad_signature");
  }
}

}  // namespace
}  // namespace cvdeploy::security
