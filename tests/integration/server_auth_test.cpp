// SPDX-License-Identifier: Apache-2.0
// `cvdeploy serve` with authentication, authorization and audit, against real server
// processes on 127.0.0.1 and a real model: the secure default, the authorization matrix,
// policy hot reload, rate limits, login, and the audit log.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/assets.h"
#include "support/jwt_signer.h"
#include "support/process.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string Model() { return Asset("models/yolo11n-dq.onnx") + ":yolo"; }

// A model file that is not ONNX: the server binds, fails the load and exits (code 3), so a
// test sees how it started without stopping it.
std::string BrokenModel() {
  const std::string path = MakeTempDir("auth_broken_model") + "/broken.onnx";
  std::ofstream(path) << "not onnx";
  return path;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void WriteSecret(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << text;
  }
  ::chmod(tmp.c_str(), 0600);
  fs::rename(tmp, path);
}

TEST(ServerSecureDefault, NonLoopbackWithoutAuthExitsWithTheReason) {
  for (const char* host : {"0.0.0.0", "::", "192.0.2.1"}) {
    const std::vector<std::string> args = {"serve", "--host",  host,   "--port",
                                           "0",     "--model", Model()};
    const ProcessResult run = RunCli(args);
    EXPECT_EQ(run.exit_code, 2) << DescribeRun(args, run);
    EXPECT_TRUE(
        Contains(run.err, "refusing to serve on " + std::string(host) + " without authentication"))
        << run.err;
    EXPECT_TRUE(Contains(run.err, "--insecure-no-auth")) << run.err;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
    EXPECT_FALSE(Contains(run.err, "listening")) << run.err;
  }
}

TEST(ServerSecureDefault, LoopbackNeedsNoAuth) {
  for (const char* host : {"127.0.0.1", "localhost", "127.0.0.2"}) {
    const std::vector<std::string> args = {"serve", "--host",  host,         "--port",
                                           "0",     "--model", BrokenModel()};
    const ProcessResult run = RunCli(args);
    EXPECT_FALSE(Contains(run.err, "refusing")) << host << ": " << run.err;
    EXPECT_TRUE(Contains(run.err, "listening on")) << host << ": " << run.err;
  }
}

TEST(ServerSecureDefault, InsecureNoAuthStartsAndWarns) {
  const std::vector<std::string> args = {
      "serve", "--host", "0.0.0.0", "--port", "0", "--insecure-no-auth", "--model", BrokenModel()};
  const ProcessResult run = RunCli(args);
  EXPECT_TRUE(Contains(run.err, "listening on http://0.0.0.0:")) << DescribeRun(args, run);
  EXPECT_TRUE(Contains(run.err, "warning: serving WITHOUT authentication")) << run.err;
}

TEST(ServerSecureDefault, AuthConfigurationAllowsNonLoopback) {
  const std::string dir = MakeTempDir("auth_nonloopback");
  const std::string keys = dir + "/keys.json";
  const ProcessResult created =
      RunCli({"keys", "create", "--name", "bot", "--role", "inferencer", "--keys-file", keys});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::vector<std::string> args = {"serve",       "--host", "0.0.0.0", "--port",     "0",
                                         "--keys-file", keys,     "--model", BrokenModel()};
  const ProcessResult run = RunCli(args);
  EXPECT_TRUE(Contains(run.err, "listening on http://0.0.0.0:")) << DescribeRun(args, run);
  EXPECT_FALSE(Contains(run.err, "WITHOUT authentication")) << run.err;
  // Keys would cross the network in clear text: said once, at start.
  EXPECT_TRUE(Contains(run.err, "warning: authentication is on but TLS is off")) << run.err;
  const std::vector<std::string> loopback = {
      "serve", "--host", "127.0.0.1", "--port", "0", "--keys-file", keys, "--model", BrokenModel()};
  const ProcessResult local = RunCli(loopback);
  EXPECT_TRUE(Contains(local.err, "listening on")) << DescribeRun(loopback, local);
  EXPECT_FALSE(Contains(local.err, "TLS is off")) << local.err;
}

TEST(ServerAuthPolicy, PolicyAloneMakesEveryProtectedRoute401) {
  const std::string dir = MakeTempDir("auth_policy_only");
  const std::string policy = dir + "/policy.json";
  WriteSecret(policy, R"({"public_routes": ["/v2/health/live"]})");
  ServerProcess server({"--model", Model(), "--auth-policy", policy});
  EXPECT_EQ(Http(server.port(), "GET", "/v2/health/live").status, 200);
  for (const char* path : {"/v2/health/ready", "/v2", "/v2/models/yolo", "/metrics", "/nope",
                           "/v2/repository/index", "/v1/models", "/v2/models"}) {
    HttpReply r = Http(server.port(), "GET", path);
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_EQ(r.headers["www-authenticate"], R"(Bearer realm="cvdeploy")") << path;
  }
}

