// SPDX-License-Identifier: Apache-2.0
// Attacks on the authenticated server (issue 14), against one `cvdeploy serve` process on
// 127.0.0.1 with API keys, users and an audit log: requests that the router might serve but the
// route classifier might place in another group or model (encodings, dot segments, absolute
// form, methods, glob characters, NUL bytes, empty names), odd Authorization headers, login
// bodies that must not echo the password, and the audit trail of it all. The table
// KnownBadRequests() is the list of requests tried, with the status each must get, so that
// they stay covered.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/assets.h"
#include "support/process.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kPassword = "Correct-Horse-Battery-9";

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string CreateKey(const std::string& keys_file, const std::string& name,
                      const std::string& role, const std::string& models) {
  std::vector<std::string> args = {"keys",   "create", "--name",      name,
                                   "--role", role,     "--keys-file", keys_file};
  if (!models.empty()) args.insert(args.end(), {"--models", models});
  const ProcessResult run = RunCli(args);
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  const size_t at = run.out.find("cvd_");
  if (at == std::string::npos) return "";
  return run.out.substr(at, run.out.find_first_of(" \n\t", at) - at);
}

// One raw HTTP/1.1 request (Connection: close); returns the status (0: none) and the body.
struct RawReply {
  int status = 0;
  std::string head, body;
};

RawReply Raw(int port, const std::string& bytes) {
  RawReply reply;
  const int fd = ConnectRaw(port);
  if (fd < 0) return reply;
  SendRaw(fd, bytes);
  const std::string out = ReadRaw(fd, 20);
  ::close(fd);
  const size_t sp = out.find(' ');
  if (out.rfind("HTTP/1.1 ", 0) == 0 && sp != std::string::npos) {
    reply.status = std::atoi(out.c_str() + sp + 1);
  }
  const size_t end = out.find("\r\n\r\n");
  reply.head = out.substr(0, end);
  if (end != std::string::npos) reply.body = out.substr(end + 4);
  return reply;
}

std::string Request(const std::string& method, const std::string& target,
                    const std::vector<std::string>& headers, const std::string& body = "") {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& h : headers) r += h + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  return r;
}

class ServerAuthAttack : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("auth_attack"));
    const std::string repo = *dir_ + "/repo";
    for (const char* name : {"yolo", "other"}) {
      fs::create_directories(repo + "/" + name + "/1");
      fs::copy_file(Asset("models/yolo11n-dq.onnx"), repo + "/" + name + "/1/model.onnx");
    }
    const std::string keys = *dir_ + "/keys.json";
    keys_ = new std::map<std::string, std::string>{
        {"bot", CreateKey(keys, "bot", "inferencer", "yolo*")},
        {"ops", CreateKey(keys, "ops", "operator", "yolo*")},
        {"view", CreateKey(keys, "view", "viewer", "")},
    };
    const std::vector<std::string> keygen = {"audit",           "keygen",
                                             "--hmac-key-file", *dir_ + "/audit.hmac",
                                             "--signing-key",   *dir_ + "/audit.pem"};
    const ProcessResult made = RunCli(keygen);
    ASSERT_EQ(made.exit_code, 0) << DescribeRun(keygen, made);
    const std::vector<std::string> sh = {
        "-c",
        "printf '%s\\n' \"$1\" | \"$0\" users add alice --role operator --password-stdin "
        "--users-file \"$2\"",
        CliBinary(), kPassword, *dir_ + "/users.json"};
    const ProcessResult user = RunProcess("/bin/sh", sh);
    ASSERT_EQ(user.exit_code, 0) << user.err;
    server_ = new ServerProcess(
        {"--model-repository", repo, "--model-control", "explicit", "--load-model", "yolo",
         "--load-model", "other", "--keys-file", keys, "--users-file", *dir_ + "/users.json",
         "--audit-log", *dir_ + "/audit.jsonl", "--audit-hmac-key-file", *dir_ + "/audit.hmac",
         "--audit-signing-key", *dir_ + "/audit.pem"});
    ASSERT_TRUE(server_->WaitReady());
  }
  static void TearDownTestSuite() {
    delete server_;
    delete keys_;
    delete dir_;
    server_ = nullptr;
  }
  static int Port() { return server_->port(); }
  static std::string Key(const std::string& name) { return keys_->at(name); }
  static std::string Auth(const std::string& name) { return "Authorization: Bearer " + Key(name); }

  static std::string* dir_;
  static std::map<std::string, std::string>* keys_;
  static ServerProcess* server_;
};

std::string* ServerAuthAttack::dir_ = nullptr;
std::map<std::string, std::string>* ServerAuthAttack::keys_ = nullptr;
ServerProcess* ServerAuthAttack::server_ = nullptr;

