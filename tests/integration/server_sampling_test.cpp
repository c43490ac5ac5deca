// SPDX-License-Identifier: Apache-2.0
// Sampled request logging (serve --sample-rate/--sample-dir/--sample-max-bytes/--sample-redact)
// and `cvdeploy samples list|replay`, against a server on 127.0.0.1: what a sample holds
// (the image as sent, the response as answered, request id, trace id, model, version,
// timings), the size bound (the listing follows the store, also across a restart), rate 0,
// redaction of persons only, replay agreement with the same model (100%) and with another (lower),
// a corrupt sample skipped with one line, and an unwritable directory refused at start (exit 2, one
// line).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cvdeploy/samples.h"
#include "support/assets.h"
#include "support/process.h"
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

const char* kTrace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

std::string FileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> CocoImages(int n) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(Asset("datasets/coco128/images"))) {
    files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  files.resize(std::min<size_t>(files.size(), static_cast<size_t>(n)));
  return files;
}

HttpReply Predict(int port, const std::string& bytes, const std::string& id) {
  return Http(port, "POST", "/v1/models/det/predict", bytes,
              {{"Content-Type", "image/jpeg"}, {"X-Request-Id", id}, {"traceparent", kTrace}}, 120);
}

TEST(ServerSampling, StoresEachRequestAndReplaysIt) {
  const std::string dir = MakeTempDir("sampling") + "/store";
  const std::string model = Asset("models/yolov8n-dq.onnx");
  std::vector<std::string> bodies;
  {
    ServerProcess server({"--model", model + ":det", "--sample-rate", "1.0", "--sample-dir", dir,
                          "--instances", "1"});
    ASSERT_TRUE(server.WaitReady(120)) << server.Stderr();
    int i = 0;
    for (const std::string& path : CocoImages(8)) {
      const HttpReply r =
          Predict(server.port(), FileText(path), std::string("req-").append(std::to_string(i++)));
      ASSERT_EQ(r.status, 200) << r.body;
      bodies.push_back(r.body);
    }
    ASSERT_TRUE(testing::WaitFor([&] { return samples::ScanSampleDirs(dir).size() == 8; }, 30));
    const HttpReply list = Http(server.port(), "GET", "/v1/models/det/samples?limit=3");
    ASSERT_EQ(list.status, 200) << list.body;
    const json recent = json::parse(list.body);
    ASSERT_EQ(recent["samples"].size(), 3u);
    EXPECT_EQ(recent["samples"][2]["request_id"], "req-7");
    EXPECT_EQ(Http(server.port(), "GET", "/v1/models/det/samples?limit=0").status, 400);
    const std::string metrics = Http(server.port(), "GET", "/metrics").body;
    EXPECT_NE(metrics.find("cvdeploy_samples_total{result=\"written\"} 8"), std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find("cvdeploy_samples_stored_bytes "), std::string::npos);
  }
  const auto stored = samples::ScanSampleDirs(dir);
  ASSERT_EQ(stored.size(), 8u);
  const std::vector<std::string> images = CocoImages(8);
  for (size_t i = 0; i < stored.size(); ++i) {
    const std::string base = stored[i].path + "/";
    const samples::SampleMeta meta =
        samples::SampleMetaFromJson(FileText(base + "meta.json"), base + "meta.json");
    EXPECT_EQ(meta.request_id, std::string("req-").append(std::to_string(i)));  // oldest first
    EXPECT_EQ(meta.trace_id, "0af7651916cd43dd8448eb211c80319c");
    EXPECT_EQ(meta.model, "det");
    EXPECT_EQ(meta.version, "1");
    EXPECT_EQ(meta.kind, "image");
    EXPECT_GT(meta.timings_ms.at("inference"), 0);
    EXPECT_EQ(FileText(base + "input.jpg"), FileText(images[i]));
    EXPECT_EQ(FileText(base + "response.json"), bodies[i]);
  }

  // samples list
  auto run = testing::RunCli({"samples", "list", dir, "--json", dir + "/../list.json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("8 samples"), std::string::npos) << run.out;
  const json listing = json::parse(FileText(dir + "/../list.json"));
  EXPECT_EQ(listing["samples"], 8);
  EXPECT_EQ(listing["models"]["det:1"], 8);

  // Replay through the same model: every stored detection found again.
  run = testing::RunCli(
      {"samples", "replay", dir, "--model", model, "--json", dir + "/../same.json"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const json same = json::parse(FileText(dir + "/../same.json"));
  EXPECT_EQ(same["replayed"], 8);
  EXPECT_DOUBLE_EQ(same["overall"]["agreement"].get<double>(), 1.0) << same.dump();
  EXPECT_GT(same["overall"]["stored"].get<int>(), 8);
  EXPECT_FALSE(same["per_class"].empty());

  // Through another model: a lower figure; exit 6 (as compare) under --min-agreement 0.999.
  run = testing::RunCli({"samples", "replay", dir, "--model", Asset("models/yolo11n-dq.onnx"),
                         "--min-agreement", "0.999", "--json", dir + "/../other.json"});
  const json other = json::parse(FileText(dir + "/../other.json"));
  EXPECT_LT(other["overall"]["agreement"].get<double>(), 1.0) << other.dump();
  EXPECT_EQ(run.exit_code, 6) << run.out << run.err;

  // A corrupt sample is skipped with one line naming it; the rest still replay.
  std::ofstream(stored[3].path + "/meta.json", std::ios::trunc) << "{\"format\": 12";
  run = testing::RunCli({"samples", "replay", dir, "--model", model});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.err.find(std::string("skipped ").append(stored[3].path).append("/meta.json")),
            std::string::npos)
      << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  EXPECT_NE(run.out.find("replayed 7 samples"), std::string::npos) << run.out;
}

// "DAY/NAME" of each sample GET /v1/models/det/samples lists, oldest first.
std::vector<std::string> ListedSamples(int port) {
  const HttpReply r = Http(port, "GET", "/v1/models/det/samples?limit=100");
  std::vector<std::string> out;
  if (r.status != 200) return {"HTTP " + std::to_string(r.status)};
  const json doc = json::parse(r.body);
  for (const auto& s : doc["samples"]) out.push_back(s.value("sample", ""));
  return out;
}

// "DAY/NAME" of each sample in the store, oldest first.
std::vector<std::string> StoredSamples(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& d : samples::ScanSampleDirs(dir)) {
    out.push_back(fs::path(d.path).parent_path().filename().string() + "/" + d.name);
  }
  return out;
}

TEST(ServerSampling, SizeBoundKeepsTheNewestAndRateZeroWritesNothing) {
  const std::string root = MakeTempDir("sampling-bound");
  const std::string dir = root + "/store", off = root + "/off";
  const std::string model = Asset("models/yolov8n-dq.onnx");
  const std::vector<std::string> images = CocoImages(6);
  {
    // 200 KiB: about two coco128 images (60-170 KB each).
    ServerProcess server({"--model", model + ":det", "--sample-rate", "1", "--sample-dir", dir,
                          "--sample-max-bytes", "200KiB", "--instances", "1"});
    ASSERT_TRUE(server.WaitReady(120)) << server.Stderr();
    for (size_t i = 0; i < images.size(); ++i) {
      ASSERT_EQ(
          Predict(server.port(), FileText(images[i]), std::string("b").append(std::to_string(i)))
              .status,
          200);
      ASSERT_TRUE(testing::WaitFor(
          [&] {
            const std::string m = Http(server.port(), "GET", "/metrics").body;
            return m.find(std::string("cvdeploy_samples_total{result=\"written\"} ")
                              .append(std::to_string(i + 1))) != std::string::npos ||
                   m.find("cvdeploy_samples_total{result=\"failed\"} 1") != std::string::npos;
          },
          30));
    }
    // The listing holds what the store holds: rotated-out samples leave it.
    EXPECT_EQ(ListedSamples(server.port()), StoredSamples(dir));
  }
  const auto stored = samples::ScanSampleDirs(dir);
  uint64_t bytes = 0;
  for (const auto& s : stored) bytes += s.bytes;
  EXPECT_LE(bytes, 200u * 1024);
  ASSERT_FALSE(stored.empty());
  EXPECT_LT(stored.size(), images.size());
  EXPECT_NE(stored.back().name.find("_b5"), std::string::npos) << stored.back().name;
  {
    // After a restart the listing shows the earlier run's samples, read from the store.
    ServerProcess server({"--model", model + ":det", "--sample-rate", "1", "--sample-dir", dir,
                          "--sample-max-bytes", "200KiB", "--instances", "1"});
    ASSERT_TRUE(server.WaitReady(120)) << server.Stderr();
    EXPECT_EQ(ListedSamples(server.port()), StoredSamples(dir));
    EXPECT_EQ(ListedSamples(server.port()).size(), stored.size());
  }

  {
    ServerProcess server({"--model", model + ":det", "--sample-rate", "0", "--sample-dir", off});
    ASSERT_TRUE(server.WaitReady(120)) << server.Stderr();
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(Predict(server.port(), FileText(images[0]), "z").status, 200);
    }
    EXPECT_EQ(Http(server.port(), "GET", "/v1/models/det/samples").status, 404);
  }
  EXPECT_TRUE(samples::ScanSampleDirs(off).empty());
  EXPECT_FALSE(fs::exists(off));
}

TEST(ServerSampling, RedactBlursPersonsOnlyAndKeepsNoOriginal) {
  const std::string dir = MakeTempDir("sampling-redact") + "/store";
  const std::string image_path = Asset("images/zidane.jpg");
  {
    ServerProcess server({"--model", Asset("models/yolov8n-dq.onnx") + ":det", "--sample-rate", "1",
                          "--sample-dir", dir, "--sample-redact"});
    ASSERT_TRUE(server.WaitReady(120)) << server.Stderr();
    ASSERT_EQ(Predict(server.port(), FileText(image_path), "red").status, 200);
    ASSERT_TRUE(testing::WaitFor([&] { return samples::ScanSampleDirs(dir).size() == 1; }, 30));
  }
  const std::string base = samples::ScanSampleDirs(dir).front().path + "/";
  EXPECT_FALSE(fs::exists(base + "input.jpg"));
  const samples::SampleMeta meta = samples::SampleMetaFromJson(FileText(base + "meta.json"), "m");
  EXPECT_TRUE(meta.redacted);
  EXPECT_EQ(meta.input, "input.png");
  const Result response = samples::SampleResponseFromJson(FileText(base + "response.json"), "r");
  const cv::Mat original = cv::imread(image_path, cv::IMREAD_COLOR);
  const cv::Mat stored = cv::imread(base + "input.png", cv::IMREAD_COLOR);
  ASSERT_EQ(original.size(), stored.size());
  cv::Mat person_mask(original.size(), CV_8U, cv::Scalar(0));
  int persons = 0;
  for (const Detection& d : response.detections) {
    if (d.class_name != "person") continue;
    ++persons;
    const cv::Rect r = cv::Rect(cv::Point(static_cast<int>(std::floor(d.box.x1)),
                                          static_cast<int>(std::floor(d.box.y1))),
                                cv::Point(static_cast<int>(std::ceil(d.box.x2)),
                                          static_cast<int>(std::ceil(d.box.y2)))) &
                       cv::Rect(0, 0, original.cols, original.rows);
    // The response's coordinates are rounded, the sampler blurred the exact box: a box edge
    // may fall one pixel either side of the rounded one.
    const cv::Rect grown = cv::Rect(r.x - 1, r.y - 1, r.width + 2, r.height + 2) &
                           cv::Rect(0, 0, original.cols, original.rows);
    person_mask(grown).setTo(255);
    // Inside each person: changed a lot (mean absolute difference of the box).
    cv::Mat diff;
    cv::absdiff(original(r), stored(r), diff);
    EXPECT_GT(cv::mean(diff)[0] + cv::mean(diff)[1] + cv::mean(diff)[2], 15) << "box " << r;
  }
  ASSERT_GE(persons, 2);
  EXPECT_EQ(meta.redacted_regions, persons);
  // Outside every person box: bit-identical (lossless PNG of the decoded image).
  cv::Mat diff;
  cv::absdiff(original, stored, diff);
  cv::Mat gray;
  cv::cvtColor(diff, gray, cv::COLOR_BGR2GRAY);
  gray.setTo(0, person_mask);
  EXPECT_EQ(cv::countNonZero(gray), 0);
}

TEST(ServerSampling, UnwritableDirectoryFailsAtStartWithOneLine) {
  const std::string root = MakeTempDir("sampling-bad");
  std::ofstream(root + "/file") << "x";
  testing::ExpectCliError({"serve", "--model", Asset("models/yolov8n-dq.onnx"), "--port", "0",
                           "--sample-rate", "0.5", "--sample-dir", root + "/file/store"},
                          2, root + "/file/store");
  testing::ExpectCliError(
      {"serve", "--model", Asset("models/yolov8n-dq.onnx"), "--port", "0", "--sample-rate", "0.5"},
      2, "--sample-dir");
  testing::ExpectCliError({"serve", "--model", Asset("models/yolov8n-dq.onnx"), "--port", "0",
                           "--sample-rate", "1.5", "--sample-dir", root},
                          2, "--sample-rate");
}

// A warning written while serving a request (here: a sample larger than --sample-max-bytes,
// logged once) names the request in both log formats.
TEST(ServerSampling, EventLinesAboutARequestNameIt) {
  const std::string image = FileText(Asset("images/bus.jpg"));
  for (const std::string format : {"json", "text"}) {
    const std::string dir = MakeTempDir("sampling-log") + "/store";
    ServerProcess server({"--model", Asset("models/yolov8n-dq.onnx") + ":det", "--sample-rate", "1",
                          "--sample-dir", dir, "--sample-max-bytes", "1KiB", "--log-format",
                          format});
    ASSERT_TRUE(server.WaitReady(120)) << server.Stderr();
    ASSERT_EQ(Predict(server.port(), image, std::string("warn-").append(format)).status, 200);
    ASSERT_TRUE(testing::WaitFor(
        [&] { return server.Stderr().find("larger than --sample-max-bytes") != std::string::npos; },
        30))
        << server.Stderr();
    std::istringstream lines(server.Stderr());
    std::string warning, listening;
    for (std::string line; std::getline(lines, line);) {
      if (line.find("larger than --sample-max-bytes") != std::string::npos) warning = line;
      if (line.find("listening on") != std::string::npos) listening = line;
    }
    // A line not about a request (startup) names none.
    EXPECT_EQ(listening.find("request"), std::string::npos) << listening;
    if (format == "json") {
      const json j = json::parse(warning);
      EXPECT_EQ(j["level"], "warning");
      EXPECT_EQ(j["request_id"], "warn-json") << warning;
      EXPECT_EQ(j["trace_id"], "0af7651916cd43dd8448eb211c80319c") << warning;
    } else {
      EXPECT_NE(warning.find("cvdeploy serve: warning: "), std::string::npos) << warning;
      EXPECT_NE(warning.find("(request warn-text, trace 0af7651916cd43dd8448eb211c80319c)"),
                std::string::npos)
          << warning;
    }
  }
}

}  // namespace
}  // namespace cvdeploy
