// SPDX-License-Identifier: Apache-2.0
// The RBAC policy: validation errors (one line naming the entry), the Authorize table of the
// built-in roles, model scopes (role and API key), MFA, bindings, and hot reload through
// PolicyStore (a valid file applied, an invalid one refused with the old policy kept).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cvdeploy/error.h"
#include "cvdeploy/security/policy.h"
#include "cvdeploy/security/policy_store.h"

namespace cvdeploy::security {
namespace {

using G = RouteGroup;

Identity Who(std::vector<std::string> roles, std::vector<std::string> models = {},
             bool mfa = false) {
  Identity id;
  id.name = "t";
  id.roles = std::move(roles);
  id.models = std::move(models);
  id.mfa = mfa;
  return id;
}

// The message of the error Parse throws for `text` ("" when it parses).
std::string ParseError(const std::string& text) {
  try {
    Policy::Parse(text, "p.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    return e.what();
  }
  return "";
}

TEST(SecurityPolicy, BuiltinRoleTable) {
  const Policy p = Policy::Default();
  // role -> groups it grants, in kAllRouteGroups order:
  // health, metadata, infer, metrics, repository.read, repository.write, admin, monitor
  const std::map<std::string, std::array<bool, kAllRouteGroups.size()>> table = {
      {"viewer", {true, true, false, true, false, false, false, true}},
      {"inferencer", {true, true, true, false, false, false, false, false}},
      {"operator", {true, true, true, true, true, true, false, true}},
      {"admin", {true, true, true, true, true, true, true, true}},
  };
  for (const auto& [role, grants] : table) {
    for (size_t g = 0; g < kAllRouteGroups.size(); ++g) {
      // admin requires MFA: with it, its grants; without it, nothing at all.
      const Decision d = p.Authorize(Who({role}, {}, true), kAllRouteGroups[g], "m");
      EXPECT_EQ(d.allowed, grants[g]) << role << " " << RouteGroupName(kAllRouteGroups[g]);
      if (!grants[g]) {
        EXPECT_EQ(d.reason, "role " + role + " lacks " + RouteGroupName(kAllRouteGroups[g]));
      }
      const Decision no_mfa = p.Authorize(Who({role}), kAllRouteGroups[g], "m");
      EXPECT_EQ(no_mfa.allowed, grants[g] && role != "admin") << role;
    }
  }
  EXPECT_EQ(p.public_routes(), (std::vector<std::string>{"/v2/health/live", "/v2/health/ready"}));
}

TEST(SecurityPolicy, DenyReasons) {
  const Policy p = Policy::Default();
  EXPECT_EQ(p.Authorize(Who({"admin"}), G::kHealth, "").reason,
            "role admin requires a second factor (mfa required)");
  EXPECT_EQ(p.Authorize(Who({}), G::kHealth, "").reason, "identity has no role (needs health)");
  EXPECT_EQ(p.Authorize(Who({"nosuchrole"}), G::kHealth, "").reason,
            "role nosuchrole lacks health");
  EXPECT_EQ(p.Authorize(Who({"viewer", "nosuch"}), G::kInfer, "m").reason,
            "roles viewer, nosuch lack infer");
  EXPECT_EQ(p.Authorize(Who({"inferencer"}, {"yolo*"}), G::kInfer, "resnet").reason,
            "model out of scope for this identity");
}

TEST(SecurityPolicy, ApiKeyModelListRestrictsScope) {
  const Policy p = Policy::Default();
  EXPECT_TRUE(p.Authorize(Who({"inferencer"}, {"yolo*", "det"}), G::kInfer, "yolo11n").allowed);
  EXPECT_TRUE(p.Authorize(Who({"inferencer"}, {"yolo*", "det"}), G::kInfer, "det").allowed);
  EXPECT_FALSE(p.Authorize(Who({"inferencer"}, {"yolo*", "det"}), G::kInfer, "detx").allowed);
  // Routes about no model are not scoped.
  EXPECT_TRUE(p.Authorize(Who({"inferencer"}, {"yolo*"}), G::kMetadata, "").allowed);
}

TEST(SecurityPolicy, FileRolesScopesRateLimitsAndBindings) {
  const Policy p = Policy::Parse(R"({
    "version": 1,
    "public_routes": ["/v2/health/live"],
    "roles": {
      "det-only": {"permissions": ["infer", "metadata"], "models": ["det-*"],
                   "rate_limit": {"requests_per_second": 5, "burst": 10}},
      "viewer": {"permissions": ["health"]},
      "secure": {"permissions": ["*"], "mfa": true}
    },
    "bindings": {
      "certificates": [{"subject": "CN=bot,O=x", "roles": ["det-only"]},
                       {"san": "DNS:ops.example", "roles": ["operator"]}],
      "jwt_claims": {"ml-team": ["det-only", "viewer"]}
    }
  })",
                                 "p.json");
  EXPECT_TRUE(p.IsPublicRoute("/v2/health/live"));
  EXPECT_FALSE(p.IsPublicRoute("/v2/health/ready"));
  const Decision d = p.Authorize(Who({"det-only"}), G::kInfer, "det-a");
  ASSERT_TRUE(d.allowed);
  ASSERT_TRUE(d.rate_limit);
  EXPECT_EQ(d.rate_limit->requests_per_second, 5);
  EXPECT_EQ(d.rate_limit->burst, 10);
  EXPECT_FALSE(p.Authorize(Who({"det-only"}), G::kInfer, "cls").allowed);
  // The redefined viewer replaces the built-in one.
  EXPECT_FALSE(p.Authorize(Who({"viewer"}), G::kMetrics, "").allowed);
  EXPECT_TRUE(p.Authorize(Who({"operator"}), G::kRepositoryWrite, "x").allowed);
  EXPECT_FALSE(p.Authorize(Who({"secure"}), G::kAdmin, "").allowed);
  EXPECT_TRUE(p.Authorize(Who({"secure"}, {}, true), G::kAdmin, "").allowed);
  EXPECT_EQ(p.RolesForCertificate("CN=bot,O=x", {}), (std::vector<std::string>{"det-only"}));
  EXPECT_EQ(p.RolesForCertificate("CN=other", {"DNS:ops.example"}),
            (std::vector<std::string>{"operator"}));
  EXPECT_TRUE(p.RolesForCertificate("CN=bot", {"DNS:x"}).empty());
  // Bound claim values plus role names used directly (jwt_role_names_direct defaults true).
  EXPECT_EQ(p.RolesForClaims({"ml-team", "admin", "unknown"}),
            (std::vector<std::string>{"admin", "det-only", "viewer"}));
  const Policy strict = Policy::Parse(R"({"jwt_role_names_direct": false, "bindings": {"jwt_claims":
                       {"g": ["viewer"]}}})",
                                      "s.json");
  EXPECT_EQ(strict.RolesForClaims({"admin", "g"}), (std::vector<std::string>{"viewer"}));
}

