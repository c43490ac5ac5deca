// SPDX-License-Identifier: Apache-2.0
// The image predict endpoint of `cvdeploy serve` end to end, against a real server process
// serving the sample yolov8n-dq.onnx: results against the CLI, image formats, multipart
// uploads, query parameters and their error paths, bad bodies and decompression bombs, the
// header and body limits, request ids, the access log and /metrics (on the main port and on
// its own). The KServe v2 routes and connection handling are in server_api_test.cpp. One
// server per suite keeps the runtime low.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/assets.h"
#include "support/process.h"
#include "support/server_api.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------
// Helpers.

std::string Encode(const std::string& ext) {
  const cv::Mat image = cv::imread(Asset("images/bus.jpg"), cv::IMREAD_COLOR);
  std::vector<uint8_t> out;
  if (image.empty() || !cv::imencode(ext, image, out)) return "";
  return std::string(out.begin(), out.end());
}

int CountClass(const json& result, int class_id) {
  int n = 0;
  for (const auto& d : result["detections"]) n += d["class_id"] == class_id;
  return n;
}

// Big-endian 32-bit and the PNG CRC, for a hand-built PNG header.
void PutBe32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 255));
}

uint32_t PngCrc(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

void PutChunk(std::string& png, const std::string& type, const std::string& data) {
  PutBe32(png, static_cast<uint32_t>(data.size()));
  png += type + data;
  PutBe32(png, PngCrc(type + data));
}

// Signature, IHDR claiming width x height RGB8, IEND: no pixel data at all.
std::string PngHeaderOnly(uint32_t width, uint32_t height) {
  std::string png("\x89PNG\r\n\x1A\n", 8);
  std::string ihdr;
  PutBe32(ihdr, width);
  PutBe32(ihdr, height);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // depth 8, RGB, deflate, filter 0, no interlace
  PutChunk(png, "IHDR", ihdr);
  PutChunk(png, "IEND", "");
  return png;
}

const std::string kLabels = R"({model="yolov8n-dq",version="1"})";

// --- Image predict --------------------------------------------------------------------------

TEST_F(ServerApiTest, PredictMatchesTheCli) {
  const HttpReply r = PostImage(port(), BusJpeg());
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_EQ(HeaderOf(r, "content-type"), "application/json");
  EXPECT_EQ(HeaderOf(r, "x-model-version"), "1");
  const json server = ParseJson(r);
  EXPECT_EQ(server["source"], "request body");

  const std::vector<std::string> args = {
      "predict", "--model", Asset("models/yolov8n-dq.onnx"), "--source", Asset("images/bus.jpg"),
      "--json",  "-"};
  const auto run = testing::RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << testing::DescribeRun(args, run);
  const json cli = json::parse(run.out.substr(0, run.out.find('\n')), nullptr, false);
  ASSERT_FALSE(cli.is_discarded()) << run.out;

  // Same document apart from "source" and the timings.
  std::vector<std::string> server_keys, cli_keys;
  for (auto it = server.begin(); it != server.end(); ++it) server_keys.push_back(it.key());
  for (auto it = cli.begin(); it != cli.end(); ++it) cli_keys.push_back(it.key());
  EXPECT_EQ(server_keys, cli_keys);
  for (const char* key : {"width", "height", "task"}) EXPECT_EQ(server[key], cli[key]) << key;
  EXPECT_EQ(server["width"], 810);
  EXPECT_EQ(server["height"], 1080);
  for (const char* key : {"decode", "preprocess", "inference", "postprocess"}) {
    EXPECT_TRUE(server["speed_ms"][key].is_number()) << key;
  }
  const json& a = server["detections"];
  const json& b = cli["detections"];
  ASSERT_EQ(a.size(), b.size()) << r.body << "\n" << run.out;
  ASSERT_EQ(a.size(), 5u) << r.body;
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(a[i]["class_id"], b[i]["class_id"]);
    EXPECT_EQ(a[i]["class_name"], b[i]["class_name"]);
    EXPECT_NEAR(a[i]["confidence"].get<double>(), b[i]["confidence"].get<double>(), 1e-4);
    for (const char* k : {"x1", "y1", "x2", "y2"}) {
      EXPECT_NEAR(a[i]["box"][k].get<double>(), b[i]["box"][k].get<double>(), 0.5) << k;
    }
  }
  EXPECT_EQ(CountClass(server, kPersonClass), 4);
  EXPECT_EQ(CountClass(server, kBusClass), 1);
}