TEST(ServerAuthPolicy, TooOpenPolicyFileIsRefusedAtStart) {
  const std::string dir = MakeTempDir("auth_policy_mode");
  const std::string policy = dir + "/policy.json";
  WriteSecret(policy, "{}");
  ::chmod(policy.c_str(), 0644);
  const std::vector<std::string> args = {"serve", "--port",        "0",   "--model",
                                         Model(), "--auth-policy", policy};
  const ProcessResult run = RunCli(args);
  EXPECT_EQ(run.exit_code, 2) << DescribeRun(args, run);
  EXPECT_TRUE(Contains(run.err, policy)) << run.err;
}

// ---- The authorization matrix and the other end-to-end checks on one server ----

const std::string& BusJpeg() {
  static const std::string bytes = ReadFileText(Asset("images/bus.jpg"));
  return bytes;
}

// A model repository with the sample model as yolo/1/model.onnx.
std::string MakeRepository(const std::string& dir) {
  const std::string repo = dir + "/repo";
  fs::create_directories(repo + "/yolo/1");
  fs::copy_file(Asset("models/yolo11n-dq.onnx"), repo + "/yolo/1/model.onnx");
  return repo;
}

// `cvdeploy keys create`; returns the key printed on stdout.
std::string CreateKey(const std::string& keys_file, const std::string& name,
                      const std::string& role, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"keys",   "create", "--name",      name,
                                   "--role", role,     "--keys-file", keys_file};
  args.insert(args.end(), extra.begin(), extra.end());
  const ProcessResult run = RunCli(args);
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  std::string key;
  for (size_t at = run.out.find("cvd_"); at != std::string::npos;) {
    const size_t end = run.out.find_first_of(" \n\t", at);
    key = run.out.substr(at, end == std::string::npos ? std::string::npos : end - at);
    break;
  }
  EXPECT_FALSE(key.empty()) << run.out;
  return key;
}

struct GroupRoute {
  std::string group, method, target;
  bool model_scoped;
};

const std::vector<GroupRoute>& GroupRoutes() {
  static const std::vector<GroupRoute> routes = {
      {"health", "GET", "/v2/models/yolo/ready", true},
      {"metadata", "GET", "/v2/models/yolo", true},
      {"infer", "POST", "/v1/models/yolo/predict", true},
      {"metrics", "GET", "/metrics", false},
      {"repository.read", "GET", "/v2/repository/index", false},
      {"repository.write", "POST", "/v2/repository/models/yolo/load", true},
      {"admin", "GET", "/v1/auth/policy", false},
      // The dashboard's data; its model list is filtered by scope, not refused.
      {"monitor", "GET", "/v1/dashboard/history", false},
  };
  return routes;
}

// The built-in roles' grants (docs/security.md).
bool Grants(const std::string& role, const std::string& group) {
  static const std::map<std::string, std::vector<std::string>> grants = {
      {"viewer", {"health", "metadata", "metrics", "monitor"}},
      {"inferencer", {"health", "metadata", "infer"}},
      {"operator",
       {"health", "metadata", "infer", "metrics", "repository.read", "repository.write",
        "monitor"}},
      {"admin",
       {"health", "metadata", "infer", "metrics", "repository.read", "repository.write", "admin",
        "monitor"}}};
  const auto& g = grants.at(role);
  return std::find(g.begin(), g.end(), group) != g.end();
}

HttpReply Call(int port, const GroupRoute& route, const std::string& key) {
  std::map<std::string, std::string> headers;
  if (!key.empty()) headers["Authorization"] = "Bearer " + key;
  std::string body;
  if (route.group == "infer") {
    headers["Content-Type"] = "image/jpeg";
    body = BusJpeg();
  }
  return Http(port, route.method, route.target, body, headers);
}

class ServerAuthMatrix : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("auth_matrix");
    keys_ = dir_ + "/keys.json";
    repo_ = MakeRepository(dir_);
  }
  std::vector<std::string> ServeArgs() const {
    return {"--model-repository", repo_,  "--model-control", "explicit",
            "--load-model",       "yolo", "--keys-file",     keys_};
  }
  std::string dir_, keys_, repo_;
};

