// SPDX-License-Identifier: Apache-2.0
#include "model/yaml_names.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <utility>

#include "cvdeploy/error.h"

namespace cvdeploy::model {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// YAML comments start at a '#' that begins the line or follows a blank, outside quotes.
std::string_view StripComment(std::string_view line) {
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '#' && (i == 0 || IsSpace(line[i - 1]))) {
      return line.substr(0, i);
    }
  }
  return line;
}

std::string Unquote(std::string_view s) {
  s = Trim(s);
  if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front()) {
    s = s.substr(1, s.size() - 2);
  }
  return std::string(s);
}

// Splits on `sep` outside quotes.
std::vector<std::string_view> SplitTopLevel(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  char quote = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

struct Entry {
  std::optional<int> key;  // set for mapping entries
  std::string value;
};

// Largest class id accepted in a mapping: Assemble fills every id below it, so a key such as
// 2000000000 would otherwise allocate two billion names.
constexpr int kMaxClassId = (1 << 20) - 1;

// "3: traffic light" -> {3, "traffic light"}; nullopt when the key is not an integer.
// Throws Error(kBadInput) for an integer key outside [0, kMaxClassId].
std::optional<Entry> ParseMappingEntry(std::string_view s) {
  const size_t colon = s.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string key_text = Unquote(s.substr(0, colon));
  const bool digits = !key_text.empty() && std::all_of(key_text.begin(), key_text.end(),
                                                       [](char c) { return c >= '0' && c <= '9'; });
  int key = -1;
  const auto [end, ec] = std::from_chars(key_text.data(), key_text.data() + key_text.size(), key);
  if (digits && (ec != std::errc() || key > kMaxClassId)) {
    throw BadInput("names: class id " + key_text + " out of range (at most " +
                   std::to_string(kMaxClassId) + ")");
  }
  if (ec != std::errc() || end != key_text.data() + key_text.size() || key < 0) {
    return std::nullopt;
  }
  return Entry{key, Unquote(s.substr(colon + 1))};
}

std::vector<std::string> Assemble(const std::vector<Entry>& entries) {
  std::vector<std::string> names;
  for (const Entry& e : entries) {
    if (!e.key) {
      names.push_back(e.value);
      continue;
    }
    const size_t index = static_cast<size_t>(*e.key);
    while (names.size() <= index) names.push_back(std::to_string(names.size()));
    names[index] = e.value;
  }
  return names;
}

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find('\n', start), text.size());
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace

std::vector<std::string> ParseYamlNames(std::string_view text) {
  const std::vector<std::string_view> lines = SplitLines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = StripComment(lines[i]);
    if (line.substr(0, 5) != "names") continue;
    const std::string_view after_key = Trim(line.substr(5));
    if (after_key.empty() || after_key.front() != ':') continue;
    std::string rest(Trim(after_key.substr(1)));

    std::vector<Entry> entries;
    if (!rest.empty() && (rest.front() == '[' || rest.front() == '{')) {
      // Flow style may wrap over lines: gather until the closing bracket.
      const char close = rest.front() == '[' ? ']' : '}';
      for (size_t j = i + 1; rest.find(close) == std::string::npos && j < lines.size(); ++j) {
        rest += ' ';
        rest += StripComment(lines[j]);
      }
      std::string_view body = std::string_view(rest).substr(1);
      body = body.substr(0, std::min(body.rfind(close), body.size()));
      for (std::string_view part : SplitTopLevel(body, ',')) {
        if (Trim(part).empty()) continue;
        if (close == ']') {
          entries.push_back({std::nullopt, Unquote(part)});
        } else if (auto entry = ParseMappingEntry(part)) {
          entries.push_back(std::move(*entry));
        }
      }
      return Assemble(entries);
    }
    if (!rest.empty()) return {};  // a scalar: not a names list we understand

    // Block style: indented lines (or "- " at column 0, which YAML allows for sequences).
    for (size_t j = i + 1; j < lines.size(); ++j) {
      const std::string_view raw = lines[j];
      const std::string_view item = Trim(StripComment(raw));
      if (item.empty()) continue;
      if (!IsSpace(raw.front()) && raw.front() != '-') break;
      if (item.front() == '-') {
        entries.push_back({std::nullopt, Unquote(item.substr(1))});
      } else if (auto entry = ParseMappingEntry(item)) {
        entries.push_back(std::move(*entry));
      }
    }
    return Assemble(entries);
  }
  return {};
}

}  // namespace cvdeploy::model

