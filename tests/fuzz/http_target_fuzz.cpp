// SPDX-License-Identifier: Apache-2.0
// Request target and query parsing (server/http.h): ParseTarget and PercentDecode on any
// bytes a client can put in the request line. Besides memory safety it checks the contracts
// the router relies on: a parsed path starts with '/', and PercentDecode never grows its input.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "fuzz_util.h"
#include "server/http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = cvdeploy::fuzz::AsText(data, size);
  std::string path;
  std::map<std::string, std::string> query;
  if (cvdeploy::server::ParseTarget(text, &path, &query)) {
    if (path.empty() || path[0] != '/') std::abort();
  }
  for (bool plus_is_space : {false, true}) {
    if (auto decoded = cvdeploy::server::PercentDecode(text, plus_is_space)) {
      if (decoded->size() > text.size()) std::abort();
    }
  }
  return 0;
}
