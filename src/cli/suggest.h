// SPDX-License-Identifier: Apache-2.0
// "Did you mean ...": the known words (subcommands, flags, class names) closest to a mistyped
// one. Pure functions without state or I/O, header-only so that unit tests check them without
// the CLI binary; thread-safe.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace cvdeploy::cli {

// Levenshtein distance (insert, delete, substitute: 1 each), ASCII letters compared without
// case.
inline size_t EditDistance(std::string_view a, std::string_view b) {
  auto lower = [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  };
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      const size_t substitute = diagonal + (lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The candidates `word` most likely meant, best first, at most `max`: those within edit
// distance 2 (and closer than the word's own length, so that "x" does not match "iou"), then
// those that `word` is a prefix of or that are a prefix of `word` (3 characters at least).
// Only the best-scoring candidates are returned (ties in candidate order); empty when none is
// close. An exact match (case ignored) is the only answer.
inline std::vector<std::string> Suggest(std::string_view word,
                                        const std::vector<std::string>& candidates,
                                        size_t max = 3) {
  auto starts_with = [](std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && EditDistance(s.substr(0, prefix.size()), prefix) == 0;
  };
  constexpr size_t kNoMatch = 100;
  size_t best = kNoMatch;
  std::vector<std::pair<size_t, std::string>> scored;
  for (const std::string& candidate : candidates) {
    const size_t d = EditDistance(word, candidate);
    size_t score = kNoMatch;
    if (d <= 2 && d < word.size()) {
      score = d;
    } else if ((word.size() >= 3 && starts_with(candidate, word)) ||
               (candidate.size() >= 3 && starts_with(word, candidate))) {
      score = 3;
    }
    if (score == kNoMatch) continue;
    best = std::min(best, score);
    scored.emplace_back(score, candidate);
  }
  std::vector<std::string> out;
  for (const auto& [score, candidate] : scored) {
    if (score != best) continue;
    if (std::find(out.begin(), out.end(), candidate) != out.end()) continue;
    if (out.size() < max) out.push_back(candidate);
  }
  return out;
}

// "A", "A or B", "A, B or C": each word wrapped in `quote` ("'" for names, "" for flags).
inline std::string JoinAlternatives(const std::vector<std::string>& words,
                                    const std::string& quote = "'") {
  std::string text;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) text += i + 1 == words.size() ? " or " : ", ";
    text += quote + words[i] + quote;
  }
  return text;
}

// " (did you mean 'A'?)" for the best suggestions of `word`, or "" when none is close.
inline std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates,
                              const std::string& quote = "'") {
  const std::vector<std::string> best = Suggest(word, candidates);
  if (best.empty()) return "";
  return " (did you mean " + JoinAlternatives(best, quote) + "?)";
}

}  // namespace cvdeploy::cli
