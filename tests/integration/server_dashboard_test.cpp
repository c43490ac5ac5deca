// SPDX-License-Identifier: Apache-2.0
// The dashboard's HTTP surface without a browser (tests/browser/dashboard_test.mjs drives the
// page itself): the embedded files and their security headers, 404/405, and the metric history
// filling up from requests sent while the sampler runs.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/assets.h"
#include "support/process.h"
#include "support/server_process.h"

namespace cvdeploy {
namespace {

using namespace cvdeploy::testing;  // NOLINT: test support

std::string Model() { return Asset("models/yolo11n-dq.onnx"); }

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(ServerDashboard, StaticFilesAreEmbeddedWithSecurityHeaders) {
  ServerProcess server({"--model", Model(), "--access-log", ""});
  const std::vector<std::pair<std::string, std::string>> files = {
      {"/dashboard", "text/html"},
      {"/dashboard/", "text/html"},
      {"/dashboard/app.js", "text/javascript"},
      {"/dashboard/style.css", "text/css"}};
  for (const auto& [path, type] : files) {
    const HttpReply r = Http(server.port(), "GET", path);
    ASSERT_EQ(r.status, 200) << path << ": " << r.body.substr(0, 200);
    EXPECT_EQ(r.headers.at("content-type").rfind(type, 0), 0u) << path;
    const std::string& csp = r.headers.at("content-security-policy");
    EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
    EXPECT_EQ(r.headers.at("x-content-type-options"), "nosniff");
    EXPECT_EQ(r.headers.at("cache-control"), "no-cache");
    EXPECT_FALSE(r.body.empty());
  }
  // The page loads its script from a file, never inline.
  const std::string html = Http(server.port(), "GET", "/dashboard").body;
  EXPECT_NE(html.find(R"(<script type="module" src="/dashboard/app.js"></script>)"),
            std::string::npos);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(Http(server.port(), "GET", "/dashboard/missing.js").status, 404);
  EXPECT_EQ(Http(server.port(), "GET", "/dashboard/../metrics").status, 404);
  const HttpReply post = Http(server.port(), "POST", "/dashboard/app.js", "x");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers.at("allow"), "GET");
  EXPECT_EQ(Http(server.port(), "DELETE", "/v1/dashboard/history").status, 405);
}

TEST(ServerDashboard, HistoryFillsFromRequestsAndModelsAreListed) {
  ServerProcess server({"--model", Model(), "--access-log", "", "--history-interval", "0.2",
                        "--history-points", "5"});
  ASSERT_TRUE(server.WaitReady());
  const HttpReply models = Http(server.port(), "GET", "/v1/dashboard/models");
  ASSERT_EQ(models.status, 200) << models.body;
  EXPECT_EQ(models.headers.at("cache-control"), "no-store");
  const auto m = nlohmann::json::parse(models.body)["models"];
  ASSERT_EQ(m.size(), 1u) << models.body;
  EXPECT_EQ(m[0]["name"], "yolo11n-dq");
  const auto& v = m[0]["versions"][0];
  EXPECT_EQ(v["state"], "READY");
  EXPECT_GT(v["load_ms"].get<double>(), 0);
  EXPECT_EQ(v["golden"], "none");
  EXPECT_EQ(v["task"], "detect");
  EXPECT_TRUE(v["optimizations"].is_null());

  const std::string jpeg = ReadFileBytes(Asset("images/bus.jpg"));
  // The ring holds the last second (5 x 0.2 s): each round sends a prediction and a request
  // that fails (not an image: 415, counted as an error), then reads the history a few times
  // within that second. Rounds repeat so that a loaded machine, which can delay the reads past
  // the window, still finds both in one of them.
  nlohmann::json samples;
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    if (i % 4 == 0) {
      const HttpReply r = Http(server.port(), "POST", "/v1/models/yolo11n-dq/predict", jpeg,
                               {{"Content-Type", "image/jpeg"}});
      ASSERT_EQ(r.status, 200) << r.body;
      EXPECT_EQ(Http(server.port(), "POST", "/v1/models/yolo11n-dq/predict", "not an image",
                     {{"Content-Type", "image/jpeg"}})
                    .status,
                415);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto doc =
        nlohmann::json::parse(Http(server.port(), "GET", "/v1/dashboard/history").body);
    EXPECT_EQ(doc["points"], 5);
    samples = doc["models"]["yolo11n-dq"]["samples"];
    double ok = 0, errors = 0;
    for (const auto& s : samples) {
      ok += s["throughput_rps"].get<double>();
      errors += s["error_ratio"].get<double>();
    }
    seen = ok > 0 && errors > 0;
  }
  ASSERT_TRUE(seen) << samples.dump();
  EXPECT_LE(samples.size(), 5u) << "the ring keeps --history-points samples";
  // Once the ring has wrapped it stays at its size.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const auto doc = nlohmann::json::parse(Http(server.port(), "GET", "/v1/dashboard/history").body);
  EXPECT_EQ(doc["models"]["yolo11n-dq"]["samples"].size(), 5u);
}

TEST(ServerDashboard, HistoryFlagsAreValidated) {
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--history-interval", "0"}, {"--history-points", "0"}}) {
    std::vector<std::string> args = {"serve", "--model", Model()};
    args.insert(args.end(), bad.begin(), bad.end());
    const ProcessResult run = RunCli(args);
    EXPECT_EQ(run.exit_code, 2) << DescribeRun(args, run);
  }
}

}  // namespace
}  // namespace cvdeploy