// A request tried during the attack and the status it must get. `who` is a key name of the
// fixture ("bot": inferencer scoped to yolo*, "ops": operator scoped to yolo*, "view": viewer)
// or "" for no credential. 401/403 mean the gate refused; 404/405/400 mean the request reached
// no handler that serves data (or a handler the identity may use, for the 404 of a model).
struct BadRequest {
  std::string who, method, target;
  int status;
};

const std::vector<BadRequest>& KnownBadRequests() {
  static const std::vector<BadRequest> list = {
      // Unauthenticated: every encoding of a protected route is 401.
      {"", "GET", "/metrics", 401},
      {"", "GET", "/%6detrics", 401},
      {"", "GET", "%2Fmetrics", 401},
      {"", "GET", "//metrics", 401},
      {"", "GET", "/metrics/", 401},
      {"", "GET", "/./metrics", 401},
      {"", "GET", "/x/../metrics", 401},
      {"", "GET", "http://x/metrics", 401},
      {"", "GET", "/METRICS", 401},
      {"", "HEAD", "/v2", 401},
      {"", "OPTIONS", "/v2/models/yolo", 401},
      {"", "GET", "/%762", 401},
      {"", "GET", "/v2?x=/v2/health/live", 401},
      {"", "GET", "/v2/health/live/", 401},
      {"", "GET", "/v2/health/live%00", 401},
      {"", "GET", "/v1/auth/policy", 401},
      {"", "GET", "/v1/auth/policy/", 401},
      {"", "POST", "/v2/repository/index", 401},
      {"", "GET", "/" + std::string(8000, 'a'), 401},
      // An inferencer scoped to yolo*: other models, other groups, however spelled.
      {"bot", "GET", "/v2/models/other", 403},
      {"bot", "GET", "/v2/models/other/versions/1", 403},
      {"bot", "POST", "/v2/models/other/versions/1/infer", 403},
      {"bot", "POST", "/v2/models/other/infer", 403},
      {"bot", "POST", "/v1/models/other/predict", 403},
      {"bot", "POST", "/v2%2Fmodels%2Fother%2Finfer", 403},
      {"bot", "POST", "/v2/models/%6fther/infer", 403},
      {"bot", "POST", "http://x/v2/models/other/infer", 403},
      {"bot", "HEAD", "/v2/models/other", 403},
      {"bot", "OPTIONS", "/v2/models/other", 403},
      {"bot", "GET", "/metrics", 403},
      {"bot", "GET", "/%6detrics", 403},
      {"bot", "GET", "/v2/repository/index", 403},
      {"bot", "POST", "/v2/repository/models/yolo/unload", 403},
      {"bot", "GET", "/v1/auth/policy", 403},
      {"bot", "GET", "/v2/models/yolo%2F..%2Fother", 404},  // no route: 5 segments
      {"bot", "GET", "/v2/models/yolo/../other", 404},      // not normalised: no route
      {"bot", "GET", "/v2/models/yolo*", 404},              // in scope, no such model
      {"bot", "GET", "/v2/models/yolo%5B", 404},            // "yolo[": in scope, unknown
      {"bot", "GET", "/v2/models/other%2A", 403},           // "other*" is out of scope
      {"bot", "GET", "/v2/models/yolo%00other", 403},       // NUL must not end the name
      {"bot", "POST", "/v1/models/yolo%00/predict", 403},   // (fnmatch reads a C string)
      {"bot", "GET", "/v2/models/yolo/versions/x/infer", 400},
      // An operator scoped to yolo*: model control only for its models.
      {"ops", "POST", "/v2/repository/models/other/unload", 403},
      {"ops", "POST", "/v2/repository/models/%6fther/load", 403},
      {"ops", "POST", "/v2/repository/models/yolo%00x/load", 403},
      {"ops", "POST", "/v2/repository/models//load", 404},  // no model: no route, no handler
      {"ops", "POST", "/v2/repository/models//unload", 404},
      {"view", "POST", "/v2/repository/models//load", 404},
      // A viewer: no infer, no model control, no admin.
      {"view", "POST", "/v2/models/yolo/infer", 403},
      {"view", "POST", "/v1/models/yolo/predict", 403},
      {"view", "POST", "/v2/repository/models/yolo/load", 403},
      {"view", "GET", "/v1/auth/policy", 403},
  };
  return list;
}