TEST_F(ServerAuthMatrix, EveryGroupRoleAndCredential) {
  const std::vector<std::string> roles = {"viewer", "inferencer", "operator", "admin"};
  const std::vector<std::string> kinds = {"none", "revoked", "expired", "wrong_model", "valid"};
  std::map<std::string, std::string> key;  // role/kind -> key
  for (const auto& role : roles) {
    key[role + "/valid"] = CreateKey(keys_, role + "-valid", role);
    key[role + "/wrong_model"] =
        CreateKey(keys_, role + "-wrong", role, {"--models", "other*,resnet"});
    key[role + "/revoked"] = CreateKey(keys_, role + "-revoked", role);
    key[role + "/expired"] = CreateKey(keys_, role + "-expired", role, {"--expires", "1s"});
    const std::vector<std::string> revoke = {"keys", "revoke", role + "-revoked", "--keys-file",
                                             keys_};
    const ProcessResult revoked = RunCli(revoke);
    ASSERT_EQ(revoked.exit_code, 0) << DescribeRun(revoke, revoked);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the 1 s keys expire
  ServerProcess server(ServeArgs());
  ASSERT_TRUE(server.WaitReady());
  int checked = 0;
  for (const auto& route : GroupRoutes()) {
    for (const auto& role : roles) {
      for (const auto& kind : kinds) {
        int expected = 200;
        if (kind == "none" || kind == "revoked" || kind == "expired") {
          expected = 401;
        } else if (role == "admin") {
          expected = 403;  // admin requires a second factor: never an API key
        } else if (!Grants(role, route.group)) {
          expected = 403;
        } else if (kind == "wrong_model" && route.model_scoped) {
          expected = 403;
        }
        const HttpReply r =
            Call(server.port(), route, kind == "none" ? "" : key[role + "/" + kind]);
        EXPECT_EQ(r.status, expected)
            << route.group << " x " << role << " x " << kind << ": " << r.body.substr(0, 200);
        if (r.status == 401) {
          EXPECT_EQ(r.headers.count("www-authenticate"), 1u);
          if (kind != "none") {
            EXPECT_TRUE(Contains(r.headers.at("www-authenticate"), "invalid_token"));
          }
        }
        // No answer ever echoes the key.
        if (kind != "none") {
          EXPECT_FALSE(Contains(r.body, key[role + "/" + kind].substr(4))) << route.group;
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 8 * 4 * 5);
  // Public routes stay public for everyone.
  EXPECT_EQ(Http(server.port(), "GET", "/v2/health/live").status, 200);
  // The failures and denials are counted.
  const HttpReply metrics = Call(server.port(), GroupRoutes()[3], key["operator/valid"]);
  EXPECT_TRUE(Contains(metrics.body, R"(cvdeploy_auth_failures_total{reason="revoked"})"))
      << metrics.body.substr(0, 400);
  EXPECT_TRUE(Contains(metrics.body, R"(cvdeploy_auth_denials_total{group="infer"})"));
  // The access log names who made each request.
  EXPECT_TRUE(WaitFor(
      [&] { return Contains(server.Stdout(), R"("identity":"api_key:operator-valid")"); }, 10));
}

// The "monitor" permission on a model that has all three monitor endpoints' data (a drift
// baseline beside its model file, sampling on): a role with only "monitor" reads the dashboard
// data, drift and samples; a role without it (inferencer, a custom role with only "metrics")
// gets 403, no credentials 401; a monitor key scoped to other models gets 403 on this model's
// drift and samples and an empty dashboard. The stored sample holds no key.
TEST_F(ServerAuthMatrix, MonitorPermissionGuardsDashboardDriftAndSamples) {
  const std::string images = dir_ + "/images";
  fs::create_directories(images);
  fs::copy_file(Asset("images/bus.jpg"), images + "/bus.jpg");
  const std::vector<std::string> profile = {
      "profile-data", "--model", repo_ + "/yolo/1/model.onnx",   "--images",
      images,         "--out",   repo_ + "/yolo/1/baseline.json"};
  const ProcessResult profiled = RunCli(profile);
  ASSERT_EQ(profiled.exit_code, 0) << DescribeRun(profile, profiled);
  const std::string policy = dir_ + "/policy.json";
  WriteSecret(policy, R"({"roles": {"watcher": {"permissions": ["monitor"]},
                                    "scraper": {"permissions": ["metrics"]}}})");
  const std::map<std::string, std::string> key = {
      {"watcher", CreateKey(keys_, "watcher", "watcher")},
      {"viewer", CreateKey(keys_, "viewer", "viewer")},
      {"scraper", CreateKey(keys_, "scraper", "scraper")},
      {"inferencer", CreateKey(keys_, "app", "inferencer")},
      {"scoped", CreateKey(keys_, "other-watcher", "watcher", {"--models", "other*"})}};
  const std::string store = dir_ + "/samples";
  auto args = ServeArgs();
  args.insert(args.end(), {"--auth-policy", policy, "--sample-rate", "1", "--sample-dir", store});
  ServerProcess server(args);
  ASSERT_TRUE(server.WaitReady()) << server.Stderr();
  auto get = [&](const std::string& target, const std::string& who) {
    std::map<std::string, std::string> headers;
    if (!who.empty()) headers["Authorization"] = "Bearer " + key.at(who);
    return Http(server.port(), "GET", target, "", headers);
  };
  const HttpReply predicted = Http(server.port(), "POST", "/v1/models/yolo/predict", BusJpeg(),
                                   {{"Authorization", "Bearer " + key.at("inferencer")},
                                    {"Content-Type", "image/jpeg"},
                                    {"X-Request-Id", "monitor-1"}});
  ASSERT_EQ(predicted.status, 200) << predicted.body;
  ASSERT_TRUE(WaitFor(
      [&] { return Contains(get("/v1/models/yolo/samples", "watcher").body, "monitor-1"); }, 30));

  for (const std::string target : {"/v1/dashboard/models", "/v1/dashboard/history",
                                   "/v1/models/yolo/drift", "/v1/models/yolo/samples"}) {
    EXPECT_EQ(get(target, "").status, 401) << target;
    for (const std::string who : {"inferencer", "scraper"}) {
      const HttpReply r = get(target, who);
      EXPECT_EQ(r.status, 403) << target << " x " << who;
      EXPECT_FALSE(Contains(r.body, "monitor-1")) << target << " x " << who;
    }
    for (const std::string who : {"watcher", "viewer"}) {
      EXPECT_EQ(get(target, who).status, 200) << target << " x " << who;
    }
  }
  EXPECT_EQ(get("/v1/models/yolo/drift", "scoped").status, 403);
  EXPECT_EQ(get("/v1/models/yolo/samples", "scoped").status, 403);
  EXPECT_EQ(json::parse(get("/v1/dashboard/models", "scoped").body)["models"].size(), 0u);
  // What a monitor role sees: the drift window filled by the request, the sample's metadata.
  json drift;
  EXPECT_TRUE(WaitFor(
      [&] {
        drift = json::parse(get("/v1/models/yolo/drift", "watcher").body);
        return drift["window"]["filled"] == 1;
      },
      10))
      << drift.dump();
  EXPECT_TRUE(drift["features"].contains("brightness")) << drift.dump();
  const json samples = json::parse(get("/v1/models/yolo/samples", "watcher").body);
  ASSERT_EQ(samples["samples"].size(), 1u) << samples.dump();
  EXPECT_EQ(samples["samples"][0]["request_id"], "monitor-1");
  // A monitor role reads, it does not infer or administer.
  EXPECT_EQ(Http(server.port(), "POST", "/v1/models/yolo/predict", BusJpeg(),
                 {{"Authorization", "Bearer " + key.at("watcher")}, {"Content-Type", "image/jpeg"}})
                .status,
            403);
  EXPECT_EQ(get("/v2/repository/index", "watcher").status, 403);
  // The sample on disk holds no key.
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(store)) {
    if (!e.is_regular_file()) continue;
    ++files;
    const std::string text = ReadFileText(e.path().string());
    for (const auto& [who, k] : key) EXPECT_FALSE(Contains(text, k.substr(4))) << e.path() << who;
  }
  EXPECT_GE(files, 3);  // meta.json, response.json, input.jpg
}

TEST_F(ServerAuthMatrix, PolicyHotReloadAppliesValidAndKeepsOldOnInvalid) {
  const std::string policy = dir_ + "/policy.json";
  WriteSecret(policy, R"({"roles": {"tester": {"permissions": ["metadata"]}}})");
  const std::string k = CreateKey(keys_, "t", "tester");
  const std::string ops = CreateKey(keys_, "ops", "operator");
  auto args = ServeArgs();
  args.insert(args.end(), {"--auth-policy", policy});
  ServerProcess server(args);
  ASSERT_TRUE(server.WaitReady());
  const GroupRoute infer = GroupRoutes()[2], metadata = GroupRoutes()[1];
  EXPECT_EQ(Call(server.port(), metadata, k).status, 200);
  EXPECT_EQ(Call(server.port(), infer, k).status, 403);

  WriteSecret(policy, R"({"roles": {"tester": {"permissions": ["metadata", "infer"]}}})");
  EXPECT_TRUE(WaitFor([&] { return Call(server.port(), infer, k).status != 403; }, 20));
  EXPECT_EQ(Call(server.port(), infer, k).status, 200);
  EXPECT_TRUE(WaitFor([&] { return Contains(server.Stderr(), "policy reloaded"); }, 5));

  WriteSecret(policy, R"({"roles": {"tester": {"permissions": ["metadata", "infr"]}}})");
  EXPECT_TRUE(WaitFor([&] { return Contains(server.Stderr(), "keeping the previous policy"); }, 20))
      << server.Stderr();
  EXPECT_TRUE(Contains(server.Stderr(), "unknown route group 'infr'"));
  EXPECT_EQ(Call(server.port(), infer, k).status, 200);             // the old policy stays
  EXPECT_EQ(Call(server.port(), GroupRoutes()[3], k).status, 403);  // tester lacks metrics
  const std::string metrics = Call(server.port(), GroupRoutes()[3], ops).body;
  EXPECT_TRUE(Contains(metrics, R"(cvdeploy_auth_policy_reloads_total{result="ok"} 1)"))
      << metrics.substr(0, 300);
  EXPECT_TRUE(Contains(metrics, R"(cvdeploy_auth_policy_reloads_total{result="invalid"} 1)"));
}

TEST_F(ServerAuthMatrix, RateLimitAnswers429WithRetryAfter) {
  const std::string policy = dir_ + "/policy.json";
  WriteSecret(policy, R"({"roles": {"slow": {"permissions": ["metadata"],
                          "rate_limit": {"requests_per_second": 0.05, "burst": 3}}}})");
  const std::string slow = CreateKey(keys_, "slow", "slow");
  const std::string other = CreateKey(keys_, "other", "slow");
  auto args = ServeArgs();
  args.insert(args.end(), {"--auth-policy", policy});
  ServerProcess server(args);
  ASSERT_TRUE(server.WaitReady());
  const GroupRoute metadata = GroupRoutes()[1];
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Call(server.port(), metadata, slow).status, 200) << i;
  const HttpReply limited = Call(server.port(), metadata, slow);
  EXPECT_EQ(limited.status, 429);
  ASSERT_EQ(limited.headers.count("retry-after"), 1u);
  const int retry = std::stoi(limited.headers.at("retry-after"));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 20);
  EXPECT_EQ(Call(server.port(), metadata, other).status, 200);  // its own bucket
}

