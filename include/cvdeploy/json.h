// SPDX-License-Identifier: Apache-2.0
// Bounded JSON reading: every JSON document the server or the CLI reads from outside (request
// bodies, config.json, COCO annotations, calibration tables, ONNX metadata values) goes through
// ParseJsonBounded, so that its nesting depth is checked by a flat scan *before* nlohmann builds
// a tree or anything walks one recursively (dump, copy, comparison). Also reachable as core::
// inside the library (src/core/json_limits.h).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace cvdeploy {

// Deeper documents are refused. 64 levels is far beyond any legitimate input we read (a
// KServe tensor of rank 8 nests 9 levels) and far below what a recursive walk can survive.
inline constexpr int kMaxJsonDepth = 64;

// Largest nesting depth of arrays and objects in `text`, counted without recursion and
// ignoring brackets inside strings. Stops scanning (and returns limit + 1) as soon as the
// depth exceeds `limit`. Works on invalid JSON too (the parser reports that afterwards).
int JsonNestingDepth(std::string_view text, int limit = kMaxJsonDepth);

// Parses `text`. Throws Error(kBadInput) "WHAT: ..." when it is nested deeper than
// `max_depth` levels ("JSON nested deeper than 64 levels") or is not valid JSON (nlohmann's
// reason, e.g. a number out of range such as 1e400). `what` names the input (a path, or
// "request body").
nlohmann::json ParseJsonBounded(std::string_view text, const std::string& what,
                                int max_depth = kMaxJsonDepth);
nlohmann::ordered_json ParseOrderedJsonBounded(std::string_view text, const std::string& what,
                                               int max_depth = kMaxJsonDepth);

// The message of the depth error, for callers that check with JsonNestingDepth themselves.
std::string JsonTooDeepMessage(const std::string& what, int max_depth = kMaxJsonDepth);

}  // namespace cvdeploy
