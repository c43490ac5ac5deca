// SPDX-License-Identifier: Apache-2.0
#include "server/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

#include "cvdeploy/error.h"

namespace cvdeploy::server {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};
thread_local const RequestLogScope::Ids* t_request = nullptr;

// UTC, RFC 3339 with milliseconds: 2026-12-03T21:30:00.123Z.
std::string Now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

}  // namespace

LogFormat ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  throw InvalidArgument("log format '" + std::string(name) + "': expected text or json");
}

void SetLogFormat(LogFormat format) { g_format.store(format); }

LogFormat CurrentLogFormat() { return g_format.load(); }

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "error";
}

LogLevel LogLevelFromName(std::string_view name) {
  if (name == "info") return LogLevel::kInfo;
  if (name == "warning") return LogLevel::kWarning;
  return LogLevel::kError;
}

RequestLogScope::RequestLogScope(std::string_view request_id, std::string_view trace_id)
    : ids_{std::string(request_id), std::string(trace_id)}, previous_(t_request) {
  t_request = &ids_;
}

RequestLogScope::~RequestLogScope() { t_request = previous_; }

std::string FormatLogLine(LogFormat format, std::string_view time, LogLevel level,
                          std::string_view message) {
  return FormatLogLine(format, time, level, message, nullptr);
}

std::string FormatLogLine(LogFormat format, std::string_view time, LogLevel level,
                          std::string_view message, const RequestLogScope::Ids* ids) {
  if (format == LogFormat::kText) {
    std::string line = "cvdeploy serve: ";
    line.append(LogLevelName(level)).append(": ").append(message);
    if (ids) {
      line.append(" (request ").append(ids->request_id);
      if (!ids->trace_id.empty()) line.append(", trace ").append(ids->trace_id);
      line.append(")");
    }
    // One event, one line: a message with a line break would split the record.
    for (char& c : line) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return line;
  }
  nlohmann::ordered_json record = {{"time", std::string(time)},
                                   {"level", std::string(LogLevelName(level))},
                                   {"msg", std::string(message)}};
  if (ids) {
    record["request_id"] = ids->request_id;
    record["trace_id"] = ids->trace_id;
  }
  return record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void Log(LogLevel level, std::string_view message) {
  std::string line = FormatLogLine(CurrentLogFormat(), Now(), level, message, t_request);
  line.push_back('\n');
  // One write per line: lines from several threads do not interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void LogNamed(std::string_view level, std::string_view message) {
  Log(LogLevelFromName(level), message);
}

}  // namespace cvdeploy::server
