// SPDX-License-Identifier: Apache-2.0
// The server's event log, one module for every server file that writes to stderr (public part:
// cvdeploy/server_log.h, where the contracts are). This header adds what only the server's
// internals need: the level of the string-level callbacks (RepositoryLog, the security stack's
// log) those components take.
#pragma once

#include <string_view>

#include "cvdeploy/server_log.h"

namespace cvdeploy::server {

// "info", "warning", "error"; anything else is logged as kError, so that no event is
// downgraded by a misspelled level.
LogLevel LogLevelFromName(std::string_view name);

// Log(LogLevelFromName(level), message): the adapter for string-level callbacks.
void LogNamed(std::string_view level, std::string_view message);

}  // namespace cvdeploy::server
