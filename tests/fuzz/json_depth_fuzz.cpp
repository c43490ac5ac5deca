// SPDX-License-Identifier: Apache-2.0
// The JSON depth pre-scan (core/json_limits.h) that guards every JSON document read from
// outside. Checks, for any bytes:
//  - JsonNestingDepth(text, L) == min(full depth, L + 1): the early stop is consistent;
//  - ParseJsonBounded throws only Error(kBadInput), and always when the depth is over the
//    limit (before nlohmann sees the text);
//  - on a document it accepts, the scan is at least the naive recursive depth of the parsed
//    tree (equal but for duplicate keys, whose overwritten values only the text has) and
//    equal to it on the tree's serialization, and the recursive operations the server runs on trees
//    (dump, copy, comparison, ordered parse) succeed: depth <= limit means recursion is safe.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/json_limits.h"
#include "cvdeploy/error.h"
#include "fuzz_util.h"

namespace {

// The reference: depth of the parsed tree by plain recursion (safe: only called on trees
// the bounded parser accepted, so at most kMaxJsonDepth levels).
template <typename Json>
int NaiveDepth(const Json& j) {
  if (!j.is_structured()) return 0;
  int deepest = 0;
  for (const auto& child : j) deepest = std::max(deepest, NaiveDepth(child));
  return deepest + 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace core = cvdeploy::core;
  const std::string_view text = cvdeploy::fuzz::AsText(data, size);
  // Every byte can open at most one level, so size + 1 never stops the scan early.
  const int unbounded = static_cast<int>(std::min<size_t>(size, 1 << 20)) + 1;
  const int full = core::JsonNestingDepth(text, unbounded);
  if (full < 0 || full > static_cast<int>(size)) std::abort();
  for (int limit : {0, 1, 2, 7, core::kMaxJsonDepth}) {
    if (core::JsonNestingDepth(text, limit) != std::min(full, limit + 1)) std::abort();
  }

  nlohmann::json tree;
  try {
    tree = core::ParseJsonBounded(text, "fuzz");
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
    return 0;
  }
  if (full > core::kMaxJsonDepth) std::abort();  // accepted although too deep
  // The scan is an upper bound of the tree's depth: equal, except that a duplicate key keeps
  // only its last value (nlohmann), so an overwritten deeper value counts in the text only.
  const int depth = NaiveDepth(tree);
  if (depth > full) std::abort();

  // What the server does with accepted trees: serialize (error excerpts), copy, compare.
  const std::string dumped = tree.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const nlohmann::json copy = tree;
  if (copy != tree) std::abort();
  const nlohmann::ordered_json ordered = core::ParseOrderedJsonBounded(text, "fuzz");
  if (NaiveDepth(ordered) != depth) std::abort();
  // The serialized tree has no duplicates: there the scan and the tree agree exactly.
  if (core::JsonNestingDepth(dumped, unbounded) != depth) std::abort();
  return 0;
}
