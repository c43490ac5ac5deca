// SPDX-License-Identifier: Apache-2.0
// JWKS parsing (security::ParseJwks, behind --jwt-jwks) on untrusted bytes. Checks: the only
// exception is Error(kBadInput) with a message naming the source; an accepted set has at least
// one key, unique kids that Find returns, and warnings naming the source; every accepted key
// answers Verify on an empty and a well-sized signature without crashing.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "cvdeploy/error.h"
#include "cvdeploy/security/jwks.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace sec = cvdeploy::security;
  const std::string_view text = cvdeploy::fuzz::AsText(data, size);
  sec::Jwks jwks;
  try {
    jwks = sec::ParseJwks(text, "fuzz.jwks");
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
    if (std::string(e.what()).rfind("fuzz.jwks: ", 0) != 0) std::abort();
    return 0;
  }
  if (jwks.keys.empty()) std::abort();
  std::set<std::string> kids;
  for (const sec::JwkKey& key : jwks.keys) {
    if (!kids.insert(key.kid()).second) std::abort();
    if (jwks.Find(key.kid()) != &key) std::abort();
    if (sec::ParseJwsAlgorithm(sec::JwsAlgorithmName(key.algorithm())) != key.algorithm()) {
      std::abort();
    }
    (void)key.Verify("header.payload", "");
    const size_t sig_size = key.algorithm() == sec::JwsAlgorithm::kRs256 ? 256 : 64;
    (void)key.Verify("header.payload", std::string(sig_size, '\x01'));
  }
  for (const std::string& w : jwks.warnings) {
    if (w.rfind("fuzz.jwks: ", 0) != 0) std::abort();
  }
  return 0;
}
