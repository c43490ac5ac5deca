// SPDX-License-Identifier: Apache-2.0
// The server's error type: an HTTP status and a one-line reason. Request parsing and
// handlers throw it; the router turns it into {"error": reason} with that status, so a
// handler never throws into the transport. Also the one table from core error codes to
// HTTP statuses.
#pragma once

#include <stdexcept>
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

class HttpError : public std::runtime_error {
 public:
  // The message is stored with its control bytes escaped (see EscapeControlBytes).
  HttpError(int status, const std::string& message)
      : std::runtime_error(EscapeControlBytes(message)), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

// The HTTP status of a core error raised while serving a request: the caller's mistake is 400,
// input that is well-formed but cannot be processed (an undecodable image) is 422, and a
// failure of the engine or the system is 500.
inline int HttpStatusOf(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kBadInput:
      return 422;
    case ErrorCode::kRuntime:
    default:
      return 500;
  }
}

}  // namespace cvdeploy::server
