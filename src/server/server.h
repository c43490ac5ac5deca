// SPDX-License-Identifier: Apache-2.0
// `cvdeploy serve` as a library: binds the listeners, loads the models in the background
// (live at once, ready after warm-up), serves until SIGINT/SIGTERM, then drains.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "cvdeploy/status.h"
#include "server/api.h"
#include "server/model_repository.h"
#include "server/transport.h"

namespace cvdeploy::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::optional<int> metrics_port;  // separate /metrics listener; default: the main port
  int io_threads = 2;
  RepositoryOptions repository;
  TransportLimits limits;
  ApiOptions api;
  std::chrono::milliseconds drain_timeout{30000};
  std::string access_log = "-";  // "-": stdout, "": off, else a file (appended)
  bool exit_on_error = true;     // stop (kBadInput) when a model fails its initial load
};

// The front end's table from how the server stopped (ok after a signal and a drain, or
// kBadInput when a model failed its initial load) to the process exit status: the server
// chooses no exit codes itself.
using ExitCodeOfStatus = std::function<int(const Status&)>;

// Runs the server until a signal or a failed initial load; returns exit_code_of(how it
// stopped). When the drain times out with requests in progress the process exits at once
// with that code instead of returning. Throws cvdeploy::Error (bad repository:
// kBadInput; port in use: kUnavailable; unresolvable host: kInvalidArgument) before serving
// starts.
int RunServer(const ServerOptions& options, const ExitCodeOfStatus& exit_code_of);

}  // namespace cvdeploy::server
