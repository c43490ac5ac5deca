// SPDX-License-Identifier: Apache-2.0
// The parsers of credentials a client sends (security/api_keys.h, security/totp.h): the
// Bearer value's key format (ApiKeyId), base32 (Base32Decode, used for TOTP secrets), the
// TOTP code check and the --expires parser. Besides memory safety it checks the contracts
// the stores rely on: an accepted key is 64 characters "cvd_<16 lower hex>_<43 base64url>"
// and its id is those 16 characters; base32 decoding is canonical (re-encoding gives the
// input back, up to case and padding); ParseTtl throws only kInvalidArgument and returns a
// positive duration.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cvdeploy/error.h"
#include "cvdeploy/security/api_keys.h"
#include "fuzz_util.h"
#include "security/totp.h"

namespace {

std::string Canonical(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cvdeploy::security;
  const std::string_view text = cvdeploy::fuzz::AsText(data, size);
  if (auto id = ApiKeyId(text)) {
    if (text.size() != 64 || text.substr(0, 4) != "cvd_" || *id != text.substr(4, 16) ||
        text[20] != '_') {
      std::abort();
    }
    for (char c : *id) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) std::abort();
    }
  }
  if (auto bytes = Base32Decode(text)) {
    if (Base32Encode(*bytes) != Canonical(text)) std::abort();
  }
  if (IsWellFormedTotpCode(text) && text.size() != static_cast<size_t>(kTotpDigits)) std::abort();
  try {
    if (auto ttl = ParseTtl(text)) {
      if (ttl->count() <= 0) std::abort();
    } else if (text != "never") {
      std::abort();
    }
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kInvalidArgument) std::abort();
  }
  return 0;
}
