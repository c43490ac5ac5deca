// SPDX-License-Identifier: Apache-2.0
// The server's first-try friction (issue 18) end to end on 127.0.0.1: the model listings
// GET /v1/models and /v2/models and the readable repository index without explicit model
// control, the status document at GET /, an image body sent with a wrong Content-Type
// (curl --data-binary's form type) sniffed by its magic bytes, the per-version metric series
// leaving /metrics when a version is unloaded, and what an anonymous or scoped caller sees of
// the listings when authentication is on.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cvdeploy/build_info.h"
#include "support/assets.h"
#include "support/crafted_images.h"
#include "support/process.h"
#include "support/server_api.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A repository with `names`, each yolov8n-dq as version 1, cheap to load (no warm-up).
std::string MakeRepository(const std::string& dir, const std::vector<std::string>& names) {
  const std::string repo = dir + "/repo";
  for (const auto& name : names) {
    fs::create_directories(repo + "/" + name + "/1");
    fs::create_symlink(Asset("models/yolov8n-dq.onnx"), repo + "/" + name + "/1/model.onnx");
    std::ofstream(repo + "/" + name + "/config.json")
        << R"({"warmup": 0, "instances": 1, "threads": 1})";
  }
  return repo;
}

HttpReply Post(int port, const std::string& model, const std::string& body,
               const std::string& content_type) {
  std::map<std::string, std::string> headers;
  if (!content_type.empty()) headers["Content-Type"] = content_type;
  return Http(port, "POST", "/v1/models/" + model + "/predict", body, headers);
}

// The names listed in a {"models": [...]} or status document.
std::vector<std::string> Names(const json& doc) {
  std::vector<std::string> out;
  for (const auto& m : doc.value("models", json::array())) out.push_back(m.value("name", ""));
  return out;
}

class ServerFriction : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("server_friction"));
    const std::string repo = MakeRepository(*dir_, {"yolo", "other"});
    server_ = new ServerProcess({"--model-repository", repo, "--model-control", "explicit",
                                 "--load-model", "yolo", "--load-model", "other"});
    ASSERT_TRUE(server_->WaitReady(120)) << server_->Stderr();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete dir_;
  }
  static int port() { return server_->port(); }
  static std::map<std::string, double> Metrics() {
    const HttpReply r = Http(port(), "GET", "/metrics");
    EXPECT_EQ(r.status, 200) << Describe(r);
    return ParseMetrics(r.body);
  }
  static std::string* dir_;
  static ServerProcess* server_;
};
std::string* ServerFriction::dir_ = nullptr;
ServerProcess* ServerFriction::server_ = nullptr;

TEST_F(ServerFriction, ModelListings) {
  for (const char* route : {"/v1/models", "/v2/models"}) {
    SCOPED_TRACE(route);
    const HttpReply r = Http(port(), "GET", route);
    ASSERT_EQ(r.status, 200) << Describe(r);
    const json doc = ParseJson(r);
    ASSERT_TRUE(doc.contains("models")) << r.body;
    EXPECT_EQ(Names(doc), (std::vector<std::string>{"other", "yolo"})) << r.body;
    for (const auto& m : doc["models"]) {
      EXPECT_EQ(m.value("versions", json()), json::array({"1"})) << r.body;
      EXPECT_EQ(m.value("ready", false), true) << r.body;
      EXPECT_EQ(m.value("state", ""), "READY") << r.body;
    }
    EXPECT_TRUE(IsJsonError(Http(port(), "POST", route), 405, "GET"));
  }
}

TEST_F(ServerFriction, RootIsAStatusDocument) {
  const HttpReply r = Http(port(), "GET", "/");
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_EQ(HeaderOf(r, "content-type"), "application/json");
  const json doc = ParseJson(r);
  EXPECT_EQ(doc.value("name", ""), "cvdeploy");
  EXPECT_EQ(doc.value("version", ""), CVDEPLOY_VERSION);
  EXPECT_EQ(Names(doc), (std::vector<std::string>{"other", "yolo"})) << r.body;
  const json links = doc.value("links", json::object());
  EXPECT_EQ(links.value("health", ""), "/v2/health/ready");
  EXPECT_EQ(links.value("models", ""), "/v1/models");
  EXPECT_EQ(links.value("metrics", ""), "/metrics");
  EXPECT_EQ(links.value("docs", ""), "docs/server.md");
  // Relative links only: the document points at nothing outside this server.
  EXPECT_EQ(r.body.find("http"), std::string::npos) << r.body;
  // The links answer.
  for (const char* link : {"/v2/health/ready", "/v1/models", "/metrics"}) {
    EXPECT_EQ(Http(port(), "GET", link).status, 200) << link;
  }
  EXPECT_TRUE(IsJsonError(Http(port(), "DELETE", "/"), 405, "GET"));
  // Near misses stay unknown.
  for (const char* target : {"//", "/v1", "/v1/models/", "/v3/models"}) {
    EXPECT_TRUE(IsJsonError(Http(port(), "GET", target), 404)) << target;
  }
}