TEST(SecurityPolicy, MostGenerousRateLimitWins) {
  const Policy p = Policy::Parse(R"({"roles": {
      "a": {"permissions": ["infer"], "rate_limit": {"requests_per_second": 1}},
      "b": {"permissions": ["infer"], "rate_limit": {"requests_per_second": 9}},
      "c": {"permissions": ["infer"]}}})",
                                 "p.json");
  EXPECT_EQ(p.Authorize(Who({"a", "b"}), G::kInfer, "m").rate_limit->requests_per_second, 9);
  EXPECT_FALSE(p.Authorize(Who({"a", "c"}), G::kInfer, "m").rate_limit);  // c: unlimited
}

TEST(SecurityPolicy, ValidationErrorsNameTheEntry) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "p.json: not valid JSON"},
      {"[]", "p.json: a policy is a JSON object"},
      {R"({"rolez": {}})", "p.json: unknown key 'rolez'"},
      {R"({"version": 2})", "p.json: version: must be 1"},
      {R"({"roles": {"x": {"permissions": ["infr"]}}})",
       "p.json: roles.x.permissions[0]: unknown route group 'infr' (known: health, metadata, "
       "infer, metrics, repository.read, repository.write, admin, monitor, *)"},
      {R"({"roles": {"x": {"permissions": "infer"}}})",
       "p.json: roles.x.permissions: must be a list of strings"},
      {R"({"roles": {"x": {"permissions": [1]}}})",
       "p.json: roles.x.permissions[0]: must be a string"},
      {R"({"roles": {"x": {}}})", "p.json: roles.x: missing 'permissions'"},
      {R"({"roles": {"x y": {"permissions": []}}})", "p.json: roles.x y: a role name is"},
      {R"({"roles": {"x": {"permissions": [], "models": ["[abc"]}}})",
       "p.json: roles.x.models[0]: bad model pattern"},
      {R"({"roles": {"x": {"permissions": [], "models": [""]}}})",
       "p.json: roles.x.models[0]: bad model pattern"},
      {R"({"roles": {"x": {"permissions": [], "mfa": "yes"}}})",
       "p.json: roles.x.mfa: must be true or false"},
      {R"({"roles": {"x": {"permissions": [], "extra": 1}}})",
       "p.json: roles.x: unknown key 'extra'"},
      {R"({"roles": {"x": {"permissions": [], "rate_limit": {"requests_per_second": 0}}}})",
       "p.json: roles.x.rate_limit.requests_per_second: must be a number in (0, 1e6]"},
      {R"({"roles": {"x": {"permissions": [], "rate_limit": {"requests_per_second": 1,
          "burst": 0.5}}}})",
       "p.json: roles.x.rate_limit.burst: must be a number in [1, 1e7]"},
      {R"({"public_routes": ["v2/health/live"]})", "p.json: public_routes[0]: a public route"},
      {R"({"public_routes": "/v2"})", "p.json: public_routes: must be a list of strings"},
      {R"({"bindings": {"certificates": [{"subject": "CN=a", "roles": ["nope"]}]}})",
       "p.json: bindings.certificates[0].roles: unknown role 'nope'"},
      {R"({"bindings": {"certificates": [{"subject": "CN=a", "san": "DNS:a", "roles": []}]}})",
       "p.json: bindings.certificates[0]: give exactly one of 'subject' or 'san'"},
      {R"({"bindings": {"certificates": [{"subject": "CN=a", "roles": []}]}})",
       "p.json: bindings.certificates[0].roles: binds no role"},
      {R"({"bindings": {"jwt_claims": {"g": ["ghost"]}}})",
       "p.json: bindings.jwt_claims.g: unknown role 'ghost'"},
      {R"({"bindings": {"groups": {}}})", "p.json: bindings: unknown key 'groups'"},
      {R"({"jwt_role_names_direct": 1})", "p.json: jwt_role_names_direct: must be true or false"},
      // Names from the file are quoted with control bytes escaped: the message stays one line
      // (found by fuzz_auth_policy).
      {"{\"a\\nb\": 1}", "p.json: unknown key 'a\\x0ab'"},
      {"{\"roles\": {\"r\": {\"permissions\": [\"x\\u0001\"]}}}",
       "p.json: roles.r.permissions[0]: unknown route group 'x\\x01'"},
  };
  for (const auto& [text, expected] : cases) {
    const std::string message = ParseError(text);
    EXPECT_EQ(message.substr(0, expected.size()), expected) << text << "\n -> " << message;
  }
  // A binding may name a role the same file defines.
  EXPECT_EQ(ParseError(R"({"roles": {"r": {"permissions": ["infer"]}},
                           "bindings": {"jwt_claims": {"g": ["r"]}}})"),
            "");
}

class PolicyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("policy_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "policy.json").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // Writes atomically (as an editor or a config manager would) with mode 0600.
  void Write(const std::string& text, mode_t mode = 0600) {
    const std::string tmp = path_ + ".tmp";
    std::ofstream(tmp) << text;
    ::chmod(tmp.c_str(), mode);
    std::filesystem::rename(tmp, path_);
  }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(PolicyFile, RefusesPermissionsWiderThan0600) {
  Write(R"({})", 0644);
  try {
    Policy::LoadFile(path_);
    FAIL() << "a 0644 policy file was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied) << e.what();
  }
  Write(R"({})", 0600);
  EXPECT_NO_THROW(Policy::LoadFile(path_));
}

TEST_F(PolicyFile, HotReloadAppliesValidAndKeepsOldOnInvalid) {
  Write(R"({"roles": {"r": {"permissions": ["health"]}}})");
  std::vector<std::pair<bool, std::string>> reports;
  PolicyStore store(path_, std::chrono::hours(1), [&](bool ok, const std::string& message) {
    reports.emplace_back(ok, message);
  });
  auto first = store.Current();
  EXPECT_FALSE(first->Authorize(Who({"r"}), G::kInfer, "m").allowed);
  EXPECT_FALSE(store.Reload());  // unchanged file: nothing to do, nothing reported
  EXPECT_TRUE(reports.empty());

  Write(R"({"roles": {"r": {"permissions": ["health", "infer"]}}})");
  EXPECT_TRUE(store.Reload());
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].first);
  EXPECT_TRUE(store.Current()->Authorize(Who({"r"}), G::kInfer, "m").allowed);
  // A reader holding the old policy keeps a valid object.
  EXPECT_FALSE(first->Authorize(Who({"r"}), G::kInfer, "m").allowed);

  Write(R"({"roles": {"r": {"permissions": ["infer", "bogus"]}}})");
  EXPECT_FALSE(store.Reload());
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_FALSE(reports[1].first);
  EXPECT_NE(reports[1].second.find("unknown route group 'bogus'"), std::string::npos)
      << reports[1].second;
  EXPECT_NE(reports[1].second.find("keeping the previous policy"), std::string::npos);
  EXPECT_TRUE(store.Current()->Authorize(Who({"r"}), G::kInfer, "m").allowed);

  // Loosened permissions are refused like a bad document.
  Write(R"({"roles": {"r": {"permissions": ["health"]}}})", 0644);
  EXPECT_FALSE(store.Reload());
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_FALSE(reports[2].first);
  EXPECT_TRUE(store.Current()->Authorize(Who({"r"}), G::kInfer, "m").allowed);
}

TEST_F(PolicyFile, CurrentChecksTheFileAfterTheInterval) {
  Write(R"({"roles": {"r": {"permissions": ["health"]}}})");
  PolicyStore store(path_, std::chrono::milliseconds(0));
  EXPECT_FALSE(store.Current()->Authorize(Who({"r"}), G::kInfer, "m").allowed);
  Write(R"({"roles": {"r": {"permissions": ["infer"]}}})");
  EXPECT_TRUE(store.Current()->Authorize(Who({"r"}), G::kInfer, "m").allowed);
}

TEST_F(PolicyFile, MissingOrInvalidAtStartThrows) {
  EXPECT_THROW(PolicyStore(path_, std::chrono::seconds(1)), Error);
  Write("{");
  EXPECT_THROW(PolicyStore(path_, std::chrono::seconds(1)), Error);
}

}  // namespace
}  // namespace cvdeploy::security
