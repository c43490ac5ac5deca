// SPDX-License-Identifier: Apache-2.0
// The auth gate with fake authenticators and a fake audit writer: 401 (with the RFC 6750
// WWW-Authenticate forms, never echoing the credential), 403 with the policy's reason, 429
// with Retry-After, public routes, unknown paths, token routing by issuer, one audit entry per
// protected request, fail-closed (503) and fail-open auditing, and the login route.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <nlohmann/json.hpp>

#include "cvdeploy/security/crypto.h"
#include "server/auth_gate.h"

namespace cvdeploy::server {
namespace {

using security::AuthResult;
using security::Identity;

Identity Id(const std::string& name, std::vector<std::string> roles,
            security::AuthMethod method = security::AuthMethod::kApiKey, bool mfa = false) {
  Identity id;
  id.method = method;
  id.name = name;
  id.roles = std::move(roles);
  id.mfa = mfa;
  return id;
}

std::string Jwt(const std::string& iss) {
  // Built with += : GCC 12 reports a false -Wrestrict on "literal" + std::string.
  std::string claims = R"({"iss":")";
  claims += iss;
  claims += R"(","sub":"u"})";
  std::string token = security::Base64UrlEncode(R"({"alg":"EdDSA"})");
  token += ".";
  token += security::Base64UrlEncode(claims);
  token += ".c2ln";
  return token;
}

class AuthGateTest : public ::testing::Test {
 protected:
  void SetUp() override { Build(security::Policy::Default()); }

  void Build(security::Policy policy) {
    audit_ = std::make_unique<AuditSink>(
        [this](nlohmann::json event, std::function<void(const Status&)> done) {
          events_.push_back(event);
          done(audit_fails_ ? Status(ErrorCode::kUnavailable, "disk full") : Status());
        },
        registry_, fail_open_);
    Authenticators a;
    a.api_key = [](std::string_view token, auto) {
      if (token == "cvd_inferencer") return AuthResult::Success(Id("bot", {"inferencer"}));
      if (token == "cvd_viewer") return AuthResult::Success(Id("eye", {"viewer"}));
      if (token == "cvd_admin") return AuthResult::Success(Id("root", {"admin"}));
      if (token == "cvd_limited") return AuthResult::Success(Id("lim", {"limited"}));
      return AuthResult::Failure("revoked", "API key revoked");
    };
    a.session_issuer = "cvdeploy";
    a.session = [](std::string_view, auto) {
      return AuthResult::Success(Id("alice", {"admin"}, security::AuthMethod::kSession, true));
    };
    a.jwt = [](std::string_view, auto) {
      return AuthResult::Success(Id("idp-user", {"viewer"}, security::AuthMethod::kJwt));
    };
    a.login = [](const std::string& user, const std::string& password, const std::string& totp,
                 const std::string&, auto) {
      if (user == "locked") return AuthResult::Failure("locked_out", "too many failures", 30);
      if (password != "pw" || totp != "123456") {
        return AuthResult::Failure("bad_password", "invalid username, password or code");
      }
      return AuthResult::Success(Id(user, {"admin"}, security::AuthMethod::kSession, true));
    };
    a.issue = [](const Identity& id, auto) {
      std::string token = "tok.";
      token += id.name;
      token += ".sig";
      return Authenticators::Issued{token, 900};
    };
    gate_ = std::make_unique<AuthGate>(std::make_shared<security::PolicyStore>(std::move(policy)),
                                       a, *audit_, registry_);
  }