TEST_F(ServerApiTest, PredictAcceptsPngBmpAndWebp) {
  const int persons = CountClass(BusResult(), kPersonClass);
  ASSERT_EQ(persons, 4) << BusResult();
  struct Case {
    const char* ext;
    const char* type;
  };
  for (const Case& c :
       {Case{".png", "image/png"}, Case{".bmp", "image/bmp"}, Case{".webp", "image/webp"}}) {
    SCOPED_TRACE(c.ext);
    const std::string bytes = Encode(c.ext);
    ASSERT_FALSE(bytes.empty()) << "OpenCV cannot encode " << c.ext;
    const HttpReply r = PostImage(port(), bytes, "", c.type);
    ASSERT_EQ(r.status, 200) << Describe(r);
    const json doc = ParseJson(r);
    EXPECT_EQ(doc["width"], 810);
    EXPECT_EQ(doc["height"], 1080);
    EXPECT_NEAR(CountClass(doc, kPersonClass), persons, 1) << r.body;
    EXPECT_EQ(CountClass(doc, kBusClass), 1) << r.body;
  }
  // No Content-Type at all, or octet-stream: sniffed from the bytes.
  const HttpReply untyped = Http(port(), "POST", kPredict, BusJpeg());
  ASSERT_EQ(untyped.status, 200) << Describe(untyped);
  EXPECT_EQ(ParseJson(untyped)["detections"].size(), BusResult()["detections"].size());
  EXPECT_EQ(PostImage(port(), Encode(".png"), "", "application/octet-stream").status, 200);
}

TEST_F(ServerApiTest, PredictMultipartFormData) {
  const std::string boundary = "----cvdeployTestBoundary7MA4YWxk";
  const std::string type = "multipart/form-data; boundary=" + boundary;
  const std::string body = "--" + boundary +
                           "\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--" +
                           boundary +
                           "\r\nContent-Disposition: form-data; name=\"image\"; "
                           "filename=\"my bus.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n" +
                           BusJpeg() + "\r\n--" + boundary + "--\r\n";
  const HttpReply r = PostImage(port(), body, "", type);
  ASSERT_EQ(r.status, 200) << Describe(r);
  const json doc = ParseJson(r);
  EXPECT_EQ(doc["source"], "my bus.jpg");
  EXPECT_EQ(doc["detections"], BusResult()["detections"]);

  const std::string no_image = "--" + boundary +
                               "\r\nContent-Disposition: form-data; name=\"file\"; "
                               "filename=\"bus.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n" +
                               BusJpeg() + "\r\n--" + boundary + "--\r\n";
  EXPECT_TRUE(IsJsonError(PostImage(port(), no_image, "", type), 400, "'image'"));
  // Malformed: no closing delimiter; no boundary parameter.
  EXPECT_TRUE(IsJsonError(PostImage(port(), body.substr(0, body.size() - 30), "", type), 400));
  EXPECT_TRUE(IsJsonError(PostImage(port(), body, "", "multipart/form-data"), 400, "boundary"));
}

