// SPDX-License-Identifier: Apache-2.0
// The server's event log, one module for every server file that writes to stderr (public part:
// cvdeploy/server_log.h, where the contracts are). This header adds what only the server's
// internals need: the level of the string-level callbacks (RepositoryLog, the security stack's
// log) those components take.
#pragma once

#include <string>
#include <string_view>

#include "cvdeploy/server_log.h"

namespace cvdeploy::server {

// "info", "warning", "error"; anything else is logged as kError, so that no event is
// downgraded by a misspelled level.
LogLevel LogLevelFromName(std::string_view name);

// Log(LogLevelFromName(level), message): the adapter for string-level callbacks.
void LogNamed(std::string_view level, std::string_view message);

// The request the current thread is handling (docs/server.md "Tracing"): while a scope is
// alive, every Log line this thread writes names the request, in text as a suffix
// " (request ID, trace TRACE)" and in JSON as "request_id" and "trace_id" fields after "msg".
// Scopes nest (the inner one wins until it ends). Set where a request's work runs: the
// tracing wrapper (I/O thread), the scheduler (per job), the sample writer (per sample).
// Not copyable; must end on the thread that made it.
class RequestLogScope {
 public:
  RequestLogScope(std::string_view request_id, std::string_view trace_id);
  ~RequestLogScope();
  RequestLogScope(const RequestLogScope&) = delete;
  RequestLogScope& operator=(const RequestLogScope&) = delete;

  struct Ids {
    std::string request_id, trace_id;
  };

 private:
  Ids ids_;
  const Ids* previous_;
};

// FormatLogLine naming a request (`ids` null: the plain line).
std::string FormatLogLine(LogFormat format, std::string_view time, LogLevel level,
                          std::string_view message, const RequestLogScope::Ids* ids);

}  // namespace cvdeploy::server
