// SPDX-License-Identifier: Apache-2.0
// The server's error type: an HTTP status and a one-line reason. Request parsing and
// handlers throw it; the router turns it into {"error": reason} with that status, so a
// handler never throws into the transport.
#pragma once

#include <stdexcept>
#include <string>

namespace cvdeploy::server {

class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

}  // namespace cvdeploy::server
