// SPDX-License-Identifier: Apache-2.0
// A minimal HTTP(S) GET for health checks: `cvdeploy health` (the container image's
// HEALTHCHECK, which has no curl) probes the server's readiness route with it.
//
// Contracts: one request on a fresh connection, no redirects, no credentials sent, response
// body read up to 64 KiB and discarded. https:// is accepted for servers started with
// --tls-cert and does NOT verify the certificate: the probe asks "is this process ready",
// it trusts nothing it reads and sends nothing secret. Thread-safe (no shared state).
// Errors: a malformed URL throws cvdeploy::InvalidArgument; network failures are results.
#pragma once

#include <chrono>
#include <string>

namespace cvdeploy::server {

struct ProbeResult {
  int status = 0;      // HTTP status; 0 when no response arrived
  std::string detail;  // why there was no response ("connection refused", "timed out")
  bool ok() const { return status >= 200 && status < 300; }
};

// GET `url` (http://HOST[:PORT]/PATH or https://...; HOST may be a bracketed IPv6 address),
// the whole exchange bounded by `timeout`.
ProbeResult ProbeUrl(const std::string& url, std::chrono::milliseconds timeout);

}  // namespace cvdeploy::server
