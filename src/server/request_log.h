// SPDX-License-Identifier: Apache-2.0
// The server's event-log line about one request (docs/server.md "Tracing"): a request answered
// with a server error names its request id and trace id, so the event line, the access log
// line and the client's report meet.
//
// Contracts: a pure function, thread-safe, never throws beyond std::bad_alloc. The message
// taken from the response is the error text the client already got (never a secret: error
// messages must not hold any).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cvdeploy::server {

// The line to log (at error level) for a request answered `status`: nullopt below 500 and for
// the overload answers 503 and 504 (counted by the metrics, not logged one by one). The line:
// "request ID (trace TRACE) METHOD PATH answered STATUS[: MESSAGE]", MESSAGE being the "error"
// string of a JSON `body` of at most 4 KiB (cut to 200 characters).
std::optional<std::string> ServerErrorEventLine(int status, std::string_view request_id,
                                                std::string_view trace_id, std::string_view method,
                                                std::string_view path, std::string_view body);

}  // namespace cvdeploy::server
