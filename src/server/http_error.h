// SPDX-License-Identifier: Apache-2.0
// The server's one table from error codes to HTTP statuses. Handlers, the repository, the
// scheduler and the codecs raise or return cvdeploy::Error / Status with a semantic
// ErrorCode; the status of an error answer is chosen here and nowhere else (the table in
// docs/server.md). Transport-level protocol answers (malformed framing, 405, 431, 501) and
// success statuses are not errors of this kind and stay where they are produced.
#pragma once

#include "cvdeploy/error.h"
#include "cvdeploy/status.h"
#include "server/text_escape.h"

namespace cvdeploy::server {

// The switch has no default: -Wswitch (in -Wall -Werror) fails the build until a new code is
// mapped.
constexpr int HttpStatusOf(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;  // the request is malformed or asks for something impossible
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kTooLarge:
      return 413;
    case ErrorCode::kUnsupportedMedia:
      return 415;
    case ErrorCode::kBadInput:
      return 422;  // well-formed, but cannot be processed (an undecodable image)
    case ErrorCode::kRuntime:
      return 500;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kDeadlineExceeded:
      return 504;
  }
  return 500;  // not reached: every code is listed above
}

}  // namespace cvdeploy::server
