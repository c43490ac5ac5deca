// SPDX-License-Identifier: Apache-2.0
// The Authorization header reader (server/credentials.h) on any bytes a client can send as
// the header value. Besides memory safety it checks the contracts the auth gate relies on:
// it never throws; a token is a view inside the header, non-empty only for an API key or a
// JWT, at most kMaxTokenBytes; an API key starts with "cvd_"; a JWT has exactly two dots.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_util.h"
#include "server/credentials.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using cvdeploy::server::CredentialKind;
  const std::string_view text = cvdeploy::fuzz::AsText(data, size);
  const auto c = cvdeploy::server::ParseAuthorization(text);
  if (!c.token.empty()) {
    if (c.token.data() < text.data() || c.token.data() + c.token.size() > text.data() + text.size())
      std::abort();
    if (c.token.size() > cvdeploy::server::kMaxTokenBytes) std::abort();
  }
  switch (c.kind) {
    case CredentialKind::kApiKey:
      if (c.token.substr(0, 4) != "cvd_") std::abort();
      break;
    case CredentialKind::kJwt:
      if (std::count(c.token.begin(), c.token.end(), '.') != 2) std::abort();
      break;
    case CredentialKind::kNone:
      std::abort();  // a header was given
    default:
      if (!c.token.empty() || !c.issuer.empty()) std::abort();
  }
  if (c.kind != CredentialKind::kJwt && !c.issuer.empty()) std::abort();
  (void)cvdeploy::server::ParseAuthorization(std::nullopt);
  return 0;
}