TEST_F(ServerFriction, ImageBodiesAreSniffedWhateverTheirType) {
  const HttpReply typed = Post(port(), "yolo", BusJpeg(), "image/jpeg");
  ASSERT_EQ(typed.status, 200) << Describe(typed);
  const json expected = ParseJson(typed).value("detections", json());
  ASSERT_FALSE(expected.empty()) << typed.body;
  for (const char* type : {"application/x-www-form-urlencoded", "application/octet-stream",
                           "text/plain; charset=utf-8", ""}) {
    SCOPED_TRACE(type);
    const HttpReply r = Post(port(), "yolo", BusJpeg(), type);
    ASSERT_EQ(r.status, 200) << Describe(r);
    EXPECT_EQ(ParseJson(r).value("detections", json()), expected);
  }
  // A PNG under the form type too.
  const std::vector<uint8_t> png = GradientPng(320, 240);
  const HttpReply png_reply = Post(port(), "yolo", std::string(png.begin(), png.end()),
                                   "application/x-www-form-urlencoded");
  EXPECT_EQ(png_reply.status, 200) << Describe(png_reply);
  // Not an image under a wrong type: 415 as before, naming the type.
  EXPECT_TRUE(IsJsonError(Post(port(), "yolo", "a=1&b=2", "application/x-www-form-urlencoded"), 415,
                          "application/x-www-form-urlencoded"));
  EXPECT_TRUE(IsJsonError(Post(port(), "yolo", "GIF89a......", "text/plain"), 415));
  // The magic of a JPEG whose header is broken: an image, but a malformed one (400).
  EXPECT_TRUE(IsJsonError(
      Post(port(), "yolo", std::string("\xff\xd8\xff\xe0\x00\x10JFIF", 10), "text/plain"), 400));
}

// Runs last in the suite (alphabetical order within the fixture is not guaranteed, so it
// leaves "yolo" loaded, which the other tests need, and unloads only "other").
TEST_F(ServerFriction, ZUnloadedVersionLeavesMetrics) {
  ASSERT_EQ(Post(port(), "other", BusJpeg(), "image/jpeg").status, 200);
  ASSERT_EQ(Post(port(), "yolo", BusJpeg(), "image/jpeg").status, 200);
  const std::string other = "{model=\"other\",version=\"1\"}";
  const std::string yolo = "{model=\"yolo\",version=\"1\"}";
  const auto before = Metrics();
  ASSERT_EQ(before.count("cvdeploy_model_ready" + other), 1u);
  ASSERT_EQ(before.at("cvdeploy_model_ready" + other), 1);
  ASSERT_EQ(before.count("cvdeploy_model_load_duration_seconds" + other), 1u);
  ASSERT_GE(before.at("cvdeploy_inference_request_success_total" + other), 1);
  ASSERT_EQ(before.count("cvdeploy_request_duration_seconds_count" + other), 1u);

  const HttpReply unload = Http(port(), "POST", "/v2/repository/models/other/unload", "{}");
  ASSERT_EQ(unload.status, 200) << Describe(unload);
  // The series go once the last request holding the version is done: soon after the unload.
  auto gone = [&] {
    for (const auto& [key, value] : Metrics()) {
      if (key.find("model=\"other\",version=\"1\"") != std::string::npos) return false;
    }
    return true;
  };
  EXPECT_TRUE(WaitFor(gone, 20)) << Http(port(), "GET", "/metrics").body;
  // The version still served keeps its series and values untouched.
  const auto after = Metrics();
  for (const char* family :
       {"cvdeploy_model_ready", "cvdeploy_model_load_duration_seconds",
        "cvdeploy_inference_request_success_total", "cvdeploy_request_duration_seconds_count"}) {
    const std::string key = family + yolo;
    ASSERT_EQ(after.count(key), 1u) << key;
    EXPECT_EQ(after.at(key), before.at(key)) << key;
  }
  // The listings no longer show it; loaded again, its counters start from zero.
  EXPECT_EQ(Names(ParseJson(Http(port(), "GET", "/v1/models"))), std::vector<std::string>{"yolo"});
  ASSERT_EQ(Http(port(), "POST", "/v2/repository/models/other/load", "{}").status, 200);
  const auto reloaded = Metrics();
  ASSERT_EQ(reloaded.count("cvdeploy_inference_request_success_total" + other), 1u);
  EXPECT_EQ(reloaded.at("cvdeploy_inference_request_success_total" + other), 0);
  EXPECT_EQ(reloaded.at("cvdeploy_model_ready" + other), 1);
}