TEST_F(ServerAuthAttack, KnownBadRequestsGetTheirStatus) {
  for (const BadRequest& b : KnownBadRequests()) {
    std::vector<std::string> headers;
    if (!b.who.empty()) headers.push_back(Auth(b.who));
    const RawReply r = Raw(Port(), Request(b.method, b.target, headers));
    EXPECT_EQ(r.status, b.status) << b.who << " " << b.method << " " << b.target.substr(0, 80)
                                  << ": " << r.body.substr(0, 200);
    if (b.status == 404 && !b.who.empty()) {
      // A 404 comes from the router or a model lookup, never from a model-control handler.
      EXPECT_FALSE(Contains(r.body, "model repository")) << b.target << ": " << r.body;
      EXPECT_FALSE(Contains(r.body, "is not loaded")) << b.target << ": " << r.body;
    }
  }
}

TEST_F(ServerAuthAttack, AllowedRequestsStillWork) {
  const RawReply own = Raw(Port(), Request("GET", "/v2/models/yolo", {Auth("bot")}));
  EXPECT_EQ(own.status, 200) << own.body;
  const RawReply encoded = Raw(Port(), Request("GET", "/v2/models/%79olo", {Auth("bot")}));
  EXPECT_EQ(encoded.status, 200) << encoded.body;
  const RawReply other = Raw(Port(), Request("GET", "/v2/models/other", {Auth("view")}));
  EXPECT_EQ(other.status, 200) << other.body;
  const RawReply metrics = Raw(Port(), Request("GET", "/metrics", {Auth("view")}));
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(Raw(Port(), Request("GET", "/v2/health/live", {})).status, 200);
}

TEST_F(ServerAuthAttack, AuthorizationHeaderVariants) {
  const std::string key = Key("bot");
  const std::string path = "/v2/models/yolo";
  struct Variant {
    std::string name, header;
    int status;
  };
  const std::vector<Variant> variants = {
      {"lower-case scheme", "Authorization: bearer " + key, 200},
      {"two spaces", "Authorization: Bearer  " + key, 200},
      {"trailing junk", "Authorization: Bearer " + key + " junk", 401},
      {"appended character", "Authorization: Bearer " + key + "x", 401},
      {"appended padding", "Authorization: Bearer " + key + "=", 401},
      {"tab separator", "Authorization: Bearer\t" + key, 401},
      {"Basic scheme", "Authorization: Basic " + key, 401},
      {"no token", "Authorization: Bearer", 401},
      {"long token", "Authorization: Bearer " + std::string(9000, 'A'), 401},
      {"X-Api-Key", "X-Api-Key: " + key, 401},
      {"unknown id", "Authorization: Bearer cvd_0123456789abcdef_" + std::string(43, 'A'), 401},
  };
  for (const auto& v : variants) {
    const RawReply r = Raw(Port(), Request("GET", path, {v.header}));
    EXPECT_EQ(r.status, v.status) << v.name << ": " << r.body;
    EXPECT_FALSE(Contains(r.body, key.substr(4))) << v.name;
  }
  // A NUL byte in the header is not HTTP.
  EXPECT_EQ(
      Raw(Port(), Request("GET", path, {"Authorization: Bearer " + key + std::string(1, '\0')}))
          .status,
      400);
}

// Two Authorization fields: a proxy in front may check one and the server use the other, so
// neither is chosen; the request is refused as a malformed credential.
TEST_F(ServerAuthAttack, TwoAuthorizationHeadersAreRefused) {
  const std::string bad = "Authorization: Bearer cvd_0123456789abcdef_" + std::string(43, 'A');
  for (const auto& pair : std::vector<std::vector<std::string>>{{bad, Auth("bot")},
                                                                {Auth("bot"), bad},
                                                                {Auth("view"), Auth("bot")},
                                                                {Auth("bot"), Auth("view")},
                                                                {Auth("bot"), Auth("bot")}}) {
    const RawReply r = Raw(Port(), Request("GET", "/v2/models/other", pair));
    EXPECT_EQ(r.status, 401) << pair[0].substr(0, 40) << " + " << pair[1].substr(0, 40) << ": "
                             << r.body;
    EXPECT_TRUE(Contains(r.head, "invalid_token")) << r.head;
  }
}

