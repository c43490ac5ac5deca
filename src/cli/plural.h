// SPDX-License-Identifier: Apache-2.0
// Counts in English for the CLI's summary lines: "1 person", "4 persons", "2 buses". Simple
// rules on the last word of a class name (s; es after s, x, z, ch, sh; ies after a consonant
// and y), a few irregular and invariant nouns, and "person" -> "persons" as Ultralytics prints
// it. Pure and header-only (unit-tested without the CLI binary); thread-safe.
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace cvdeploy::cli {

// The plural of `noun` (a class name, possibly several words: only the last one changes).
inline std::string Plural(const std::string& noun) {
  const size_t space = noun.find_last_of(' ');
  const std::string head = space == std::string::npos ? "" : noun.substr(0, space + 1);
  const std::string word = space == std::string::npos ? noun : noun.substr(space + 1);
  std::string lower;
  for (char c : word) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.empty()) return noun;
  // Already plural or the same in both numbers (COCO has "skis", "scissors", "sheep").
  for (const char* same : {"sheep", "skis", "scissors", "deer", "fish", "series", "species",
                           "glasses", "people", "pants", "shorts"}) {
    if (lower == same) return noun;
  }
  struct Irregular {
    const char* singular;
    const char* plural;
  };
  for (const Irregular& irregular :
       {Irregular{"mouse", "mice"}, Irregular{"knife", "knives"}, Irregular{"child", "children"},
        Irregular{"man", "men"}, Irregular{"woman", "women"}, Irregular{"foot", "feet"},
        Irregular{"tooth", "teeth"}, Irregular{"leaf", "leaves"}}) {
    if (lower == irregular.singular) {
      // Keeps a capital first letter ("Mouse" -> "Mice").
      std::string plural = irregular.plural;
      if (std::isupper(static_cast<unsigned char>(word[0]))) {
        plural[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(plural[0])));
      }
      return head + plural;
    }
  }
  auto ends_with = [&](std::string_view suffix) {
    return lower.size() >= suffix.size() &&
           lower.compare(lower.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with("s") || ends_with("x") || ends_with("z") || ends_with("ch") || ends_with("sh")) {
    return noun + "es";
  }
  const bool consonant_y =
      lower.size() >= 2 && lower.back() == 'y' &&
      std::string_view("aeiou").find(lower[lower.size() - 2]) == std::string_view::npos;
  if (consonant_y) return noun.substr(0, noun.size() - 1) + "ies";
  return noun + "s";
}

// "1 person", "0 persons", "4 persons".
inline std::string CountOf(long count, const std::string& noun) {
  return std::to_string(count) + " " + (count == 1 ? noun : Plural(noun));
}

}  // namespace cvdeploy::cli