TEST_F(ServerApiTest, PredictQueryParameters) {
  const json& base = BusResult();
  ASSERT_EQ(base["detections"].size(), 5u) << base;

  const HttpReply conf = PostImage(port(), BusJpeg(), "?conf=0.5");
  ASSERT_EQ(conf.status, 200) << Describe(conf);
  const json conf_doc = ParseJson(conf);
  EXPECT_LT(conf_doc["detections"].size(), base["detections"].size());
  EXPECT_FALSE(conf_doc["detections"].empty());
  for (const auto& d : conf_doc["detections"]) EXPECT_GE(d["confidence"].get<double>(), 0.5);

  const HttpReply buses = PostImage(port(), BusJpeg(), "?classes=5");
  ASSERT_EQ(buses.status, 200) << Describe(buses);
  const json buses_doc = ParseJson(buses);
  ASSERT_EQ(buses_doc["detections"].size(), 1u) << buses.body;
  EXPECT_EQ(buses_doc["detections"][0]["class_name"], "bus");

  const HttpReply two_classes = PostImage(port(), BusJpeg(), "?classes=0,5");
  ASSERT_EQ(two_classes.status, 200) << Describe(two_classes);
  EXPECT_EQ(ParseJson(two_classes)["detections"].size(), base["detections"].size());

  const HttpReply one = PostImage(port(), BusJpeg(), "?max_det=1");
  ASSERT_EQ(one.status, 200) << Describe(one);
  const json one_doc = ParseJson(one);
  ASSERT_EQ(one_doc["detections"].size(), 1u) << one.body;
  EXPECT_EQ(one_doc["detections"][0], base["detections"][0]);

  const HttpReply iou = PostImage(port(), BusJpeg(), "?iou=0.5&agnostic=true");
  ASSERT_EQ(iou.status, 200) << Describe(iou);
  EXPECT_GE(ParseJson(iou)["detections"].size(), 4u) << iou.body;

  const HttpReply annotated = PostImage(port(), BusJpeg(), "?annotate=1");
  ASSERT_EQ(annotated.status, 200) << Describe(annotated);
  EXPECT_EQ(HeaderOf(annotated, "content-type"), "image/jpeg");
  const std::vector<uint8_t> jpeg(annotated.body.begin(), annotated.body.end());
  const cv::Mat image = cv::imdecode(jpeg, cv::IMREAD_COLOR);
  ASSERT_FALSE(image.empty());
  EXPECT_EQ(image.cols, 810);
  EXPECT_EQ(image.rows, 1080);
  // Boxes were drawn: the result differs from the plain decoded input.
  const cv::Mat original = cv::imread(Asset("images/bus.jpg"), cv::IMREAD_COLOR);
  cv::Mat diff;
  cv::absdiff(image, original, diff);
  cv::Mat gray;
  cv::cvtColor(diff, gray, cv::COLOR_BGR2GRAY);
  EXPECT_GT(cv::countNonZero(gray > 60), 1000);
}

TEST_F(ServerApiTest, AnnotatedImageHonoursLineWidthAndHideFlags) {
  const cv::Mat original = cv::imread(Asset("images/bus.jpg"), cv::IMREAD_COLOR);
  auto draw = [&](const std::string& query) {
    const HttpReply reply = PostImage(port(), BusJpeg(), "?annotate=1&classes=5" + query);
    EXPECT_EQ(reply.status, 200) << Describe(reply);
    const std::vector<uint8_t> jpeg(reply.body.begin(), reply.body.end());
    const cv::Mat image = cv::imdecode(jpeg, cv::IMREAD_COLOR);
    EXPECT_FALSE(image.empty());
    return image;
  };
  auto changed = [&](const cv::Mat& image, cv::Rect roi) {
    cv::Mat diff, gray;
    cv::absdiff(image(roi), original(roi), diff);
    cv::cvtColor(diff, gray, cv::COLOR_BGR2GRAY);
    return cv::countNonZero(gray > 60);
  };
  const cv::Rect edge(0, 550, 80, 100), tag(0, 180, 810, 45);  // the bus's left edge and tag
  const cv::Mat normal = draw(""), wide = draw("&line_width=12");
  const cv::Mat no_labels = draw("&hide_labels=1"), no_conf = draw("&hide_conf=true");
  EXPECT_GT(changed(wide, edge), 2 * changed(normal, edge));
  EXPECT_LT(changed(no_labels, tag), changed(normal, tag) / 5);
  EXPECT_LT(changed(no_conf, tag), changed(normal, tag));
  EXPECT_GT(changed(no_conf, tag), changed(no_labels, tag));
  EXPECT_TRUE(
      IsJsonError(PostImage(port(), BusJpeg(), "?annotate=1&line_width=0"), 400, "line_width"));
  EXPECT_TRUE(IsJsonError(PostImage(port(), BusJpeg(), "?hide_conf=perhaps"), 400, "hide_conf"));
}

