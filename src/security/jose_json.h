// SPDX-License-Identifier: Apache-2.0
// Strict JSON for the JOSE documents the security module reads from outside (JWT headers and
// claims, JWKS files): nesting depth bounded before any tree is walked recursively, and
// duplicate member names refused (RFC 7515 section 4: a JWS parser must reject them or use the
// last one; refusing is the safe choice, since two parsers taking different duplicates is a
// classic signature-bypass vector). Thread-safe; never throws.
#pragma once

#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace cvdeploy::security {

// JWT headers and claims nest 2-3 levels (Keycloak's realm_access.roles); a JWKS 3.
inline constexpr int kMaxJoseJsonDepth = 16;

// The parsed document, or nullopt when `text` is not valid JSON, nests deeper than
// kMaxJoseJsonDepth or has an object with a repeated member name.
std::optional<nlohmann::json> ParseJoseJson(std::string_view text);

}  // namespace cvdeploy::security
