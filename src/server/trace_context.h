// SPDX-License-Identifier: Apache-2.0
// W3C Trace Context (https://www.w3.org/TR/trace-context/) for the server: parsing the
// `traceparent` and `tracestate` request headers a caller sends, formatting the `traceparent`
// the response carries, and the per-request stage timings the access log and
// `?debug=timings` report.
//
// Contracts: pure functions on untrusted bytes; they never throw on any input (a malformed
// header is ignored, as the specification says, never an error) and allocate only their
// results. Thread-safe (no state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cvdeploy::server {

// A caller's trace context, from a valid `traceparent`.
struct TraceParent {
  std::string trace_id;   // 32 lower-case hex digits, not all zero
  std::string parent_id;  // 16 lower-case hex digits, not all zero
  uint8_t flags = 0;      // trace-flags (bit 0: sampled)
};

// Parses a `traceparent` value: "VV-TRACEID-PARENTID-FF", lower-case hex only, surrounding
// spaces and tabs ignored. Version 00 must be exactly that; a higher version (not "ff") is
// parsed as 00 and may carry more fields after a '-' (forward compatibility), its flags
// reduced to the sampled bit. nullopt for anything else (wrong lengths, upper-case or non-hex
// digits, all-zero ids, version ff).
std::optional<TraceParent> ParseTraceparent(std::string_view value);

// The longest `tracestate` passed on (the specification's minimum a vendor must propagate).
inline constexpr size_t kMaxTracestate = 512;
// The `tracestate` to pass on: the value without surrounding spaces and tabs when it is
// 1..kMaxTracestate characters of printable ASCII (0x20-0x7e) with at most 32 list members;
// nullopt otherwise (dropped, never an error).
std::optional<std::string> SanitizeTracestate(std::string_view value);

// "00-TRACEID-SPANID-FF". Preconditions: ids are lower-case hex of 32 and 16 digits.
std::string FormatTraceparent(std::string_view trace_id, std::string_view span_id, uint8_t flags);

// Milliseconds each stage of one request took; -1 for a stage the request did not go through
// (a tensor request is not decoded). preprocess, inference and postprocess of a batched
// engine call are the call's.
struct StageTimings {
  double queue_ms = -1, decode_ms = -1, preprocess_ms = -1, inference_ms = -1, postprocess_ms = -1,
         encode_ms = -1;
};

// {"queue":..,"decode":..,"preprocess":..,"inference":..,"postprocess":..,"encode":..} in
// milliseconds rounded to 1 us; a stage not gone through is 0.
std::string TimingsJson(const StageTimings& t);

// Adds ,"timings":TimingsJson(t) to the JSON object that ends at body[json_end - 1] (its
// closing '}'); returns the bytes inserted, 0 (body untouched) when no '}' is there.
size_t InsertTimings(std::string& body, size_t json_end, const StageTimings& t);

// The `debug` query parameter of predict and infer: true for "timings"; throws
// cvdeploy::InvalidArgument for any other value.
bool DebugTimingsParam(std::string_view value);

}  // namespace cvdeploy::server
