// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/json.h"

#include "cvdeploy/error.h"

namespace cvdeploy {

int JsonNestingDepth(std::string_view text, int limit) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return limit + 1;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

std::string JsonTooDeepMessage(const std::string& what, int max_depth) {
  return what + ": JSON nested deeper than " + std::to_string(max_depth) + " levels";
}

namespace {

template <typename Json>
Json Parse(std::string_view text, const std::string& what, int max_depth) {
  if (JsonNestingDepth(text, max_depth) > max_depth) {
    throw BadInput(JsonTooDeepMessage(what, max_depth));
  }
  // nlohmann's lexer ends the document at a NUL byte and ignores what follows; JSON text
  // never contains one (inside strings it must be escaped), so refuse it instead.
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    throw BadInput(what + ": invalid JSON: NUL byte at offset " + std::to_string(nul));
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    // parse_error for syntax, out_of_range for numbers such as 1e400.
    throw BadInput(what + ": invalid JSON: " + e.what());
  }
}

}  // namespace

nlohmann::json ParseJsonBounded(std::string_view text, const std::string& what, int max_depth) {
  return Parse<nlohmann::json>(text, what, max_depth);
}

nlohmann::ordered_json ParseOrderedJsonBounded(std::string_view text, const std::string& what,
                                               int max_depth) {
  return Parse<nlohmann::ordered_json>(text, what, max_depth);
}

}  // namespace cvdeploy
