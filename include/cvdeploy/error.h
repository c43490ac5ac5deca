// SPDX-License-Identifier: Apache-2.0
// Error type of the public API. Exceptions are fine inside the core; front ends
// catch them at the edge and map ErrorCode to an exit code or HTTP status.
#pragma once

#include <stdexcept>
#include <string>

namespace cvdeploy {

enum class ErrorCode {
  kInvalidArgument = 2,  // caller misuse: bad option value, conflicting flags (CLI exit 2)
  kBadInput = 3,         // missing/unreadable/corrupt file, invalid or unsupported model (exit 3)
  kRuntime = 4,          // engine or system failure while running (exit 4)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// A configured size limit refused an input (kBadInput). `setting` names the limit in the
// core's terms ("max_model_bytes", "max_pixels"), so a front end can point at its own flag
// or configuration key; the message itself names no flag.
class LimitError : public Error {
 public:
  LimitError(const std::string& setting, const std::string& message)
      : Error(ErrorCode::kBadInput, message), setting_(setting) {}
  const std::string& setting() const noexcept { return setting_; }

 private:
  std::string setting_;
};

// Shorthands: `throw BadInput(path + ": not a JPEG")`.
inline Error BadInput(const std::string& message) { return Error(ErrorCode::kBadInput, message); }
inline Error InvalidArgument(const std::string& message) {
  return Error(ErrorCode::kInvalidArgument, message);
}
inline Error RuntimeError(const std::string& message) {
  return Error(ErrorCode::kRuntime, message);
}

}  // namespace cvdeploy