// ---- OIDC/JWT tokens ----

TEST(ServerAuthJwt, TokensMappedThroughThePolicy) {
  const std::string dir = MakeTempDir("auth_jwt");
  const TestJwsKey key = TestJwsKey::EcP256();
  const std::string jwks = dir + "/jwks.json";
  WriteSecret(jwks, JwksText({key.Jwk("k1")}));
  const std::string policy = dir + "/policy.json";
  WriteSecret(policy, R"({"bindings": {"jwt_claims": {"ml-team": ["operator"]}}})");
  ServerProcess server({"--model", Model(), "--jwt-jwks", jwks, "--jwt-issuer",
                        "https://idp.example", "--jwt-audience", "cvdeploy-api", "--auth-policy",
                        policy});
  ASSERT_TRUE(server.WaitReady());
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto token = [&](json claims) {
    json base = {{"iss", "https://idp.example"},
                 {"aud", "cvdeploy-api"},
                 {"sub", "u1"},
                 {"iat", now},
                 {"exp", now + 300}};
    base.update(claims);
    return MakeJwt(key, "k1", base);
  };
  auto predict = [&](const std::string& t) {
    return Http(server.port(), "POST", "/v1/models/yolo/predict", BusJpeg(),
                {{"Authorization", "Bearer " + t}, {"Content-Type", "image/jpeg"}});
  };
  EXPECT_EQ(predict(token({{"roles", {"ml-team"}}})).status, 200);
  EXPECT_EQ(predict(token({{"roles", {"viewer"}}})).status, 403);  // direct role name
  EXPECT_EQ(predict(token({{"roles", {"unbound-group"}}})).status, 403);
  HttpReply expired = predict(token({{"roles", {"ml-team"}}, {"exp", now - 3600}}));
  EXPECT_EQ(expired.status, 401);
  EXPECT_TRUE(Contains(expired.headers["www-authenticate"], "invalid_token"));
  EXPECT_EQ(predict(token({{"roles", {"ml-team"}}, {"aud", "other"}})).status, 401);
  EXPECT_EQ(predict(token({{"roles", {"ml-team"}}, {"iss", "cvdeploy"}})).status, 401);
  // admin needs a second factor: the IdP's amr says whether there was one.
  auto policy_route = [&](const std::string& t) {
    return Http(server.port(), "GET", "/v1/auth/policy", "", {{"Authorization", "Bearer " + t}})
        .status;
  };
  EXPECT_EQ(policy_route(token({{"roles", {"admin"}}, {"amr", {"pwd"}}})), 403);
  EXPECT_EQ(policy_route(token({{"roles", {"admin"}}, {"amr", {"pwd", "otp"}}})), 200);
}