TEST_F(ServerApiTest, PredictRejectsBadParameters) {
  EXPECT_TRUE(IsJsonError(PostImage(port(), BusJpeg(), "?conf=2"), 400, "conf"));
  EXPECT_TRUE(IsJsonError(PostImage(port(), BusJpeg(), "?conf=abc"), 400, "conf"));
  EXPECT_TRUE(IsJsonError(PostImage(port(), BusJpeg(), "?iou=-0.1"), 400, "iou"));
  EXPECT_TRUE(IsJsonError(PostImage(port(), BusJpeg(), "?max_det=0"), 400, "max_det"));
  EXPECT_TRUE(IsJsonError(PostImage(port(), BusJpeg(), "?classes=80"), 400, "classes"));
  EXPECT_TRUE(IsJsonError(PostImage(port(), BusJpeg(), "?classes=1,,2"), 400, "classes"));
  EXPECT_TRUE(IsJsonError(PostImage(port(), BusJpeg(), "?annotate=maybe"), 400, "annotate"));
  EXPECT_TRUE(IsJsonError(PostImage(port(), BusJpeg(), "?colour=red"), 400, "colour"));
  EXPECT_TRUE(IsJsonError(PostImage(port(), BusJpeg(), "?imgsz=320"), 400, "640"));
  EXPECT_TRUE(IsJsonError(
      PostImage(port(), BusJpeg(), "", "image/jpeg", {{"X-Request-Timeout-Ms", "soon"}}), 400,
      "X-Request-Timeout-Ms"));
  EXPECT_TRUE(IsJsonError(Http(port(), "POST", std::string(kPredict) + "?conf=%zz", BusJpeg(),
                               {{"Content-Type", "image/jpeg"}}),
                          400));
}

// A segmentation model served on its own: retina_masks=true switches the mask rule per
// request (the boxes stay, the outlines change), and a bad value is a 400.
TEST(ServerSegmentTest, RetinaMasksQueryParameter) {
  ServerProcess server({"--model", Asset("models/yolov8n-seg-dq.onnx")});
  ASSERT_TRUE(server.WaitReady()) << server.Stderr();
  const std::string route = "/v1/models/yolov8n-seg-dq/predict";
  const std::map<std::string, std::string> jpeg = {{"Content-Type", "image/jpeg"}};
  const HttpReply plain = Http(server.port(), "POST", route, BusJpeg(), jpeg);
  const HttpReply retina =
      Http(server.port(), "POST", route + "?retina_masks=true", BusJpeg(), jpeg);
  ASSERT_EQ(plain.status, 200) << Describe(plain);
  ASSERT_EQ(retina.status, 200) << Describe(retina);
  const json a = ParseJson(plain), b = ParseJson(retina);
  EXPECT_EQ(a["task"], "segment");
  ASSERT_EQ(a["detections"].size(), b["detections"].size());
  ASSERT_GE(a["detections"].size(), 4u);
  bool differs = false;
  for (size_t k = 0; k < a["detections"].size(); ++k) {
    EXPECT_EQ(a["detections"][k]["box"], b["detections"][k]["box"]);
    EXPECT_GE(b["detections"][k]["polygon"].size(), 3u);
    differs = differs || a["detections"][k]["polygon"] != b["detections"][k]["polygon"];
  }
  EXPECT_TRUE(differs);
  EXPECT_TRUE(
      IsJsonError(Http(server.port(), "POST", route + "?retina_masks=sometimes", BusJpeg(), jpeg),
                  400, "retina_masks"));
}

TEST_F(ServerApiTest, PredictRejectsBadBodies) {
  // A wrong type on a body that is no image either (an image is sniffed: server_friction_test).
  EXPECT_TRUE(IsJsonError(PostImage(port(), "name=bus.jpg", "", "text/plain"), 415, "text/plain"));
  EXPECT_TRUE(IsJsonError(PostImage(port(), "", "", "image/jpeg"), 400, "empty"));
  std::string random(4096, '\0');
  uint32_t state = 12345;
  for (char& c : random) {
    state = state * 1664525u + 1013904223u;
    c = static_cast<char>(state >> 24);
  }
  random[0] = 'x';  // not a JPEG/PNG/WebP/BMP signature
  EXPECT_TRUE(IsJsonError(PostImage(port(), random, "", "image/jpeg"), 415));

  // Cut after 30%: the header is intact, the scan data is not.
  const std::string truncated = BusJpeg().substr(0, BusJpeg().size() * 3 / 10);
  const HttpReply cut = PostImage(port(), truncated);
  EXPECT_TRUE(cut.status == 400 || cut.status == 422) << Describe(cut);
  EXPECT_TRUE(IsJsonError(cut, cut.status));

  EXPECT_EQ(Http(port(), "GET", "/v2/health/ready").status, 200);
}

