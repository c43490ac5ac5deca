// SPDX-License-Identifier: Apache-2.0
// Policy::Parse: the JSON policy document (format in docs/security.md, "Authorization: roles
// and the policy file"). Strict: unknown keys, wrong types, unknown route groups, bad model
// patterns and bindings to undefined roles are refused with one line naming the entry.
#include <fnmatch.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cvdeploy/error.h"
#include "cvdeploy/security/policy.h"

namespace cvdeploy::security {

namespace {

using nlohmann::json;

// Errors name the file and the entry: "policy.json: roles.ops.permissions[2]: unknown route
// group 'infr' (known: ...)".
[[noreturn]] void Fail(const std::string& source, const std::string& where,
                       const std::string& reason) {
  throw Error(ErrorCode::kBadInput, source + ": " + (where.empty() ? "" : where + ": ") + reason);
}

uint32_t Bit(RouteGroup g) { return 1u << static_cast<int>(g); }

// A name or value from the file as an error quotes it: control bytes as \xNN (the message
// stays one line), at most 64 bytes.
std::string Quote(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      static const char* kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > 64) out += "...";
  return out;
}

std::string Known() {
  std::string out;
  for (RouteGroup g : kAllRouteGroups)
    out += (out.empty() ? "" : ", ") + std::string(RouteGroupName(g));
  return out;
}

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

// A model name pattern: non-empty, printable, at most 128 characters, balanced brackets.
bool ValidPattern(const std::string& p) {
  if (p.empty() || p.size() > 128) return false;
  int depth = 0;
  for (char c : p) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '/') return false;
    if (c == '[') {
      if (depth) return false;
      depth = 1;
    } else if (c == ']') {
      depth = 0;
    }
  }
  return depth == 0;
}

void CheckKeys(const json& object, std::initializer_list<const char*> allowed,
               const std::string& source, const std::string& where) {
  for (const auto& item : object.items()) {
    const std::string& key = item.key();
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      Fail(source, where, "unknown key '" + Quote(key) + "' (known: " + list + ")");
    }
  }
}

std::vector<std::string> Strings(const json& value, const std::string& source,
                                 const std::string& where) {
  if (!value.is_array()) Fail(source, where, "must be a list of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_string()) {
      Fail(source, where + "[" + std::to_string(i) + "]", "must be a string");
    }
    out.push_back(value[i].get<std::string>());
  }
  return out;
}

bool Bool(const json& value, const std::string& source, const std::string& where) {
  if (!value.is_boolean()) Fail(source, where, "must be true or false");
  return value.get<bool>();
}

RateLimit ParseRateLimit(const json& value, const std::string& source, const std::string& where) {
  if (!value.is_object()) Fail(source, where, "must be an object {requests_per_second, burst}");
  CheckKeys(value, {"requests_per_second", "burst"}, source, where);
  RateLimit r;
  if (!value.contains("requests_per_second") || !value["requests_per_second"].is_number() ||
      !(value["requests_per_second"].get<double>() > 0) ||
      value["requests_per_second"].get<double>() > 1e6) {
    Fail(source, where + ".requests_per_second", "must be a number in (0, 1e6]");
  }
  r.requests_per_second = value["requests_per_second"].get<double>();
  r.burst = std::max(1.0, r.requests_per_second);
  if (value.contains("burst")) {
    if (!value["burst"].is_number() || !(value["burst"].get<double>() >= 1) ||
        value["burst"].get<double>() > 1e7) {
      Fail(source, where + ".burst", "must be a number in [1, 1e7]");
    }
    r.burst = value["burst"].get<double>();
  }
  return r;
}

Role ParseRole(const std::string& name, const json& value, const std::string& source) {
  const std::string where = "roles." + Quote(name);
  if (!ValidName(name)) Fail(source, where, "a role name is 1-64 of [A-Za-z0-9_.-]");
  if (!value.is_object()) Fail(source, where, "must be an object");
  CheckKeys(value, {"permissions", "models", "mfa", "rate_limit", "description"}, source, where);
  Role role;
  role.name = name;
  if (!value.contains("permissions")) Fail(source, where, "missing 'permissions'");
  const auto perms = Strings(value["permissions"], source, where + ".permissions");
  for (size_t i = 0; i < perms.size(); ++i) {
    if (perms[i] == "*") {
      for (RouteGroup g : kAllRouteGroups) role.permissions |= Bit(g);
      continue;
    }
    auto group = ParseRouteGroup(perms[i]);
    if (!group) {
      Fail(source, where + ".permissions[" + std::to_string(i) + "]",
           "unknown route group '" + Quote(perms[i]) + "' (known: " + Known() + ", *)");
    }
    role.permissions |= Bit(*group);
  }
  if (value.contains("models")) {
    role.models = Strings(value["models"], source, where + ".models");
    for (size_t i = 0; i < role.models.size(); ++i) {
      if (!ValidPattern(role.models[i])) {
        Fail(source, where + ".models[" + std::to_string(i) + "]",
             "bad model pattern (1-128 printable characters without '/', balanced [])");
      }
    }
  }
  if (value.contains("mfa")) role.mfa = Bool(value["mfa"], source, where + ".mfa");
  if (value.contains("description") && !value["description"].is_string()) {
    Fail(source, where + ".description", "must be a string");
  }
  if (value.contains("rate_limit")) {
    role.rate_limit = ParseRateLimit(value["rate_limit"], source, where + ".rate_limit");
  }
  return role;
}