// ---- Login: password + TOTP (oathtool) -> session token ----

// The CLI with `text` on its standard input (through sh; the text is an argument).
ProcessResult RunCliWithStdin(const std::string& text, const std::vector<std::string>& args) {
  std::vector<std::string> sh = {"-c", "t=\"$1\"; shift; printf '%s\\n' \"$t\" | \"$0\" \"$@\"",
                                 CliBinary(), text};
  sh.insert(sh.end(), args.begin(), args.end());
  return RunProcess("/bin/sh", sh);
}

// Adds a user; returns the base32 TOTP secret (the second line the CLI prints).
std::string AddUser(const std::string& users, const std::string& name, const std::string& role,
                    const std::string& password) {
  const std::vector<std::string> args = {
      "users", "add", name, "--role", role, "--password-stdin", "--users-file", users};
  const ProcessResult run = RunCliWithStdin(password, args);
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  const size_t nl = run.out.find('\n');
  return run.out.substr(nl + 1, run.out.find('\n', nl + 1) - nl - 1);
}

std::string TotpNow(const std::string& secret) {
  const ProcessResult run = RunProcess("/usr/bin/oathtool", {"--totp", "-b", secret});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  return run.out.substr(0, run.out.find('\n'));
}

HttpReply Login(int port, const std::string& user, const std::string& password,
                const std::string& totp) {
  return Http(port, "POST", "/v1/auth/login",
              json{{"username", user}, {"password", password}, {"totp", totp}}.dump(),
              {{"Content-Type", "application/json"}});
}