TEST_F(ServerApiTest, DecompressionBombIsRefusedFromTheHeader) {
  const double rss_before = Metrics()["cvdeploy_process_resident_memory_bytes"];
  const std::string png = PngHeaderOnly(50000, 50000);  // 7.5 GB of RGB if decoded
  ASSERT_LT(png.size(), 64u);
  const auto t0 = Clock::now();
  EXPECT_TRUE(IsJsonError(PostImage(port(), png, "", "image/png"), 413, "50000x50000"));
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 5.0);
  const double rss_after = Metrics()["cvdeploy_process_resident_memory_bytes"];
  EXPECT_LT(rss_after - rss_before, 500e6) << "the server allocated the image";
  EXPECT_EQ(Http(port(), "GET", "/v2/health/live").status, 200);
}

TEST_F(ServerApiTest, HeaderAboveTheLimitIs431) {
  const HttpReply r = Http(port(), "GET", "/v2/health/live", "",
                           {{"X-Filler", std::string(kMaxHeaderBytes + 1000, 'a')}});
  EXPECT_TRUE(IsJsonError(r, 431, std::to_string(kMaxHeaderBytes)));
  // Below the limit is fine.
  EXPECT_EQ(Http(port(), "GET", "/v2/health/live", "",
                 {{"X-Filler", std::string(kMaxHeaderBytes / 2, 'a')}})
                .status,
            200);
}

// --- Request ids, access log, metrics ------------------------------------------------------

TEST_F(ServerApiTest, RequestIdIsEchoedOrGenerated) {
  const HttpReply sent =
      Http(port(), "GET", "/v2/health/live", "", {{"X-Request-Id", "client-id-42"}});
  ASSERT_EQ(sent.status, 200);
  EXPECT_EQ(HeaderOf(sent, "x-request-id"), "client-id-42");
  const HttpReply error = Http(port(), "GET", "/nope", "", {{"X-Request-Id", "client-id-43"}});
  EXPECT_EQ(HeaderOf(error, "x-request-id"), "client-id-43");

  const HttpReply a = Http(port(), "GET", "/v2/health/live");
  const HttpReply b = Http(port(), "GET", "/v2/health/live");
  EXPECT_FALSE(HeaderOf(a, "x-request-id").empty());
  EXPECT_FALSE(HeaderOf(b, "x-request-id").empty());
  EXPECT_NE(HeaderOf(a, "x-request-id"), HeaderOf(b, "x-request-id"));
}

