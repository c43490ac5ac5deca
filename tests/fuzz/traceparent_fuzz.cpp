// SPDX-License-Identifier: Apache-2.0
// W3C Trace Context headers (server/trace_context.h) on any bytes a client can send: the first
// byte chooses traceparent or tracestate. Checks beyond memory safety: an accepted traceparent
// has lower-case hex ids of 32 and 16 digits, neither all zero, and formats back to a value
// that parses to the same ids; an accepted tracestate is printable ASCII within the bound.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_util.h"
#include "server/trace_context.h"

namespace {

bool LowerHexNotZero(const std::string& s, size_t n) {
  if (s.size() != n || s.find_first_not_of('0') == std::string::npos) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = cvdeploy::fuzz::AsText(data, size);
  if (!text.empty() && text[0] == 'S') {
    if (auto s = cvdeploy::server::SanitizeTracestate(text.substr(1))) {
      if (s->empty() || s->size() > cvdeploy::server::kMaxTracestate) std::abort();
      for (char c : *s)
        if (c < 0x20 || c > 0x7e) std::abort();
    }
    return 0;
  }
  if (auto p = cvdeploy::server::ParseTraceparent(text)) {
    if (!LowerHexNotZero(p->trace_id, 32) || !LowerHexNotZero(p->parent_id, 16)) std::abort();
    const auto again = cvdeploy::server::ParseTraceparent(
        cvdeploy::server::FormatTraceparent(p->trace_id, p->parent_id, p->flags));
    if (!again || again->trace_id != p->trace_id || again->parent_id != p->parent_id ||
        again->flags != p->flags) {
      std::abort();
    }
  }
  return 0;
}
