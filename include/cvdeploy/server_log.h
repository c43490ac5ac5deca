// SPDX-License-Identifier: Apache-2.0
// The server's own log lines (events: listening, model loads, ready, drain, errors) on stderr,
// as text ("cvdeploy serve: LEVEL: message", the default) or as JSON Lines
// ({"time","level","msg"}, for container log collectors). The access log (one JSON object per
// request on stdout or a file) is separate and unaffected.
//
// Contracts: the format is process-wide; set it once before the server starts (SetLogFormat is
// thread-safe, but lines written concurrently with the switch may use either format). Log is
// thread-safe: each call writes one whole line with one write and flushes it. Messages must
// never contain secrets (keys, passwords, tokens): callers pass what may be shown.
#pragma once

#include <string>
#include <string_view>

namespace cvdeploy::server {

enum class LogLevel { kInfo, kWarning, kError };
enum class LogFormat { kText, kJson };

// "text" or "json"; throws cvdeploy::InvalidArgument naming the value otherwise.
LogFormat ParseLogFormat(std::string_view name);
void SetLogFormat(LogFormat format);
LogFormat CurrentLogFormat();

// "info", "warning", "error".
std::string_view LogLevelName(LogLevel level);

// The line Log writes (without the trailing newline), for a given format and timestamp text
// (UTC, RFC 3339 with milliseconds). JSON escaping is nlohmann's: control characters, quotes
// and backslashes escaped, invalid UTF-8 replaced by U+FFFD, so every line parses.
std::string FormatLogLine(LogFormat format, std::string_view time, LogLevel level,
                          std::string_view message);

// Writes one line to stderr in the current format.
void Log(LogLevel level, std::string_view message);

}  // namespace cvdeploy::server