// A login body that does not parse is answered 400 without quoting it: the JSON parser's
// message ("last read: ...") would send the password back and into any log of error bodies.
TEST_F(ServerAuthAttack, LoginErrorsNeverEchoThePassword) {
  const std::string p = kPassword;
  const std::vector<std::string> bodies = {
      R"({"username":"alice","password":")" + p,
      R"({"username":"alice","password":")" + p + "\x01\"}",
      R"({"username":"alice","password":")" + p + "\xff\"}",
      R"({"username":"alice","password":")" + p + R"(", "totp": 12})",
      R"({"username":")" + p + R"(","password":")" + p + "\"",
      R"({"username":"alice","password":")" + p + R"("} trailing)",
      "[\"" + p + "\"]",
  };
  std::vector<std::string> ids;
  for (const auto& body : bodies) {
    ids.push_back(std::string("login-bad-").append(1, static_cast<char>('a' + ids.size())));
    const RawReply r = Raw(
        Port(), Request("POST", "/v1/auth/login",
                        {"Content-Type: application/json", "X-Request-Id: " + ids.back()}, body));
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_FALSE(Contains(r.body, p)) << r.body;
    EXPECT_FALSE(Contains(r.body, p.substr(0, 8))) << r.body;
  }
  ids.push_back("login-too-big");
  EXPECT_EQ(Raw(Port(), Request("POST", "/v1/auth/login", {"X-Request-Id: " + ids.back()},
                                std::string(5000, ' ')))
                .status,
            413);
  // Each attempt is a login failure in the audit log (reason malformed), without its body.
  const std::string audit_path = *dir_ + "/audit.jsonl";
  EXPECT_TRUE(WaitFor([&] { return Contains(ReadFileText(audit_path), ids.back()); }, 10));
  std::map<std::string, json> events;
  std::istringstream audit(ReadFileText(audit_path));
  for (std::string line; std::getline(audit, line);) {
    const json event = json::parse(line)["event"];
    if (event.contains("request_id")) events[event["request_id"].get<std::string>()] = event;
  }
  for (const auto& id : ids) {
    ASSERT_EQ(events.count(id), 1u) << id;
    EXPECT_EQ(events[id]["action"], "login.failure") << id;
    EXPECT_EQ(events[id]["reason"], "malformed") << id;
    EXPECT_FALSE(Contains(events[id].dump(), p.substr(0, 8))) << id;
  }
  const RawReply wrong =
      Raw(Port(), Request("POST", "/v1/auth/login", {},
                          R"({"username":"alice","password":")" + p + R"(x","totp":"000000"})"));
  EXPECT_TRUE(wrong.status == 401 || wrong.status == 429) << wrong.body;
  EXPECT_FALSE(Contains(wrong.body, p));
}

// Runs last in this file (gtest runs tests in order): every request above that reached the
// gate left exactly one audit entry; no log holds a key, its secret or the password; the log
// verifies.
TEST_F(ServerAuthAttack, ZzAuditTrailAndNoSecretsInLogs) {
  // One more denied request, found by its request id.
  const RawReply denied =
      Raw(Port(), Request("GET", "/v2/models/other", {Auth("bot"), "X-Request-Id: attack-denied"}));
  ASSERT_EQ(denied.status, 403);
  const std::string audit_path = *dir_ + "/audit.jsonl";
  ASSERT_TRUE(WaitFor([&] { return Contains(ReadFileText(audit_path), "attack-denied"); }, 10));
  std::map<std::string, int> entries;  // request id -> audit entries
  std::istringstream audit(ReadFileText(audit_path));
  for (std::string line; std::getline(audit, line);) {
    const json event = json::parse(line)["event"];
    if (event.contains("request_id")) ++entries[event["request_id"].get<std::string>()];
  }
  EXPECT_EQ(entries["attack-denied"], 1);
  std::istringstream access(server_->Stdout());
  int checked = 0;
  for (std::string line; std::getline(access, line);) {
    const json x = json::parse(line);
    const std::string path = x["path"];
    if (path.empty() || path == "/v2/health/live" || path == "/v2/health/ready" ||
        path == "/v1/auth/login") {
      continue;  // transport-level 400s, public routes, login (audited as login.*)
    }
    EXPECT_EQ(entries[x["request_id"].get<std::string>()], 1) << line;
    ++checked;
  }
  EXPECT_GT(checked, static_cast<int>(KnownBadRequests().size()));
  const std::string logs = server_->Stdout() + server_->Stderr() + ReadFileText(audit_path);
  for (const auto& [name, key] : *keys_) {
    EXPECT_FALSE(Contains(logs, key.substr(4))) << name;
    EXPECT_FALSE(Contains(logs, key.substr(21))) << name;
  }
  EXPECT_FALSE(Contains(logs, kPassword));
  const std::vector<std::string> verify = {"audit",
                                           "verify",
                                           audit_path,
                                           "--hmac-key-file",
                                           *dir_ + "/audit.hmac",
                                           "--public-key",
                                           *dir_ + "/audit.pem.pub",
                                           "--allow-open"};
  const ProcessResult run = RunCli(verify);
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(verify, run);
}

}  // namespace
}  // namespace cvdeploy::testing
