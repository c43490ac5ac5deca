// SPDX-License-Identifier: Apache-2.0
// multipart/form-data (server/multipart.h). Input: the Content-Type header value, a newline,
// then the body, so the boundary parser and the body parser are fuzzed together as the
// image endpoint uses them. Checks that every part view lies inside the body it came from.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cvdeploy/error.h"
#include "fuzz_util.h"
#include "server/multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input = cvdeploy::fuzz::AsText(data, size);
  const size_t newline = input.find('\n');
  const std::string_view content_type = input.substr(0, newline);
  const std::string_view body =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  const auto boundary = cvdeploy::server::MultipartBoundary(content_type);
  if (!boundary) return 0;
  if (boundary->empty() || boundary->size() > 70) std::abort();
  try {
    for (const auto& part : cvdeploy::server::ParseMultipart(body, *boundary, 8)) {
      if (part.body.data() < body.data() ||
          part.body.data() + part.body.size() > body.data() + body.size()) {
        std::abort();
      }
      if (part.name.empty()) std::abort();  // the contract: a part without a name is a 400
    }
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kInvalidArgument) std::abort();  // the server's 400
  }
  return 0;
}