// Every role a binding names must exist once the file's roles are merged in.
void CheckRoles(const std::vector<std::string>& roles, const std::map<std::string, Role>& defined,
                const std::string& source, const std::string& where) {
  if (roles.empty()) Fail(source, where, "binds no role");
  for (const auto& r : roles) {
    if (!defined.count(r)) Fail(source, where, "unknown role '" + Quote(r) + "'");
  }
}

}  // namespace

Policy Policy::Parse(std::string_view text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    std::string what = e.what();
    Fail(source, "", "not valid JSON (" + what.substr(0, 160) + ")");
  }
  if (!doc.is_object()) Fail(source, "", "a policy is a JSON object");
  CheckKeys(doc,
            {"version", "public_routes", "roles", "bindings", "default_rate_limit",
             "jwt_role_names_direct", "certificate_counts_as_mfa"},
            source, "");
  if (doc.contains("version") && doc["version"] != 1) Fail(source, "version", "must be 1");
  Policy p = Default();
  if (doc.contains("public_routes")) {
    p.public_routes_ = Strings(doc["public_routes"], source, "public_routes");
    for (size_t i = 0; i < p.public_routes_.size(); ++i) {
      const auto& r = p.public_routes_[i];
      if (r.empty() || r[0] != '/' || r.find_first_of("?# ") != std::string::npos) {
        Fail(source, "public_routes[" + std::to_string(i) + "]",
             "a public route is an exact path starting with '/' (no query)");
      }
    }
  }
  if (doc.contains("roles")) {
    if (!doc["roles"].is_object()) Fail(source, "roles", "must be an object of role names");
    for (const auto& item : doc["roles"].items()) {
      p.roles_[item.key()] = ParseRole(item.key(), item.value(), source);
    }
  }
  if (doc.contains("default_rate_limit")) {
    p.default_rate_limit_ = ParseRateLimit(doc["default_rate_limit"], source, "default_rate_limit");
  }
  for (const char* flag : {"jwt_role_names_direct", "certificate_counts_as_mfa"}) {
    if (!doc.contains(flag)) continue;
    if (!doc[flag].is_boolean()) Fail(source, flag, "must be true or false");
    (std::string(flag) == "jwt_role_names_direct" ? p.jwt_direct_ : p.certificate_is_mfa_) =
        doc[flag].get<bool>();
  }
  if (!doc.contains("bindings")) return p;
  const json& b = doc["bindings"];
  if (!b.is_object()) Fail(source, "bindings", "must be an object");
  CheckKeys(b, {"certificates", "jwt_claims"}, source, "bindings");
  if (b.contains("certificates")) {
    if (!b["certificates"].is_array()) Fail(source, "bindings.certificates", "must be a list");
    for (size_t i = 0; i < b["certificates"].size(); ++i) {
      const json& c = b["certificates"][i];
      const std::string where = "bindings.certificates[" + std::to_string(i) + "]";
      if (!c.is_object()) Fail(source, where, "must be an object {subject|san, roles}");
      CheckKeys(c, {"subject", "san", "roles"}, source, where);
      if (c.contains("subject") == c.contains("san")) {
        Fail(source, where, "give exactly one of 'subject' or 'san'");
      }
      const char* key = c.contains("subject") ? "subject" : "san";
      if (!c[key].is_string() || c[key].get<std::string>().empty()) {
        Fail(source, where + "." + key, "must be a non-empty string");
      }
      if (!c.contains("roles")) Fail(source, where, "missing 'roles'");
      auto roles = Strings(c["roles"], source, where + ".roles");
      CheckRoles(roles, p.roles_, source, where + ".roles");
      auto& target = std::string(key) == "subject" ? p.cert_subjects_ : p.cert_sans_;
      auto& list = target[c[key].get<std::string>()];
      list.insert(list.end(), roles.begin(), roles.end());
    }
  }
  if (b.contains("jwt_claims")) {
    if (!b["jwt_claims"].is_object()) {
      Fail(source, "bindings.jwt_claims", "must be an object {claim value: [roles]}");
    }
    for (const auto& item : b["jwt_claims"].items()) {
      const std::string where = "bindings.jwt_claims." + Quote(item.key());
      auto roles = Strings(item.value(), source, where);
      CheckRoles(roles, p.roles_, source, where);
      p.jwt_claims_[item.key()] = roles;
    }
  }
  return p;
}

}  // namespace cvdeploy::security