  HttpResponse Send(const std::string& method, const std::string& path,
                    const std::string& bearer = "", const std::string& body = "") {
    HttpRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    request.client = "127.0.0.1:5000";
    request.request_id = "rid";
    if (!bearer.empty()) request.headers["authorization"] = std::string("Bearer ").append(bearer);
    next_called_ = false;
    // Logins and API keys are checked on the gate's workers: the answer may come later.
    auto answer = std::make_shared<std::promise<HttpResponse>>();
    auto future = answer->get_future();
    Respond respond([answer](HttpResponse r) { answer->set_value(std::move(r)); });
    gate_->Handle(request, respond, [this](HttpRequest& r, Respond next_respond) {
      next_called_ = true;
      // What the handler may show: "-" when the gate set no rule, else per model "" and "yolo".
      rights_ = !r.may_read_metadata ? "-"
                                     : std::string(r.may_read_metadata("") ? "any" : "") + "," +
                                           (r.may_read_metadata("yolo") ? "yolo" : "");
      HttpResponse ok;
      ok.body = R"({"ok":true})";
      // Assigned as std::string: GCC 12 reports a false -Wrestrict on `= "literal"` here.
      ok.log.model = std::string(r.path == "/v2/models/m/infer" ? "m" : "");
      ok.log.version = std::string("1");
      if (r.path == "/nope") ok.status = 404;
      next_respond(std::move(ok));
    });
    if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      ADD_FAILURE() << "no answer to " << method << " " << path;
      return HttpResponse{};
    }
    return future.get();
  }

  std::string Header(const HttpResponse& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "";
  }

  Registry registry_;
  std::unique_ptr<AuditSink> audit_;
  std::unique_ptr<AuthGate> gate_;
  std::vector<nlohmann::json> events_;
  bool audit_fails_ = false, fail_open_ = false;
  std::atomic<bool> next_called_{false};
  std::string rights_;  // set by the handler of Send
};

// GET / answers a caller without credentials (unaudited, no metadata rights), checks a caller
// with one as any route (a bad one is 401, not anonymous) and hands on its metadata rights,
// model scope applied; the listings need the metadata group.
TEST_F(AuthGateTest, RootServesAnonymousCallersWithoutMetadataRights) {
  Build(security::Policy::Parse(
      R"({"roles": {"viewer": {"permissions": ["health", "metadata"]},
                    "inferencer": {"permissions": ["health", "infer"]},
                    "limited": {"permissions": ["health", "metadata"], "models": ["other*"]}}})",
      "p.json"));
  EXPECT_EQ(Send("GET", "/").status, 200);
  EXPECT_TRUE(next_called_);
  EXPECT_EQ(rights_, ",");
  EXPECT_TRUE(events_.empty());

  EXPECT_EQ(Send("GET", "/", "cvd_revoked").status, 401);
  EXPECT_FALSE(next_called_);
  EXPECT_EQ(Send("GET", "/", "cvd_viewer").status, 200);
  EXPECT_EQ(rights_, "any,yolo");
  EXPECT_EQ(Send("GET", "/", "cvd_inferencer").status, 200);
  EXPECT_EQ(rights_, ",");
  EXPECT_EQ(Send("GET", "/", "cvd_limited").status, 200);
  EXPECT_EQ(rights_, "any,");
  EXPECT_EQ(events_.size(), 4u);  // every call with a credential is audited

  for (const char* path : {"/v1/models", "/v2/models"}) {
    EXPECT_EQ(Send("GET", path).status, 401) << path;
    EXPECT_EQ(Send("GET", path, "cvd_inferencer").status, 403) << path;
    EXPECT_EQ(Send("GET", path, "cvd_limited").status, 200) << path;
    EXPECT_EQ(rights_, "any,") << path;
    EXPECT_EQ(Send("GET", path, "cvd_viewer").status, 200) << path;
    EXPECT_EQ(rights_, "any,yolo") << path;
  }
}

TEST_F(AuthGateTest, PublicRoutesPassWithoutCredentialsOrAudit) {
  EXPECT_EQ(Send("GET", "/v2/health/live").status, 200);
  EXPECT_TRUE(next_called_);
  EXPECT_EQ(Send("GET", "/v2/health/ready").status, 200);
  EXPECT_TRUE(events_.empty());
}

TEST_F(AuthGateTest, MissingCredentialIs401WithoutErrorCode) {
  const HttpResponse r = Send("POST", "/v2/models/m/infer");
  EXPECT_EQ(r.status, 401);
  EXPECT_FALSE(next_called_);
  EXPECT_EQ(Header(r, "WWW-Authenticate"), R"(Bearer realm="cvdeploy")");
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0]["action"], "auth.failure");
  EXPECT_EQ(events_[0]["reason"], "missing");
  EXPECT_EQ(events_[0]["status"], 401);
  EXPECT_NE(registry_.Render().find(R"(cvdeploy_auth_failures_total{reason="missing"} 1)"),
            std::string::npos);
}