// With authentication: GET / answers an anonymous caller with name, version and links only;
// the listings need the metadata group and show only the models in the caller's scope.
TEST(ServerFrictionAuth, ListingsFollowTheCallersRights) {
  const std::string dir = MakeTempDir("server_friction_auth");
  const std::string repo = MakeRepository(dir, {"yolo", "other"});
  const std::string keys = dir + "/keys.json";
  auto create = [&](const std::string& name, const std::string& role, const std::string& models) {
    std::vector<std::string> args = {"keys",   "create", "--name",      name,
                                     "--role", role,     "--keys-file", keys};
    if (!models.empty()) args.insert(args.end(), {"--models", models});
    const ProcessResult run = RunCli(args);
    EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
    const size_t at = run.out.find("cvd_");
    return at == std::string::npos ? std::string()
                                   : run.out.substr(at, run.out.find_first_of(" \n\t", at) - at);
  };
  const std::string viewer = create("view", "viewer", "");
  const std::string scoped = create("bot", "inferencer", "yolo*");
  ServerProcess server({"--model-repository", repo, "--model-control", "explicit", "--load-model",
                        "yolo", "--load-model", "other", "--keys-file", keys});
  ASSERT_TRUE(server.WaitReady(120)) << server.Stderr();
  const int port = server.port();
  auto get = [&](const std::string& target, const std::string& key) {
    std::map<std::string, std::string> headers;
    if (!key.empty()) headers["Authorization"] = "Bearer " + key;
    return Http(port, "GET", target, "", headers);
  };

  const HttpReply anonymous = get("/", "");
  ASSERT_EQ(anonymous.status, 200) << Describe(anonymous);
  const json doc = ParseJson(anonymous);
  EXPECT_EQ(doc.value("name", ""), "cvdeploy");
  EXPECT_FALSE(doc.contains("models")) << anonymous.body;
  EXPECT_EQ(anonymous.body.find("yolo"), std::string::npos) << anonymous.body;
  EXPECT_EQ(anonymous.body.find("other"), std::string::npos) << anonymous.body;
  EXPECT_TRUE(doc.contains("links")) << anonymous.body;
  // A bad credential is not treated as none.
  EXPECT_EQ(get("/", "cvd_notakey").status, 401);

  for (const char* route : {"/v1/models", "/v2/models"}) {
    EXPECT_EQ(get(route, "").status, 401) << route;
    const HttpReply all = get(route, viewer);
    ASSERT_EQ(all.status, 200) << Describe(all);
    EXPECT_EQ(Names(ParseJson(all)), (std::vector<std::string>{"other", "yolo"})) << all.body;
    const HttpReply mine = get(route, scoped);
    ASSERT_EQ(mine.status, 200) << Describe(mine);
    EXPECT_EQ(Names(ParseJson(mine)), std::vector<std::string>{"yolo"}) << mine.body;
  }
  EXPECT_EQ(Names(ParseJson(get("/", viewer))), (std::vector<std::string>{"other", "yolo"}));
  EXPECT_EQ(Names(ParseJson(get("/", scoped))), std::vector<std::string>{"yolo"});
  // Writing stays gated: an inferencer may not unload, an anonymous caller is 401.
  EXPECT_EQ(Http(port, "POST", "/v2/repository/models/yolo/unload", "{}",
                 {{"Authorization", "Bearer " + scoped}})
                .status,
            403);
  EXPECT_EQ(Http(port, "POST", "/v2/repository/models/yolo/unload", "{}").status, 401);
}

}  // namespace
}  // namespace cvdeploy::testing
