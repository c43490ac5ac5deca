// SPDX-License-Identifier: Apache-2.0
// Making client bytes presentable inside an error message. Used by the codecs (which know
// nothing of HTTP) and by the server's error responses.
#pragma once

#include <string>
#include <string_view>

#include "cvdeploy/error.h"

namespace cvdeploy::server {

// `text` with every control byte (0x00-0x1f, 0x7f) written as a visible "\xNN", so that a
// reason quoting client bytes stays one line and is not cut at an embedded NUL (what() is a
// C string). Other bytes, including UTF-8 sequences, are kept. Idempotent.
inline std::string EscapeControlBytes(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    } else {
      out += c;
    }
  }
  return out;
}

// A cvdeploy::Error whose message quotes client bytes (names, header values, paths): stored
// with its control bytes escaped, because what() is a C string that an embedded NUL would cut.
inline Error EscapedError(ErrorCode code, std::string_view message) {
  return Error(code, EscapeControlBytes(message));
}

}  // namespace cvdeploy::server
