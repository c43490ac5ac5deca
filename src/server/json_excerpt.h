// SPDX-License-Identifier: Apache-2.0
// A JSON value quoted in an error message ("data[3] = \"abc\" is not a number").
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace cvdeploy::server {

// At most `max_length` characters of `value`'s JSON text, followed by "..." when cut. Scalars
// print as JSON (a long string by its prefix); arrays and objects as a prefix of their JSON
// text. Iterative and bounded: it visits no more of the value than it prints, so a huge or
// deeply nested value costs nothing and cannot overflow the stack (unlike dump()).
std::string JsonExcerpt(const nlohmann::json& value, size_t max_length = 40);

}  // namespace cvdeploy::server
