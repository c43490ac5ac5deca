// SPDX-License-Identifier: Apache-2.0
#include "server/request_log.h"

#include <nlohmann/json.hpp>

namespace cvdeploy::server {

std::optional<std::string> ServerErrorEventLine(int status, std::string_view request_id,
                                                std::string_view trace_id, std::string_view method,
                                                std::string_view path, std::string_view body) {
  if (status < 500 || status == 503 || status == 504) return std::nullopt;
  std::string line = "request ";
  line.append(request_id).append(" (trace ").append(trace_id).append(") ");
  line.append(method).append(" ").append(path).append(" answered ");
  line += std::to_string(status);
  if (body.size() <= 4096) {
    const auto doc = nlohmann::json::parse(body, nullptr, false);
    if (doc.is_object() && doc.contains("error") && doc["error"].is_string()) {
      line += ": " + doc["error"].get<std::string>().substr(0, 200);
    }
  }
  return line;
}

}  // namespace cvdeploy::server
