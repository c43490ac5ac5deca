// SPDX-License-Identifier: Apache-2.0
// `cvdeploy serve` with authentication, authorization and audit, against real server
// processes on 127.0.0.1 and a real model: the secure default, the authorization matrix,
// policy hot reload, rate limits, login, and the audit log.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/assets.h"
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
  if (created.exit_code != 0) GTEST_SKIP() << "keys CLI not merged yet: " << created.err;
  const std::vector<std::string> args = {"serve",       "--host", "0.0.0.0", "--port",     "0",
                                         "--keys-file", keys,     "--model", BrokenModel()};
  const ProcessResult run = RunCli(args);
  EXPECT_TRUE(Contains(run.err, "listening on http://0.0.0.0:")) << DescribeRun(args, run);
  EXPECT_FALSE(Contains(run.err, "WITHOUT authentication")) << run.err;
}

TEST(ServerAuthPolicy, PolicyAloneMakesEveryProtectedRoute401) {
  const std::string dir = MakeTempDir("auth_policy_only");
  const std::string policy = dir + "/policy.json";
  WriteSecret(policy, R"({"public_routes": ["/v2/health/live"]})");
  ServerProcess server({"--model", Model(), "--auth-policy", policy});
  EXPECT_EQ(Http(server.port(), "GET", "/v2/health/live").status, 200);
  for (const char* path : {"/v2/health/ready", "/v2", "/v2/models/yolo", "/metrics", "/nope",
                           "/v2/repository/index"}) {
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

}  // namespace
}  // namespace cvdeploy::testing