TEST_F(AuthGateTest, BadTokenIs401InvalidTokenAndNeverEchoed) {
  const std::string secret = "cvd_THIS_IS_SECRET_revoked";
  const HttpResponse r = Send("GET", "/v2", secret);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Header(r, "WWW-Authenticate"), R"(Bearer realm="cvdeploy", error="invalid_token")");
  EXPECT_EQ(r.body.find("SECRET"), std::string::npos) << r.body;
  EXPECT_EQ(events_.at(0).dump().find("SECRET"), std::string::npos);
  EXPECT_EQ(events_[0]["reason"], "revoked");
  EXPECT_EQ(Send("GET", "/v2", "not a token!").status, 401);
  EXPECT_EQ(Send("GET", "/v2", "a.b").status, 401);
}

TEST_F(AuthGateTest, UnknownPathsNeedAuthenticationThenReachTheHandler) {
  EXPECT_EQ(Send("GET", "/nope").status, 401);
  EXPECT_FALSE(next_called_);
  EXPECT_EQ(Send("GET", "/nope", "cvd_viewer").status, 404);
  EXPECT_TRUE(next_called_);
}

TEST_F(AuthGateTest, DenialIs403WithReasonAndCounted) {
  const HttpResponse r = Send("GET", "/metrics", "cvd_inferencer");
  EXPECT_EQ(r.status, 403);
  EXPECT_FALSE(next_called_);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "role inferencer lacks metrics");
  EXPECT_EQ(r.identity, "api_key:bot");
  EXPECT_EQ(events_.at(0)["action"], "authz.denied");
  EXPECT_NE(registry_.Render().find(R"(cvdeploy_auth_denials_total{group="metrics"} 1)"),
            std::string::npos);
  // An admin API key has no second factor: refused everywhere.
  const HttpResponse admin = Send("GET", "/v2", "cvd_admin");
  EXPECT_EQ(admin.status, 403);
  EXPECT_NE(admin.body.find("mfa required"), std::string::npos);
}

TEST_F(AuthGateTest, AllowedRequestIsAuditedWithItsOutcome) {
  const HttpResponse r = Send("POST", "/v2/models/m/infer", "cvd_inferencer", "0123456789");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(next_called_);
  EXPECT_EQ(r.identity, "api_key:bot");
  ASSERT_EQ(events_.size(), 1u);
  const auto& e = events_[0];
  EXPECT_EQ(e["action"], "infer");
  EXPECT_EQ(e["identity"]["name"], "bot");
  EXPECT_EQ(e["model"], "m");
  EXPECT_EQ(e["version"], "1");
  EXPECT_EQ(e["status"], 200);
  EXPECT_EQ(e["bytes_in"], 10);
  EXPECT_EQ(e["bytes_out"], r.body.size());
  EXPECT_EQ(e["request_id"], "rid");
  EXPECT_NE(registry_.Render().find("cvdeploy_audit_entries_total 1"), std::string::npos);
}

TEST_F(AuthGateTest, AuditFailureFailsClosedWith503) {
  audit_fails_ = true;
  const HttpResponse r = Send("POST", "/v2/models/m/infer", "cvd_inferencer");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body.find("ok"), std::string::npos);
  EXPECT_NE(registry_.Render().find("cvdeploy_audit_write_failures_total 1"), std::string::npos);
}

TEST_F(AuthGateTest, AuditFailureWithFailOpenAnswers) {
  audit_fails_ = true;
  fail_open_ = true;
  Build(security::Policy::Default());
  EXPECT_EQ(Send("POST", "/v2/models/m/infer", "cvd_inferencer").status, 200);
}

TEST_F(AuthGateTest, JwtsAreRoutedByIssuer) {
  EXPECT_EQ(Send("GET", "/v1/auth/policy", Jwt("cvdeploy")).status, 200);  // session: admin+mfa
  EXPECT_EQ(events_.back()["identity"]["method"], "session");
  const HttpResponse idp = Send("GET", "/v1/auth/policy", Jwt("https://idp.example"));
  EXPECT_EQ(idp.status, 403);  // the IdP user is a viewer
  EXPECT_EQ(events_.back()["identity"]["method"], "jwt");
}

TEST_F(AuthGateTest, PolicyRouteShowsRolesToAdmins) {
  const HttpResponse r = Send("GET", "/v1/auth/policy", Jwt("cvdeploy"));
  ASSERT_EQ(r.status, 200);
  const auto doc = nlohmann::json::parse(r.body);
  EXPECT_EQ(doc["roles"]["admin"]["mfa"], true);
  EXPECT_FALSE(next_called_);
}

