// SPDX-License-Identifier: Apache-2.0
// `cvdeploy serve` as a library: binds the listeners, loads the models in the background
// (live at once, ready after warm-up), serves until SIGINT/SIGTERM, then drains.
#pragma once

#include <chrono>
#include <optional>
#include <string>

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
  bool exit_on_error = true;     // exit 3 when a model fails its initial load
};

// Runs the server until a signal; returns the process exit code (0 after a clean drain).
// Throws cvdeploy::Error (bad repository, port in use) before serving starts.
int RunServer(const ServerOptions& options);

}  // namespace cvdeploy::server