TEST(ServerAuthLogin, TotpLoginTokenThenInferAndAdmin) {
  const std::string dir = MakeTempDir("auth_login");
  const std::string users = dir + "/users.json";
  const std::string password = "correct horse battery staple";
  const std::string alice = AddUser(users, "alice", "admin", password);
  AddUser(users, "bob", "inferencer", password);
  ASSERT_FALSE(alice.empty());
  ServerProcess server({"--model", Model(), "--users-file", users});
  ASSERT_TRUE(server.WaitReady());

  const std::string code = TotpNow(alice);
  const HttpReply login = Login(server.port(), "alice", password, code);
  ASSERT_EQ(login.status, 200) << login.body;
  const json doc = json::parse(login.body);
  const std::string token = doc["token"];
  EXPECT_EQ(doc["expires_in"], 900);
  EXPECT_EQ(login.headers.at("cache-control"), "no-store");

  const std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + token}};
  EXPECT_EQ(Http(server.port(), "GET", "/v1/auth/policy", "", auth).status, 200);  // mfa admin
  auto headers = auth;
  headers["Content-Type"] = "image/jpeg";
  EXPECT_EQ(Http(server.port(), "POST", "/v1/models/yolo/predict", BusJpeg(), headers).status, 200);
  // A token with one changed signature character is refused.
  std::string forged = token;
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  HttpReply bad = Http(server.port(), "GET", "/v2", "", {{"Authorization", "Bearer " + forged}});
  EXPECT_EQ(bad.status, 401);
  EXPECT_TRUE(Contains(bad.headers["www-authenticate"], "invalid_token"));

  // The same code again is a replay.
  const HttpReply replay = Login(server.port(), "alice", password, code);
  EXPECT_EQ(replay.status, 401) << replay.body;
  EXPECT_FALSE(Contains(replay.body, password));

  EXPECT_EQ(replay.headers.count("www-authenticate"), 1u);
  // The failure throttles the address at once (exponential backoff): the next attempt, even
  // a correct one for another user, gets 429 with Retry-After.
  const HttpReply throttled = Login(server.port(), "bob", password, "000000");
  EXPECT_EQ(throttled.status, 429) << throttled.body;
  EXPECT_EQ(throttled.headers.count("retry-after"), 1u);

  EXPECT_EQ(Http(server.port(), "POST", "/v1/auth/login", "{not json").status, 400);
  EXPECT_EQ(Http(server.port(), "POST", "/v1/auth/login", std::string(5000, 'x')).status, 413);
  EXPECT_EQ(Http(server.port(), "GET", "/v1/auth/login").status, 405);
}

// ---- mTLS: a verified client certificate bound to roles by the policy ----