TEST_F(AuthGateTest, RateLimitIs429WithRetryAfter) {
  Build(security::Policy::Parse(
      R"({"roles": {"limited": {"permissions": ["metadata"],
          "rate_limit": {"requests_per_second": 0.01, "burst": 2}}}})",
      "p.json"));
  EXPECT_EQ(Send("GET", "/v2", "cvd_limited").status, 200);
  EXPECT_EQ(Send("GET", "/v2", "cvd_limited").status, 200);
  const HttpResponse r = Send("GET", "/v2", "cvd_limited");
  EXPECT_EQ(r.status, 429);
  const int retry = std::stoi(Header(r, "Retry-After"));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 100);
  EXPECT_EQ(events_.back()["action"], "rate_limited");
  EXPECT_NE(registry_.Render().find("cvdeploy_auth_rate_limited_total 1"), std::string::npos);
  // Another identity has its own bucket.
  EXPECT_EQ(Send("GET", "/v2", "cvd_viewer").status, 200);
}

TEST_F(AuthGateTest, LoginSuccessFailureLockoutAndMalformed) {
  const HttpResponse ok =
      Send("POST", "/v1/auth/login", "", R"({"username":"alice","password":"pw","totp":"123456"})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  const auto doc = nlohmann::json::parse(ok.body);
  EXPECT_EQ(doc["token"], "tok.alice.sig");
  EXPECT_EQ(doc["expires_in"], 900);
  EXPECT_EQ(events_.back()["action"], "login.success");
  EXPECT_EQ(events_.back().dump().find("tok.alice"), std::string::npos);
  EXPECT_EQ(events_.back().dump().find("123456"), std::string::npos);

  const HttpResponse bad = Send("POST", "/v1/auth/login", "",
                                R"({"username":"alice","password":"nope","totp":"123456"})");
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(bad.body.find("nope"), std::string::npos);
  EXPECT_EQ(events_.back()["action"], "login.failure");
  EXPECT_EQ(events_.back().dump().find("nope"), std::string::npos);

  const HttpResponse locked =
      Send("POST", "/v1/auth/login", "", R"({"username":"locked","password":"pw"})");
  EXPECT_EQ(locked.status, 429);
  EXPECT_EQ(Header(locked, "Retry-After"), "30");

  EXPECT_EQ(Send("POST", "/v1/auth/login", "", "{").status, 400);
  EXPECT_EQ(Send("POST", "/v1/auth/login", "", "[]").status, 400);
  EXPECT_EQ(Send("POST", "/v1/auth/login", "", R"({"username":"a"})").status, 400);
  EXPECT_EQ(Send("POST", "/v1/auth/login", "", R"({"username":1,"password":"x"})").status, 400);
  EXPECT_EQ(Send("POST", "/v1/auth/login", "", std::string(5000, ' ')).status, 413);
  EXPECT_EQ(Send("GET", "/v1/auth/login").status, 405);
}

TEST_F(AuthGateTest, LoginWithoutUsersIs404) {
  Authenticators none;
  gate_ = std::make_unique<AuthGate>(
      std::make_shared<security::PolicyStore>(security::Policy::Default()), none, *audit_,
      registry_);
  EXPECT_EQ(Send("POST", "/v1/auth/login", "", R"({"username":"a","password":"b"})").status, 404);
  EXPECT_EQ(Send("GET", "/v2", "cvd_viewer").status, 401);  // API keys not configured
}

TEST(AuthWorkers, QueueIsBoundedAndStopDropsQueuedTasks) {
  AuthWorkers workers(1, 2);
  std::promise<void> started, release;
  auto release_future = release.get_future().share();
  std::atomic<int> ran{0};
  ASSERT_TRUE(workers.Post([&] {
    started.set_value();
    release_future.wait();
    ++ran;
  }));
  started.get_future().wait();  // the one worker is busy; the queue is empty
  EXPECT_TRUE(workers.Post([&] { ++ran; }));
  EXPECT_TRUE(workers.Post([&] { ++ran; }));
  EXPECT_FALSE(workers.Post([&] { ++ran; }));  // full: refused, never run
  std::thread stopper([&] { workers.Stop(); });
  release.set_value();
  stopper.join();
  // The running task finished; the queued ones may or may not have run before Stop took them,
  // but the refused one never did.
  EXPECT_GE(ran.load(), 1);
  EXPECT_LE(ran.load(), 3);
  EXPECT_FALSE(workers.Post([&] { ++ran; }));  // stopped
}

}  // namespace
}  // namespace cvdeploy::server
