// SPDX-License-Identifier: Apache-2.0
// Data-drift monitoring in the server: a model with config.json "drift" gets the gauges
// cvdeploy_drift_psi{model, version, feature} and GET /v1/models/{m}/drift; darkened images
// move brightness to the alert level (one log line for the change, not one per request); the
// series and the report go when the model is unloaded; a model without a baseline answers 404;
// a configured baseline that cannot be read fails the load with a message naming it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "support/assets.h"
#include "support/process.h"
#include "support/server_api.h"
#include "support/server_process.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::Asset;
using testing::Http;
using testing::HttpReply;
using testing::MakeTempDir;
using testing::ServerProcess;

constexpr int kWindow = 8;

std::string Series(const std::string& feature) {
  return "cvdeploy_drift_psi{model=\"det\",version=\"1\",feature=\"" + feature + "\"}";
}

std::optional<double> Metric(int port, const std::string& series) {
  const HttpReply r = Http(port, "GET", "/metrics");
  std::istringstream lines(r.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return std::nullopt;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

void WriteText(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

// DIR/det (drift: baseline.json of 10 coco128 images, window 8), DIR/plain (no baseline),
// DIR/broken (drift.baseline names a missing file).
std::string MakeRepository() {
  const std::string dir = MakeTempDir("drift-repo");
  const std::string model = Asset("models/yolo11n-dq.onnx");
  const std::string images = MakeTempDir("drift-imgs");
  int n = 0;
  for (const auto& e : fs::directory_iterator(Asset("datasets/coco128/images"))) {
    if (n++ == 10) break;
    fs::copy_file(e.path(), images + "/" + e.path().filename().string());
  }
  for (const std::string name : {"det", "plain", "broken"}) {
    fs::create_directories(dir + "/" + name + "/1");
    fs::create_symlink(model, dir + "/" + name + "/1/model.onnx");
  }
  const auto run = testing::RunCli(
      {"profile-data", "--model", model, "--images", images, "--out", dir + "/det/baseline.json"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  WriteText(dir + "/det/config.json",
            R"({"warmup": 1, "instances": 1, "drift": {"baseline": "baseline.json", "window": )" +
                std::to_string(kWindow) + R"(, "warn": 0.1, "alert": 0.25}})");
  WriteText(dir + "/plain/config.json", R"({"warmup": 1, "instances": 1})");
  WriteText(dir + "/broken/config.json", R"({"warmup": 1, "drift": {"baseline": "missing.json"}})");
  return dir;
}

std::string DarkJpeg() {
  cv::Mat image = cv::imread(Asset("images/bus.jpg"), cv::IMREAD_COLOR);
  image.convertTo(image, -1, 0.3, 0);
  std::vector<uint8_t> jpeg;
  cv::imencode(".jpg", image, jpeg, {cv::IMWRITE_JPEG_QUALITY, 90});
  return std::string(jpeg.begin(), jpeg.end());
}

TEST(ServerDrift, MetricAndReportMoveAndLeaveWithTheModel) {
  const std::string repo = MakeRepository();
  ServerProcess server({"--model-repository", repo, "--model-control", "explicit"});
  const int port = server.port();
  for (const std::string name : {"det", "plain"}) {
    const HttpReply load =
        Http(port, "POST", "/v2/repository/models/" + name + "/load", "", {}, 120);
    ASSERT_EQ(load.status, 200) << testing::Describe(load) << server.Stderr();
  }
  // Before any request: the series exist (0), the window is empty.
  EXPECT_EQ(Metric(port, Series("brightness")), 0.0) << Http(port, "GET", "/metrics").body;
  HttpReply r = Http(port, "GET", "/v1/models/det/drift");
  ASSERT_EQ(r.status, 200) << testing::Describe(r);
  json report = json::parse(r.body);
  EXPECT_EQ(report["window"]["size"], kWindow);
  EXPECT_EQ(report["window"]["filled"], 0);
  EXPECT_EQ(report["features"].size(), 14u);
  EXPECT_EQ(report["baseline"], "baseline.json");  // the file name only, never a server path

  const std::string dark = DarkJpeg();
  for (int i = 0; i < kWindow + 4; ++i) {
    const HttpReply p =
        Http(port, "POST", "/v1/models/det/predict", dark, {{"Content-Type", "image/jpeg"}}, 120);
    ASSERT_EQ(p.status, 200) << testing::Describe(p);
  }
  r = Http(port, "GET", "/v1/models/det/drift");
  ASSERT_EQ(r.status, 200) << testing::Describe(r);
  report = json::parse(r.body);
  EXPECT_EQ(report["window"]["filled"], kWindow) << report.dump();
  EXPECT_EQ(report["features"]["brightness"]["level"], "alert") << report.dump();
  EXPECT_EQ(report["alert"], true);
  const double psi = report["features"]["brightness"]["psi"].get<double>();
  const auto gauge = Metric(port, Series("brightness"));
  ASSERT_TRUE(gauge.has_value());
  EXPECT_GE(*gauge, 0.25);
  EXPECT_NEAR(*gauge, psi, 1e-6);
  // One log line per level change (ok -> warn -> alert as the window filled), not one per
  // request: 12 requests, at most 2 lines, exactly one of them the change to alert.
  const std::string log = server.Stderr();
  EXPECT_EQ(Count(log, "drift feature 'brightness' ok -> alert") +
                Count(log, "drift feature 'brightness' warn -> alert"),
            1u)
      << log;
  EXPECT_LE(Count(log, "drift feature 'brightness'"), 2u) << log;
  EXPECT_EQ(Count(log, "drift feature 'brightness' alert ->"), 0u) << log;

  // A model without a baseline: no report, no series.
  r = Http(port, "GET", "/v1/models/plain/drift");
  EXPECT_EQ(r.status, 404) << testing::Describe(r);
  EXPECT_NE(r.body.find("profile-data"), std::string::npos) << r.body;
  EXPECT_EQ(Http(port, "GET", "/metrics").body.find("cvdeploy_drift_psi{model=\"plain\""),
            std::string::npos);
  EXPECT_EQ(Http(port, "POST", "/v1/models/det/drift").status, 405);

  // A configured baseline that cannot be read fails the load, naming the file.
  const HttpReply broken = Http(port, "POST", "/v2/repository/models/broken/load", "", {}, 120);
  EXPECT_NE(broken.status, 200) << testing::Describe(broken);
  EXPECT_NE(broken.body.find("missing.json"), std::string::npos) << broken.body;

  const HttpReply unload = Http(port, "POST", "/v2/repository/models/det/unload", "", {}, 120);
  ASSERT_EQ(unload.status, 200) << testing::Describe(unload);
  EXPECT_TRUE(testing::WaitFor([&] { return !Metric(port, Series("brightness")).has_value(); }, 30))
      << Http(port, "GET", "/metrics").body;
  EXPECT_EQ(Http(port, "GET", "/metrics").body.find("cvdeploy_drift_psi{"), std::string::npos);
  EXPECT_NE(Http(port, "GET", "/v1/models/det/drift").status, 200);
}

}  // namespace
}  // namespace cvdeploy