// curl's HTTP status ("000": no answer).
std::string CurlStatus(const std::vector<std::string>& extra, const std::string& url) {
  std::vector<std::string> args = {"-sS",          "-o",         "/dev/null", "-w",
                                   "%{http_code}", "--max-time", "20"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(url);
  return RunProcess("/usr/bin/curl", args, "", 30).out;
}

TEST(ServerAuthMtls, CertificateSubjectBoundToARole) {
  const std::string dir = MakeTempDir("auth_mtls");
  const std::string certs = dir + "/certs";
  const std::vector<std::string> make = {"tls", "selfsigned", "--out", certs};
  const ProcessResult made = RunCli(make);
  ASSERT_EQ(made.exit_code, 0) << DescribeRun(make, made);
  const std::string policy = dir + "/policy.json";
  WriteSecret(policy, R"({"bindings": {"certificates": [
                           {"subject": "CN=cvdeploy-client,O=cvdeploy", "roles": ["inferencer"]}]}})");
  // The client CA alone is an authentication configuration.
  ServerProcess server({"--model", Model(), "--tls-cert", certs + "/server.pem", "--tls-key",
                        certs + "/server.key", "--tls-client-ca", certs + "/ca.pem",
                        "--tls-client-auth", "optional", "--auth-policy", policy});
  const std::string base = "https://127.0.0.1:" + std::to_string(server.port());
  const std::vector<std::string> ca = {"--cacert", certs + "/ca.pem"};
  std::vector<std::string> client = ca;
  client.insert(client.end(), {"--cert", certs + "/client.pem", "--key", certs + "/client.key"});
  ASSERT_TRUE(WaitFor([&] { return CurlStatus(ca, base + "/v2/health/ready") == "200"; }, 60));
  EXPECT_EQ(CurlStatus(client, base + "/v2/models/yolo"), "200");
  EXPECT_EQ(CurlStatus(client, base + "/metrics"), "403");     // inferencer lacks metrics
  EXPECT_EQ(CurlStatus(ca, base + "/v2/models/yolo"), "401");  // no certificate, no token
}

// ---- The audit log: every protected request, verifiable; fail closed ----

struct AuditFiles {
  std::string dir, log, hmac, signing;
};

AuditFiles MakeAuditKeys(const std::string& tag) {
  AuditFiles f;
  f.dir = MakeTempDir(tag);
  f.log = f.dir + "/audit.jsonl";
  f.hmac = f.dir + "/audit.hmac";
  f.signing = f.dir + "/audit-signing.pem";
  const std::vector<std::string> args = {"audit", "keygen",        "--hmac-key-file",
                                         f.hmac,  "--signing-key", f.signing};
  const ProcessResult run = RunCli(args);
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  return f;
}

TEST(ServerAuthAudit, MixOfRequestsThenVerifyPasses) {
  AuditFiles a = MakeAuditKeys("auth_audit");
  const std::string keys = a.dir + "/keys.json";
  const std::string good = CreateKey(keys, "bot", "inferencer");
  const std::string revoked = CreateKey(keys, "old", "inferencer");
  ASSERT_EQ(RunCli({"keys", "revoke", "old", "--keys-file", keys}).exit_code, 0);
  {
    ServerProcess server({"--model", Model(), "--keys-file", keys, "--audit-log", a.log,
                          "--audit-hmac-key-file", a.hmac, "--audit-signing-key", a.signing});
    ASSERT_TRUE(server.WaitReady());
    const int port = server.port();
    const std::map<std::string, std::string> ok = {{"Authorization", "Bearer " + good},
                                                   {"Content-Type", "image/jpeg"}};
    EXPECT_EQ(Http(port, "POST", "/v1/models/yolo/predict", BusJpeg(), ok).status, 200);
    EXPECT_EQ(Http(port, "GET", "/metrics", "", ok).status, 403);
    EXPECT_EQ(Http(port, "GET", "/v2", "", {{"Authorization", "Bearer " + revoked}}).status, 401);
    EXPECT_EQ(Http(port, "GET", "/v2").status, 401);
    EXPECT_EQ(Http(port, "GET", "/v2/models/yolo", "", ok).status, 200);
    server.Signal(SIGTERM);
    EXPECT_EQ(server.Wait(30), 0) << server.Stderr();
    // A clean stop writes every entry (model unloads after the final checkpoint are not
    // submitted at all).
    EXPECT_FALSE(Contains(server.Stderr(), "not written")) << server.Stderr();
  }
  const std::vector<std::string> verify = {
      "audit", "verify", a.log, "--hmac-key-file", a.hmac, "--public-key", a.signing + ".pub"};
  const ProcessResult verified = RunCli(verify);
  EXPECT_EQ(verified.exit_code, 0) << DescribeRun(verify, verified);
  // The server wrote last_used back to the keys file (at the latest when it stopped).
  const ProcessResult listed = RunCli({"keys", "list", "--json", "--keys-file", keys});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  for (const json& k : json::parse(listed.out)) {
    if (k["name"] == "bot") {
      EXPECT_FALSE(k["last_used"].is_null()) << listed.out;
    } else {
      EXPECT_TRUE(k["last_used"].is_null()) << listed.out;
    }
  }

  const std::string text = ReadFileText(a.log);
  for (const char* action :
       {"server.start", "\"infer\"", "authz.denied", "auth.failure", "server.stop", "checkpoint"}) {
    EXPECT_TRUE(Contains(text, action)) << action;
  }
  EXPECT_TRUE(Contains(text, R"("reason":"revoked")"));
  EXPECT_TRUE(Contains(text, R"("model":"yolo")"));
  // Never a key, never image bytes.
  EXPECT_FALSE(Contains(text, good.substr(4)));
  EXPECT_FALSE(Contains(text, revoked.substr(4)));
  EXPECT_FALSE(Contains(text, "JFIF"));
  const ProcessResult show =
      RunCli({"audit", "show", a.log, "--action", "infer", "--identity", "bot"});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_TRUE(Contains(show.out, "bot")) << show.out;
}

