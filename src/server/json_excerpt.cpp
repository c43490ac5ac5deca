// SPDX-License-Identifier: Apache-2.0
#include "server/json_excerpt.h"

#include <iterator>
#include <utility>
#include <vector>

namespace cvdeploy::server {

using nlohmann::json;

std::string JsonExcerpt(const json& value, size_t max_length) {
  std::string text;
  auto scalar = [&text, max_length](const json& v) {
    if (v.is_string()) {
      // Only a prefix of a long string is serialized.
      const std::string& s = v.get_ref<const std::string&>();
      text += json(s.substr(0, max_length)).dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
      text += v.dump();  // a number, bool or null: not recursive
    }
  };
  // (container, next child index) pairs; keys of objects are printed before their values.
  std::vector<std::pair<const json*, size_t>> stack;
  if (!value.is_structured()) {
    scalar(value);
  } else {
    text += value.is_array() ? '[' : '{';
    stack.emplace_back(&value, 0);
  }
  while (!stack.empty() && text.size() <= max_length) {
    auto& [container, next] = stack.back();
    if (next == container->size()) {
      text += container->is_array() ? ']' : '}';
      stack.pop_back();
      continue;
    }
    if (next > 0) text += ',';
    const json* child = nullptr;
    if (container->is_array()) {
      child = &(*container)[next];
    } else {
      auto it = container->begin();
      std::advance(it, static_cast<std::ptrdiff_t>(next));  // objects in errors are small
      text += json(it.key()).dump(-1, ' ', false, json::error_handler_t::replace) + ":";
      child = &it.value();
    }
    ++next;
    if (child->is_structured()) {
      text += child->is_array() ? '[' : '{';
      stack.emplace_back(child, 0);  // invalidates container/next
    } else {
      scalar(*child);
    }
  }
  if (text.size() > max_length || !stack.empty()) text = text.substr(0, max_length) + "...";
  return text;
}

}  // namespace cvdeploy::server
