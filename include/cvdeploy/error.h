// SPDX-License-Identifier: Apache-2.0
// Error type of the public API. Exceptions are fine inside the core; front ends catch them at
// the edge and map the ErrorCode through their one table: ExitCodeOf in the CLI
// (src/cli/exit_codes.h), HttpStatusOf in the server (src/server/http_error.h).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace cvdeploy {

// What went wrong, in the core's terms. The values are not exit codes or HTTP statuses (the
// order is unrelated to both on purpose); only the two edge tables turn them into those.
enum class ErrorCode {
  kInvalidArgument = 1,  // caller misuse: bad option or parameter value, malformed request
  kBadInput,             // an input that is well-formed but cannot be used: corrupt or
                         // unsupported file, invalid or non-YOLO model, bad label file
  kRuntime,              // engine or system failure while running; a bug
  kNotFound,             // a named thing (model, version, route) does not exist
  kTooLarge,             // a configured size limit refused the input (see LimitError)
  kUnsupportedMedia,     // the input's media type or format is not one that is handled
  kPermissionDenied,     // the caller is known but not allowed to do this
  kUnauthenticated,      // the caller did not prove who it is
  kUnavailable,          // momentarily impossible: not ready, queue full, out of memory,
                         // address in use; retrying later may succeed
  kDeadlineExceeded,     // the work's deadline passed before it ran
};

// "invalid argument", "bad input", ...: for logs and messages.
constexpr std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kBadInput:
      return "bad input";
    case ErrorCode::kRuntime:
      return "runtime failure";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kTooLarge:
      return "too large";
    case ErrorCode::kUnsupportedMedia:
      return "unsupported media";
    case ErrorCode::kPermissionDenied:
      return "permission denied";
    case ErrorCode::kUnauthenticated:
      return "unauthenticated";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kDeadlineExceeded:
      return "deadline exceeded";
  }
  return "unknown error";
}

// The message names the input and the reason in the core's terms and never a front end's
// flag. `setting` optionally names the core setting the error is about ("device", "imgsz",
// "batch", "max_pixels", ...), so that a front end can add its own hint (the CLI its flag).
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message, std::string setting = {})
      : std::runtime_error(message), code_(code), setting_(std::move(setting)) {}
  ErrorCode code() const noexcept { return code_; }
  // Empty when the error is about no particular setting.
  const std::string& setting() const noexcept { return setting_; }

 private:
  ErrorCode code_;
  std::string setting_;
};

// A configured size limit refused an input (kTooLarge). `setting` names the limit in the
// core's terms ("max_model_bytes", "max_pixels"), so a front end can point at its own flag
// or configuration key; the message itself names no flag.
class LimitError : public Error {
 public:
  LimitError(const std::string& setting, const std::string& message)
      : Error(ErrorCode::kTooLarge, message, setting) {}
};

// Shorthands: `throw BadInput(path + ": not a JPEG")`.
inline Error BadInput(const std::string& message) { return Error(ErrorCode::kBadInput, message); }
inline Error InvalidArgument(const std::string& message, std::string setting = {}) {
  return Error(ErrorCode::kInvalidArgument, message, std::move(setting));
}
inline Error RuntimeError(const std::string& message) {
  return Error(ErrorCode::kRuntime, message);
}
inline Error NotFound(const std::string& message) { return Error(ErrorCode::kNotFound, message); }
inline Error Unavailable(const std::string& message) {
  return Error(ErrorCode::kUnavailable, message);
}
inline Error DeadlineExceeded(const std::string& message) {
  return Error(ErrorCode::kDeadlineExceeded, message);
}
inline Error TooLarge(const std::string& message) { return Error(ErrorCode::kTooLarge, message); }
inline Error UnsupportedMedia(const std::string& message) {
  return Error(ErrorCode::kUnsupportedMedia, message);
}
inline Error PermissionDenied(const std::string& message) {
  return Error(ErrorCode::kPermissionDenied, message);
}
inline Error Unauthenticated(const std::string& message) {
  return Error(ErrorCode::kUnauthenticated, message);
}

}  // namespace cvdeploy
