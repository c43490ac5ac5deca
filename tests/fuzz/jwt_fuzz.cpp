// SPDX-License-Identifier: Apache-2.0
// JWT verification (security::VerifyJwt, the path of JwtVerifier and SessionTokens) on
// untrusted bytes, against a fixed JWKS with one Ed25519, one EC P-256 and one RSA-2048 key.
// Two modes, by the first byte:
//  - 'S': the rest is "HEADER_JSON\nCLAIMS_JSON"; the harness signs it with the Ed25519 key of
//    the set, so the fuzzer reaches the header rules and the claim rules behind the signature;
//  - anything else: the whole input is the token.
// Checks: VerifyJwt never throws; a failure has a known reason and a non-empty message that
// holds no 16-byte space-free piece of the token; a success has a subject, an expiry and method
// kJwt. Also: strict JOSE JSON (ParseJoseJson) round-trips whatever it accepts.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "cvdeploy/security/crypto.h"
#include "cvdeploy/security/jwks.h"
#include "cvdeploy/security/jwt.h"
#include "fuzz_util.h"
#include "security/jose_json.h"

namespace {

namespace sec = cvdeploy::security;

// Test keys made for this harness only (tests/fuzz/seeds/jwt holds tokens they signed).
constexpr char kJwks[] =
    R"jwks({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "iQJz1Syyzg1iNjsn-xyNyXVysbR__JB0AkC5nno9Z6U"}, {"kty": "EC", "crv": "P-256", "kid": "ec", "x": "i5ygnIbLyHNGiyRteoEfkL_6p_CvJ9UUZsluymkkU6w", "y": "FLXVsrYF1g_3UKu_6Ubzhu58P4ttLMIkdJd1frbACCg", "alg": "ES256", "use": "sig"}, {"kty": "RSA", "kid": "rsa", "n": "6KxiXUW9AA2bAO5o4JfS1qVZZIBSygfJ7XP5i07nMnbZ-IYSy_VLwKYRBQWFCkX0DV0Wr3T7Pb6m38BRO-A9hTCwdykxw-O1x2IBN47oJBxQsH7fMZWg9bzEWT01tsM0o3eZmA0KxnaHJFXxIU44k6krVp6wIxsCeD9cyC_yD89-qeGrV5V6UdVAKbcfz9aGZBefqV9d6awvEwV9dIcldQ7desxf6vUQnSzzkSd1OUuZzFzq9LLwFmCwmD_5bbinpOOu1MayPRL2pio5NceRVFsKIittBn0J0sDDv3vrLTqh2baAgY9RfNTYMsbLD0WDKtuyLRCAORsVv0WQyNKDVQ", "e": "AQAB"}]})jwks";
constexpr char kEd25519Pem[] = R"pem(-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIBS3K+4p6Sa7PmG59yBICMzt8MtEvNI3w/cNCu366bu+
-----END PRIVATE KEY-----
)pem";

const sec::Jwks& Keys() {
  static const sec::Jwks keys = sec::ParseJwks(kJwks, "fuzz jwks");
  return keys;
}

const sec::Ed25519Key& SigningKey() {
  static const sec::Ed25519Key key = sec::Ed25519Key::FromPem(kEd25519Pem);
  return key;
}

const sec::JwtOptions& Options() {
  static const sec::JwtOptions options = [] {
    sec::JwtOptions o;
    o.issuer = "https://idp.example";
    o.audience = "cvdeploy";
    o.roles_claim = "realm_access.roles";
    return o;
  }();
  return options;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input = cvdeploy::fuzz::AsText(data, size);
  if (Keys().keys.size() != 3) std::abort();
  std::string token(input);
  if (!input.empty() && input[0] == 'S') {
    const std::string_view rest = input.substr(1);
    const size_t newline = rest.find('\n');
    const std::string_view header = rest.substr(0, newline);
    const std::string_view claims =
        newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
    for (std::string_view part : {header, claims}) {
      std::optional<nlohmann::json> doc = sec::ParseJoseJson(part);
      if (doc && sec::ParseJoseJson(doc->dump()) != doc) std::abort();
    }
    const std::string signing_input =
        sec::Base64UrlEncode(header) + "." + sec::Base64UrlEncode(claims);
    token = signing_input + "." + sec::Base64UrlEncode(SigningKey().Sign(signing_input));
  }
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1800000000));
  const sec::AuthResult result =
      sec::VerifyJwt(token, Keys(), Options(), sec::AuthMethod::kJwt, now);
  if (result.ok()) {
    if (result.identity->name.empty() || !result.identity->expires ||
        result.identity->method != sec::AuthMethod::kJwt || !result.reason.empty()) {
      std::abort();
    }
    return 0;
  }
  static const std::set<std::string> kReasons = {"malformed",     "bad_alg",       "unknown_kid",
                                                 "bad_signature", "expired",       "not_yet_valid",
                                                 "wrong_issuer",  "wrong_audience"};
  if (!kReasons.count(result.reason) || result.message.empty()) std::abort();
  for (size_t at = 0; at + 16 <= token.size() && at < 4096; at += 16) {
    // Pieces with a space could be the fuzzer echoing our own message text back at us (it
    // learns compared strings); no space-free run of a message is 16 characters long.
    const std::string piece = token.substr(at, 16);
    if (piece.find(' ') == std::string::npos && result.message.find(piece) != std::string::npos) {
      std::abort();
    }
  }
  return 0;
}
