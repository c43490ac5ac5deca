// SPDX-License-Identifier: Apache-2.0
// The RBAC policy document (security::Policy::Parse, --auth-policy) on any bytes. Besides
// memory safety it checks the contracts the auth gate relies on: a refusal is
// cvdeploy::Error(kBadInput) with a one-line message; an accepted policy keeps the built-in
// route groups' names, answers Authorize for any identity without throwing (a denial always
// has a reason, an allowance a role that grants the group), and its summary is valid JSON.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "cvdeploy/error.h"
#include "cvdeploy/security/policy.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cvdeploy::security;
  const std::string_view text = cvdeploy::fuzz::AsText(data, size);
  Policy policy;
  try {
    policy = Policy::Parse(text, "policy.json");
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
    if (std::string(e.what()).find('\n') != std::string::npos) std::abort();
    return 0;
  }
  std::vector<std::string> names;
  for (const auto& [name, role] : policy.roles()) names.push_back(name);
  names.push_back("no-such-role");
  for (const auto& name : names) {
    for (bool mfa : {false, true}) {
      Identity id;
      id.name = "fuzz";
      id.roles = {name};
      id.mfa = mfa;
      for (RouteGroup g : kAllRouteGroups) {
        for (const char* model : {"", "yolo", "det-a", "[x]"}) {
          const Decision d = policy.Authorize(id, g, model);
          if (!d.allowed && d.reason.empty()) std::abort();
          if (d.allowed) {
            const Role* granting = policy.FindRole(d.role);
            if (granting == nullptr || !granting->Grants(g)) std::abort();
            if (granting->mfa && !mfa) std::abort();
          }
        }
      }
    }
  }
  (void)policy.RolesForClaims({"admin", "x"});
  (void)policy.RolesForCertificate("CN=x", {"DNS:x"});
  if (!nlohmann::json::accept(policy.SummaryJson())) std::abort();
  return 0;
}