namespace cvdeploy::model {
namespace {

constexpr size_t kMaxSplitEntries = 4096;

bool IsNull(std::string_view value) { return value.empty() || value == "~" || value == "null"; }

// A top-level "key: value" line (no indentation, not a list item): {key, value}.
std::optional<std::pair<std::string, std::string_view>> TopLevelKey(std::string_view raw) {
  if (raw.empty() || IsSpace(raw.front()) || raw.front() == '-') return std::nullopt;
  const std::string_view line = StripComment(raw);
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  return std::make_pair(Unquote(line.substr(0, colon)), Trim(line.substr(colon + 1)));
}

// The entries of the split whose value starts on lines[i] as `value`.
std::vector<std::string> SplitEntries(const std::string& key, std::string_view value,
                                      const std::vector<std::string_view>& lines, size_t i) {
  std::vector<std::string> entries;
  auto add = [&](std::string_view item) {
    const std::string entry = Unquote(item);
    if (IsNull(entry)) return;
    if (entries.size() == kMaxSplitEntries) {
      throw BadInput(key + ": more than " + std::to_string(kMaxSplitEntries) + " entries");
    }
    entries.push_back(entry);
  };
  if (!value.empty() && value.front() == '[') {
    std::string rest(value);
    for (size_t j = i + 1; rest.find(']') == std::string::npos && j < lines.size(); ++j) {
      rest += ' ';
      rest += StripComment(lines[j]);
    }
    std::string_view body = std::string_view(rest).substr(1);
    body = body.substr(0, std::min(body.rfind(']'), body.size()));
    for (std::string_view part : SplitTopLevel(body, ',')) add(part);
    return entries;
  }
  if (!value.empty()) {
    add(value);
    return entries;
  }
  // Block list: "- entry" lines, indented or at column 0, until the next top-level key.
  for (size_t j = i + 1; j < lines.size(); ++j) {
    const std::string_view raw = lines[j];
    const std::string_view item = Trim(StripComment(raw));
    if (item.empty()) continue;
    if (!IsSpace(raw.front()) && raw.front() != '-') break;
    if (item.front() == '-') add(item.substr(1));
  }
  return entries;
}

int ParseClassCount(std::string_view value) {
  const std::string text = Unquote(value);
  int nc = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), nc);
  if (ec != std::errc() || end != text.data() + text.size() || nc < 1 || nc > kMaxClassId + 1) {
    throw BadInput("nc: '" + text + "' is not a class count in [1, " +
                   std::to_string(kMaxClassId + 1) + "]");
  }
  return nc;
}

}  // namespace

DatasetYaml ParseDatasetYaml(std::string_view text) {
  DatasetYaml yaml;
  yaml.names = ParseYamlNames(text);
  const std::vector<std::string_view> lines = SplitLines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto entry = TopLevelKey(lines[i]);
    if (!entry) continue;
    const std::string& key = entry->first;
    const std::string_view value = entry->second;
    if (key == "path") {
      const std::string path = Unquote(value);
      yaml.path = IsNull(path) ? "" : path;
    } else if (key == "train" || key == "val" || key == "test") {
      std::vector<std::string> entries = SplitEntries(key, value, lines, i);
      if (!entries.empty()) yaml.splits[key] = std::move(entries);
    } else if (key == "nc" && !IsNull(Unquote(value))) {
      yaml.nc = ParseClassCount(value);
    }
  }
  return yaml;
}

}  // namespace cvdeploy::model
