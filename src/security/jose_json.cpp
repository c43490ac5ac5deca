// SPDX-License-Identifier: Apache-2.0
#include "security/jose_json.h"

#include <set>
#include <string>
#include <vector>

namespace cvdeploy::security {
namespace {

// Thrown from the parser callback to stop the parse at the first violation.
struct Refused {};

}  // namespace

std::optional<nlohmann::json> ParseJoseJson(std::string_view text) {
  using Event = nlohmann::json::parse_event_t;
  // One set of member names per open object; arrays push an empty set that takes no keys.
  std::vector<std::set<std::string>> open;
  auto check = [&open](int depth, Event event, nlohmann::json& parsed) {
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        // nlohmann's parser is iterative; the callback sees each level before it is built.
        if (depth >= kMaxJoseJsonDepth) throw Refused{};
        open.emplace_back();
        break;
      case Event::object_end:
      case Event::array_end:
        if (!open.empty()) open.pop_back();
        break;
      case Event::key:
        if (open.empty() || !open.back().insert(parsed.get<std::string>()).second) {
          throw Refused{};
        }
        break;
      case Event::value:
        break;
    }
    return true;
  };
  try {
    nlohmann::json doc = nlohmann::json::parse(text.begin(), text.end(), check);
    if (doc.is_discarded()) return std::nullopt;
    return doc;
  } catch (const Refused&) {
    return std::nullopt;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

}  // namespace cvdeploy::security