TEST(ServerAuthAudit, WithoutAuthenticationEveryRequestIsAuditedAsAnonymous) {
  AuditFiles a = MakeAuditKeys("auth_audit_anonymous");
  {
    ServerProcess server({"--model", Model(), "--audit-log", a.log, "--audit-hmac-key-file", a.hmac,
                          "--audit-signing-key", a.signing});
    ASSERT_TRUE(server.WaitReady());
    const int port = server.port();
    EXPECT_EQ(
        Http(port, "POST", "/v1/models/yolo/predict", BusJpeg(), {{"Content-Type", "image/jpeg"}})
            .status,
        200);
    EXPECT_EQ(Http(port, "GET", "/v2/models/yolo").status, 200);
    EXPECT_EQ(Http(port, "GET", "/v2/models/nope").status, 404);
    EXPECT_EQ(Http(port, "GET", "/v2/health/ready").status, 200);  // public: not audited
    server.Signal(SIGTERM);
    EXPECT_EQ(server.Wait(30), 0) << server.Stderr();
  }
  const std::vector<std::string> verify = {
      "audit", "verify", a.log, "--hmac-key-file", a.hmac, "--public-key", a.signing + ".pub"};
  const ProcessResult verified = RunCli(verify);
  EXPECT_EQ(verified.exit_code, 0) << DescribeRun(verify, verified);
  std::vector<json> requests;
  std::istringstream lines(ReadFileText(a.log));
  for (std::string line; std::getline(lines, line);) {
    const json entry = json::parse(line);
    const json& event = entry["event"];
    if (event.contains("request_id")) requests.push_back(event);
  }
  ASSERT_EQ(requests.size(), 3u) << ReadFileText(a.log);
  EXPECT_EQ(requests[0]["action"], "infer");
  EXPECT_EQ(requests[0]["status"], 200);
  EXPECT_EQ(requests[0]["model"], "yolo");
  EXPECT_EQ(requests[0]["identity"]["name"], "anonymous");
  EXPECT_EQ(requests[1]["status"], 200);
  EXPECT_EQ(requests[2]["status"], 404);
}

TEST(ServerAuthAudit, UnwritableLogFailsClosedWith503) {
  AuditFiles a = MakeAuditKeys("auth_audit_full");
  const std::string keys = a.dir + "/keys.json";
  const std::string key = CreateKey(keys, "bot", "inferencer");
  const std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + key},
                                                   {"Content-Type", "image/jpeg"}};
  for (const bool fail_open : {false, true}) {
    std::vector<std::string> args = {"--model",
                                     Model(),
                                     "--keys-file",
                                     keys,
                                     "--audit-log",
                                     "/dev/full",
                                     "--audit-hmac-key-file",
                                     a.hmac,
                                     "--audit-signing-key",
                                     a.signing};
    if (fail_open) args.push_back("--audit-fail-open");
    ServerProcess server(args);
    ASSERT_TRUE(server.WaitReady());
    const HttpReply r = Http(server.port(), "POST", "/v1/models/yolo/predict", BusJpeg(), auth);
    EXPECT_EQ(r.status, fail_open ? 200 : 503) << r.body;
    if (!fail_open) {
      EXPECT_TRUE(Contains(r.body, "audit log")) << r.body;
      // The unwritten event is on stderr (and the key is not).
      EXPECT_TRUE(WaitFor([&] { return Contains(server.Stderr(), "/v1/models/yolo/predict"); }, 10))
          << server.Stderr();
      EXPECT_FALSE(Contains(server.Stderr(), key.substr(4)));
    }
    // Public routes are not audited and keep answering.
    EXPECT_EQ(Http(server.port(), "GET", "/v2/health/live").status, 200);
  }
}

}  // namespace
}  // namespace cvdeploy::testing
