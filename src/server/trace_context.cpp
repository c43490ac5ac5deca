// SPDX-License-Identifier: Apache-2.0
#include "server/trace_context.h"

#include <cmath>
#include <cstdio>

#include "cvdeploy/error.h"

namespace cvdeploy::server {
namespace {

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool AllLowerHex(std::string_view s) {
  for (char c : s)
    if (!IsLowerHex(c)) return false;
  return true;
}

bool AllZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

int HexValue(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

std::string_view TrimOws(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

}  // namespace

std::optional<TraceParent> ParseTraceparent(std::string_view value) {
  constexpr size_t kLength = 55;  // 2 + 1 + 32 + 1 + 16 + 1 + 2
  value = TrimOws(value);
  if (value.size() < kLength) return std::nullopt;
  const std::string_view version = value.substr(0, 2);
  if (!AllLowerHex(version) || version == "ff") return std::nullopt;
  const bool v00 = version == "00";
  if (v00 && value.size() != kLength) return std::nullopt;
  if (!v00 && value.size() > kLength && value[kLength] != '-') return std::nullopt;
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  const std::string_view trace_id = value.substr(3, 32);
  const std::string_view parent_id = value.substr(36, 16);
  const std::string_view flags = value.substr(53, 2);
  if (!AllLowerHex(trace_id) || !AllLowerHex(parent_id) || !AllLowerHex(flags)) {
    return std::nullopt;
  }
  if (AllZero(trace_id) || AllZero(parent_id)) return std::nullopt;
  TraceParent out;
  out.trace_id = std::string(trace_id);
  out.parent_id = std::string(parent_id);
  out.flags = static_cast<uint8_t>(HexValue(flags[0]) * 16 + HexValue(flags[1]));
  if (!v00) out.flags &= 0x01;
  return out;
}

std::optional<std::string> SanitizeTracestate(std::string_view value) {
  value = TrimOws(value);
  if (value.empty() || value.size() > kMaxTracestate) return std::nullopt;
  size_t members = 1;
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return std::nullopt;
    if (c == ',') ++members;
  }
  if (members > 32) return std::nullopt;
  return std::string(value);
}

std::string FormatTraceparent(std::string_view trace_id, std::string_view span_id, uint8_t flags) {
  char f[3];
  std::snprintf(f, sizeof(f), "%02x", flags);
  std::string out = "00-";
  out.append(trace_id).append("-").append(span_id).append("-").append(f);
  return out;
}

std::string TimingsJson(const StageTimings& t) {
  const std::pair<const char*, double> stages[] = {{"queue", t.queue_ms},
                                                   {"decode", t.decode_ms},
                                                   {"preprocess", t.preprocess_ms},
                                                   {"inference", t.inference_ms},
                                                   {"postprocess", t.postprocess_ms},
                                                   {"encode", t.encode_ms}};
  std::string out = "{";
  for (const auto& [name, ms] : stages) {
    char number[64];
    const double v = std::isfinite(ms) && ms > 0 ? std::round(ms * 1000) / 1000 : 0.0;
    std::snprintf(number, sizeof(number), "%.3f", v);
    if (out.size() > 1) out += ',';
    out.append("\"").append(name).append("\":").append(number);
  }
  out += '}';
  return out;
}

size_t InsertTimings(std::string& body, size_t json_end, const StageTimings& t) {
  if (json_end == 0 || json_end > body.size() || body[json_end - 1] != '}') return 0;
  // An empty object gets no leading comma.
  size_t before = json_end - 1;
  while (before > 0 && (body[before - 1] == ' ' || body[before - 1] == '\n')) --before;
  const bool empty = before > 0 && body[before - 1] == '{';
  const std::string field = std::string(empty ? "" : ",") + "\"timings\":" + TimingsJson(t);
  body.insert(json_end - 1, field);
  return field.size();
}

bool DebugTimingsParam(std::string_view value) {
  if (value == "timings") return true;
  throw InvalidArgument("query parameter debug: the only value is 'timings'");
}

}  // namespace cvdeploy::server