TEST_F(ServerApiTest, AccessLogHasOneJsonLinePerRequest) {
  const std::string id = "access-log-check-7";
  const HttpReply r = PostImage(port(), BusJpeg(), "", "image/jpeg", {{"X-Request-Id", id}});
  ASSERT_EQ(r.status, 200) << Describe(r);
  const HttpReply bad =
      PostImage(port(), BusJpeg(), "?conf=7", "image/jpeg", {{"X-Request-Id", id + "-bad"}});
  ASSERT_EQ(bad.status, 400);

  // The log line is written after the response; give it a moment.
  std::vector<json> mine, mine_bad;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    mine.clear();
    mine_bad.clear();
    std::istringstream in(server_->Stdout());
    std::string line;
    size_t lines = 0;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      ++lines;
      const json record = json::parse(line, nullptr, false);
      ASSERT_TRUE(record.is_object()) << "not a JSON line: " << line;
      for (const char* key : {"time", "method", "path", "status", "latency_ms", "model", "version",
                              "batch_size", "bytes_in", "bytes_out", "client", "request_id"}) {
        ASSERT_TRUE(record.contains(key)) << key << " missing in " << line;
      }
      if (record["request_id"] == id) mine.push_back(record);
      if (record["request_id"] == id + "-bad") mine_bad.push_back(record);
    }
    ASSERT_GT(lines, 0u);
    if (!mine.empty() && !mine_bad.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(mine.size(), 1u);
  ASSERT_EQ(mine_bad.size(), 1u);
  const json& x = mine[0];
  EXPECT_TRUE(std::regex_match(x["time"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+.*)")))
      << x;
  EXPECT_EQ(x["method"], "POST");
  EXPECT_EQ(x["path"], kPredict);
  EXPECT_EQ(x["status"], 200);
  EXPECT_GT(x["latency_ms"].get<double>(), 0.0);
  EXPECT_EQ(x["model"], kModel);
  EXPECT_EQ(x["version"], "1");
  EXPECT_EQ(x["batch_size"], 1);
  EXPECT_GE(x["bytes_in"].get<size_t>(), BusJpeg().size());
  EXPECT_GE(x["bytes_out"].get<size_t>(), r.body.size());
  EXPECT_EQ(x["client"].get<std::string>().rfind("127.0.0.1:", 0), 0u) << x;
  const json& y = mine_bad[0];
  EXPECT_EQ(y["status"], 400);
  EXPECT_EQ(y["model"], kModel);
  EXPECT_EQ(y["batch_size"], 0);
}

TEST_F(ServerApiTest, MetricsCountRequestsAndStages) {
  const HttpReply text = Http(port(), "GET", "/metrics");
  ASSERT_EQ(text.status, 200) << Describe(text);
  EXPECT_EQ(HeaderOf(text, "content-type").rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_NE(text.body.find("# TYPE cvdeploy_inference_request_success_total counter"),
            std::string::npos);
  EXPECT_NE(text.body.find("# TYPE cvdeploy_request_duration_seconds histogram"),
            std::string::npos);

  const auto before = ParseMetrics(text.body);
  const std::vector<std::string> histograms = {
      "cvdeploy_request_duration_seconds",   "cvdeploy_queue_duration_seconds",
      "cvdeploy_decode_duration_seconds",    "cvdeploy_preprocess_duration_seconds",
      "cvdeploy_inference_duration_seconds", "cvdeploy_postprocess_duration_seconds"};
  for (const auto& h : histograms) {
    EXPECT_TRUE(before.count(h + "_count" + kLabels)) << h;
    EXPECT_TRUE(before.count(h + "_sum" + kLabels)) << h;
  }
  for (const char* key :
       {"cvdeploy_inference_request_success_total", "cvdeploy_inference_request_failure_total",
        "cvdeploy_pending_requests"}) {
    EXPECT_TRUE(before.count(key + kLabels)) << key;
  }
  EXPECT_GT(before.at("cvdeploy_process_resident_memory_bytes"), 0.0);

  constexpr int kSuccesses = 3;
  for (int i = 0; i < kSuccesses; ++i) ASSERT_EQ(PostImage(port(), BusJpeg()).status, 200);
  // Failures the model counts: every 4xx after the model was found.
  ASSERT_EQ(PostImage(port(), BusJpeg(), "?conf=2").status, 400);
  ASSERT_EQ(PostImage(port(), "name=bus.jpg", "", "text/plain").status, 415);
  ASSERT_EQ(PostImage(port(), PngHeaderOnly(50000, 50000), "", "image/png").status, 413);
  ASSERT_EQ(Http(port(), "POST", kInfer, "{bad", {{"Content-Type", "application/json"}}).status,
            400);
  constexpr int kFailures = 4;
  // Not counted for the model: unknown model, a route without one.
  ASSERT_EQ(Http(port(), "POST", "/v1/models/other/predict", BusJpeg()).status, 404);

  const auto after = Metrics();
  auto delta = [&](const std::string& key) {
    EXPECT_TRUE(after.count(key)) << key;
    return after.count(key) ? after.at(key) - (before.count(key) ? before.at(key) : 0.0) : -1.0;
  };
  EXPECT_EQ(delta("cvdeploy_inference_request_success_total" + kLabels), kSuccesses);
  EXPECT_EQ(delta("cvdeploy_inference_request_failure_total" + kLabels), kFailures);
  EXPECT_EQ(delta("cvdeploy_inference_count_total" + kLabels), kSuccesses);
  EXPECT_EQ(delta("cvdeploy_inference_exec_count_total" + kLabels), kSuccesses);
  for (const auto& h : histograms) {
    EXPECT_EQ(delta(h + "_count" + kLabels), kSuccesses) << h;
    EXPECT_GT(delta(h + "_sum" + kLabels), 0.0) << h;
    EXPECT_EQ(after.at(h + "_bucket{model=\"yolov8n-dq\",version=\"1\",le=\"+Inf\"}"),
              after.at(h + "_count" + kLabels))
        << h;
  }
  EXPECT_EQ(after.at("cvdeploy_pending_requests" + kLabels), 0.0);
  EXPECT_EQ(after.at("cvdeploy_model_ready" + kLabels), 1.0);
  EXPECT_GT(after.at("cvdeploy_process_resident_memory_bytes"), 10e6);
  EXPECT_GE(delta("cvdeploy_http_requests_total"), kSuccesses + kFailures);
}

// ---------------------------------------------------------------------------------------
// A second server: /metrics on its own (ephemeral) port and a small body limit.

constexpr int kMaxBodyBytes = 2'000'000;

class ServerLimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      server_ = new ServerProcess({"--model", Asset("models/yolov8n-dq.onnx"), "--metrics-port",
                                   "0", "--max-body-bytes", std::to_string(kMaxBodyBytes)});
      if (!server_->WaitReady(60)) start_error_ = "not ready in 60 s: " + server_->Stderr();
    } catch (const std::exception& e) {
      start_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(server_ != nullptr && start_error_.empty()) << "server start: " << start_error_;
  }

  static ServerProcess* server_;
  static std::string start_error_;
};

ServerProcess* ServerLimitsTest::server_ = nullptr;
std::string ServerLimitsTest::start_error_;

TEST_F(ServerLimitsTest, MetricsOnTheirOwnEphemeralPort) {
  const std::string err = server_->Stderr();
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(err, m, std::regex(R"(listening on \S+ \(metrics on port (\d+)\))")))
      << err;
  const int metrics_port = std::stoi(m[1]);
  ASSERT_GT(metrics_port, 0);
  EXPECT_NE(metrics_port, server_->port());

  const HttpReply metrics = Http(metrics_port, "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200) << Describe(metrics);
  EXPECT_EQ(HeaderOf(metrics, "content-type").rfind("text/plain", 0), 0u);
  const auto values = ParseMetrics(metrics.body);
  ASSERT_TRUE(values.count("cvdeploy_process_resident_memory_bytes")) << metrics.body;
  EXPECT_GT(values.at("cvdeploy_process_resident_memory_bytes"), 0.0);
  EXPECT_TRUE(values.count("cvdeploy_pending_requests" + kLabels)) << metrics.body;
  // The metrics port serves nothing else; the main port no longer serves /metrics.
  EXPECT_TRUE(IsJsonError(Http(metrics_port, "GET", "/v2/health/live"), 404));
  EXPECT_TRUE(IsJsonError(Http(server_->port(), "GET", "/metrics"), 404));
  EXPECT_EQ(Http(server_->port(), "GET", "/v2/health/live").status, 200);
}

TEST_F(ServerLimitsTest, BodyAboveTheLimitIs413) {
  const std::string big(3'000'000, 'x');
  EXPECT_TRUE(
      IsJsonError(Http(server_->port(), "POST", kPredict, big, {{"Content-Type", "image/jpeg"}}),
                  413, std::to_string(kMaxBodyBytes)));
  EXPECT_TRUE(IsJsonError(
      Http(server_->port(), "POST", kInfer, big, {{"Content-Type", "application/json"}}), 413));
  // Below the limit still works, and the server is alive.
  const HttpReply ok = PostImage(server_->port(), BusJpeg());
  EXPECT_EQ(ok.status, 200) << Describe(ok);
}

}  // namespace
}  // namespace cvdeploy::testing
