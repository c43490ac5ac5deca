// SPDX-License-Identifier: Apache-2.0
// cvdeploy health [--url URL] [--timeout S] [--quiet]: exit 0 when the URL answers 2xx, 1
// otherwise (the HEALTHCHECK contract of container engines), 2 for a usage error. The
// container image has no curl; its HEALTHCHECK runs this against the readiness route. Without
// --url it probes the server configured by the same environment as `serve`
// (CVDEPLOY_PORT, CVDEPLOY_TLS_CERT) on 127.0.0.1, so the image's check follows a changed port.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cvdeploy/health_probe.h"

namespace cvdeploy::cli {
namespace {

// http[s]://127.0.0.1:$CVDEPLOY_PORT/v2/health/ready (port 8080 when unset).
std::string DefaultUrl() {
  const char* port = std::getenv("CVDEPLOY_PORT");
  const char* cert = std::getenv("CVDEPLOY_TLS_CERT");
  const bool tls = cert != nullptr && *cert != '\0';
  return std::string(tls ? "https" : "http") +
         "://127.0.0.1:" + (port != nullptr && *port != '\0' ? port : "8080") + "/v2/health/ready";
}

struct HealthArgs {
  std::string url = DefaultUrl();
  double timeout_s = 5;
  bool quiet = false;
};

}  // namespace

void RegisterHealth(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "health",
      "Probe a server's health route: exit 0 when it answers 2xx, 1 otherwise (for "
      "container HEALTHCHECKs; https is not certificate-checked)");
  auto args = std::make_shared<HealthArgs>();
  cmd->add_option("--url", args->url,
                  "URL to GET (default: the readiness route of 127.0.0.1:$CVDEPLOY_PORT)")
      ->capture_default_str();
  cmd->add_option("--timeout", args->timeout_s, "Seconds for the whole exchange")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", args->quiet, "Print nothing");
  cmd->callback([args, exit_code] {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(args->timeout_s * 1000));
    const server::ProbeResult r = server::ProbeUrl(args->url, timeout);
    if (!args->quiet) {
      if (r.status != 0) {
        std::printf("%s: HTTP %d\n", args->url.c_str(), r.status);
      } else {
        std::printf("%s: no answer (%s)\n", args->url.c_str(), r.detail.c_str());
      }
    }
    *exit_code = r.ok() ? 0 : 1;
  });
}

}  // namespace cvdeploy::cli
