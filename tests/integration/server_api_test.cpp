// SPDX-License-Identifier: Apache-2.0
// The HTTP API of `cvdeploy serve` end to end, against a real server process serving the
// sample yolov8n-dq.onnx: every route (health, metadata, readiness, KServe v2 infer in JSON
// and binary form, the image predict endpoint, /metrics, the disabled repository API), their
// error paths and statuses, transport limits, request ids, the access log, keep-alive and
// pipelining. One server per suite keeps the runtime low.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cvdeploy/build_info.h"
#include "support/assets.h"
#include "support/process.h"
#include "support/server_process.h"

namespace cvdeploy {
namespace {

using json = nlohmann::json;
using testing::Asset;
using testing::ConnectRaw;
using testing::Http;
using testing::HttpReply;
using testing::ReadFileText;
using testing::ReadRaw;
using testing::SendRaw;
using testing::ServerProcess;
using Clock = std::chrono::steady_clock;

constexpr char kModel[] = "yolov8n-dq";
constexpr char kPredict[] = "/v1/models/yolov8n-dq/predict";
constexpr char kInfer[] = "/v2/models/yolov8n-dq/infer";
constexpr int kSide = 640;
constexpr size_t kInputFloats = 3 * kSide * kSide;
constexpr size_t kOutputFloats = 84 * 8400;
constexpr int kPersonClass = 0;
constexpr int kBusClass = 5;

// ---------------------------------------------------------------------------------------
// Helpers.

std::string Describe(const HttpReply& r) {
  std::string body = r.body.size() > 600 ? r.body.substr(0, 600) + "..." : r.body;
  return "status " + std::to_string(r.status) + (r.error.empty() ? "" : " (" + r.error + ")") +
         ", body: " + body;
}

std::string HeaderOf(const HttpReply& r, const std::string& lower_name) {
  auto it = r.headers.find(lower_name);
  return it == r.headers.end() ? std::string() : it->second;
}

// The reply has `status` and the error document {"error": "<one non-empty line>"} (and
// nothing else), served as application/json; the reason contains `needle`.
::testing::AssertionResult IsJsonError(const HttpReply& r, int status,
                                       const std::string& needle = "") {
  if (r.status != status) {
    return ::testing::AssertionFailure() << "expected " << status << ", got " << Describe(r);
  }
  if (HeaderOf(r, "content-type").rfind("application/json", 0) != 0) {
    return ::testing::AssertionFailure()
           << "Content-Type '" << HeaderOf(r, "content-type") << "', " << Describe(r);
  }
  json doc = json::parse(r.body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || doc.size() != 1 || !doc.contains("error") ||
      !doc["error"].is_string()) {
    return ::testing::AssertionFailure() << "not an {\"error\": string} document: " << r.body;
  }
  const std::string reason = doc["error"];
  if (reason.empty() || reason.find('\n') != std::string::npos) {
    return ::testing::AssertionFailure() << "reason is empty or not one line: " << r.body;
  }
  if (!needle.empty() && reason.find(needle) == std::string::npos) {
    return ::testing::AssertionFailure() << "reason '" << reason << "' lacks '" << needle << "'";
  }
  return ::testing::AssertionSuccess();
}

json ParseJson(const HttpReply& r) {
  json doc = json::parse(r.body, nullptr, false);
  EXPECT_FALSE(doc.is_discarded()) << Describe(r);
  return doc;
}

std::string BusJpeg() {
  static const std::string bytes = ReadFileText(Asset("images/bus.jpg"));
  return bytes;
}

std::string Encode(const std::string& ext) {
  const cv::Mat image = cv::imread(Asset("images/bus.jpg"), cv::IMREAD_COLOR);
  std::vector<uint8_t> out;
  if (image.empty() || !cv::imencode(ext, image, out)) return "";
  return std::string(out.begin(), out.end());
}

HttpReply PostImage(int port, const std::string& bytes, const std::string& query = "",
                    const std::string& content_type = "image/jpeg",
                    std::map<std::string, std::string> headers = {}) {
  headers["Content-Type"] = content_type;
  return Http(port, "POST", std::string(kPredict) + query, bytes, headers);
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

// bus.jpg letterboxed to 640x640 (pad 114, centred), RGB, CHW, /255.
std::vector<float> BusTensor() {
  const cv::Mat image = cv::imread(Asset("images/bus.jpg"), cv::IMREAD_COLOR);
  EXPECT_FALSE(image.empty());
  const double r = std::min(double(kSide) / image.cols, double(kSide) / image.rows);
  const int w = static_cast<int>(std::lround(image.cols * r));
  const int h = static_cast<int>(std::lround(image.rows * r));
  cv::Mat resized;
  cv::resize(image, resized, cv::Size(w, h), 0, 0, cv::INTER_LINEAR);
  cv::Mat canvas(kSide, kSide, CV_8UC3, cv::Scalar(114, 114, 114));
  resized.copyTo(canvas(cv::Rect((kSide - w) / 2, (kSide - h) / 2, w, h)));
  std::vector<float> tensor(kInputFloats);
  for (int y = 0; y < kSide; ++y) {
    for (int x = 0; x < kSide; ++x) {
      const cv::Vec3b& p = canvas.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c) {
        tensor[static_cast<size_t>(c) * kSide * kSide + y * kSide + x] = p[2 - c] / 255.0f;
      }
    }
  }
  return tensor;
}

std::string FloatText(float v) {
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), v);
  return std::string(buffer, end);
}

std::string JsonInferBody(const std::string& id, const std::vector<float>& data) {
  std::string body = R"({"id":")" + id +
                     R"(","inputs":[{"name":"images","datatype":"FP32","shape":[1,3,640,640],)"
                     R"("data":[)";
  body.reserve(data.size() * 11 + 200);
  for (size_t i = 0; i < data.size(); ++i) {
    if (i) body += ',';
    body += FloatText(data[i]);
  }
  body += R"(]}],"outputs":[{"name":"output0"}]})";
  return body;
}

struct BinaryBody {
  std::string body;
  std::map<std::string, std::string> headers;
};

// A request whose JSON header is `header` and whose binary section is `data`.
BinaryBody WithBinary(const json& header, const std::vector<float>& data) {
  BinaryBody b;
  b.body = header.dump();
  b.headers["Inference-Header-Content-Length"] = std::to_string(b.body.size());
  b.headers["Content-Type"] = "application/octet-stream";
  b.body.append(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
  return b;
}

json BinaryInferHeader(const std::string& id, const std::vector<int64_t>& shape,
                       const std::string& output = "output0") {
  size_t count = 1;
  for (int64_t d : shape) count *= static_cast<size_t>(d);
  return {{"id", id},
          {"inputs",
           {{{"name", "images"},
             {"datatype", "FP32"},
             {"shape", shape},
             {"parameters", {{"binary_data_size", count * sizeof(float)}}}}}},
          {"outputs", {{{"name", output}, {"parameters", {{"binary_data", true}}}}}}};
}

// KServe v2 REST schema checks (Open Inference Protocol): the documents the server returns.
const std::set<std::string> kDataTypes = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64",
                                          "INT8", "INT16", "INT32",  "INT64",  "FP16",
                                          "FP32", "FP64",  "BYTES"};

void CheckTensorShape(const json& t, int64_t min_dim, const std::string& where,
                      std::vector<std::string>& problems, uint64_t* count = nullptr) {
  if (!t.contains("shape") || !t["shape"].is_array()) {
    problems.push_back(where + ": shape must be an array");
    return;
  }
  uint64_t n = 1;
  for (const auto& d : t["shape"]) {
    if (!d.is_number_integer() || d.get<int64_t>() < min_dim) {
      problems.push_back(where + ": bad dimension " + d.dump());
      return;
    }
    if (d.get<int64_t>() > 0) n *= d.get<uint64_t>();
    if (d.get<int64_t>() == 0) n = 0;
  }
  if (count) *count = n;
}

// $inference_response; binary outputs must account for exactly `binary_bytes` bytes.
std::vector<std::string> CheckInferResponse(const json& doc, size_t binary_bytes) {
  std::vector<std::string> problems;
  if (!doc.is_object()) return {"response is not an object"};
  if (!doc.contains("model_name") || !doc["model_name"].is_string())
    problems.push_back("model_name must be a string");
  for (const char* key : {"model_version", "id"}) {
    if (doc.contains(key) && !doc[key].is_string())
      problems.push_back(std::string(key) + " must be a string");
  }
  if (doc.contains("parameters") && !doc["parameters"].is_object())
    problems.push_back("parameters must be an object");
  if (!doc.contains("outputs") || !doc["outputs"].is_array()) {
    problems.push_back("outputs must be an array");
    return problems;
  }
  uint64_t binary_total = 0;
  for (const auto& o : doc["outputs"]) {
    if (!o.is_object() || !o.contains("name") || !o["name"].is_string()) {
      problems.push_back("output without a string name");
      continue;
    }
    const std::string where = "output " + o["name"].get<std::string>();
    if (!o.contains("datatype") || !o["datatype"].is_string() || !kDataTypes.count(o["datatype"])) {
      problems.push_back(where + ": bad datatype");
      continue;
    }
    uint64_t count = 0;
    CheckTensorShape(o, 0, where, problems, &count);
    const bool binary = o.contains("parameters") && o["parameters"].contains("binary_data_size");
    if (binary) {
      if (o.contains("data")) problems.push_back(where + ": both data and binary_data_size");
      const auto& size = o["parameters"]["binary_data_size"];
      if (!size.is_number_unsigned() || size.get<uint64_t>() != count * 4) {
        problems.push_back(where + ": binary_data_size does not match the FP32 shape");
      } else {
        binary_total += size.get<uint64_t>();
      }
      continue;
    }
    if (!o.contains("data") || !o["data"].is_array()) {
      problems.push_back(where + ": data must be an array");
      continue;
    }
    if (o["data"].size() != count) problems.push_back(where + ": data size does not match shape");
    for (const auto& v : o["data"]) {
      if (!v.is_number()) {
        problems.push_back(where + ": non-numeric element " + v.dump());
        break;
      }
    }
  }
  if (binary_total != binary_bytes) {
    problems.push_back("binary sizes add up to " + std::to_string(binary_total) +
                       ", binary section has " + std::to_string(binary_bytes));
  }
  return problems;
}

// $metadata_model_response.
std::vector<std::string> CheckModelMetadata(const json& doc) {
  std::vector<std::string> problems;
  if (!doc.is_object()) return {"not an object"};
  for (const char* key : {"name", "platform"}) {
    if (!doc.contains(key) || !doc[key].is_string())
      problems.push_back(std::string(key) + " must be a string");
  }
  if (doc.contains("versions")) {
    if (!doc["versions"].is_array()) problems.push_back("versions must be an array");
    for (const auto& v : doc["versions"]) {
      if (!v.is_string()) problems.push_back("versions must hold strings");
    }
  }
  for (const char* key : {"inputs", "outputs"}) {
    if (!doc.contains(key) || !doc[key].is_array()) {
      problems.push_back(std::string(key) + " must be an array");
      continue;
    }
    for (const auto& t : doc[key]) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) {
        problems.push_back(std::string(key) + ": tensor without a string name");
        continue;
      }
      if (!t.contains("datatype") || !t["datatype"].is_string() || !kDataTypes.count(t["datatype"]))
        problems.push_back(std::string(key) + ": bad datatype");
      CheckTensorShape(t, -1, key, problems);
    }
  }
  return problems;
}

// Prometheus text exposition: "name{labels} value" lines, comments skipped.
std::map<std::string, double> ParseMetrics(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return out;
}

const std::string kLabels = R"({model="yolov8n-dq",version="1"})";

// One response cut out of raw bytes read from a socket.
struct RawResponse {
  int status = 0;
  std::string head, body;
};

std::string HeadValue(const std::string& head, const std::string& name) {
  std::string lower = head;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const size_t at = lower.find("\r\n" + name + ":");
  if (at == std::string::npos) return "";
  size_t start = at + 3 + name.size();
  while (start < head.size() && head[start] == ' ') ++start;
  const size_t end = head.find("\r\n", start);
  return head.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::vector<RawResponse> SplitResponses(const std::string& bytes) {
  std::vector<RawResponse> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t end = bytes.find("\r\n\r\n", pos);
    if (end == std::string::npos || bytes.compare(pos, 9, "HTTP/1.1 ") != 0) break;
    RawResponse r;
    r.head = bytes.substr(pos, end + 2 - pos);
    r.status = std::atoi(r.head.c_str() + 9);
    const size_t length = std::strtoul(HeadValue(r.head, "content-length").c_str(), nullptr, 10);
    r.body = bytes.substr(end + 4, length);
    pos = end + 4 + length;
    out.push_back(std::move(r));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The main server: default options except a smaller header limit.

constexpr int kMaxHeaderBytes = 8192;

class ServerApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      server_ = new ServerProcess({"--model", Asset("models/yolov8n-dq.onnx"), "--max-header-bytes",
                                   std::to_string(kMaxHeaderBytes)});
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
  static int port() { return server_->port(); }
  static std::map<std::string, double> Metrics() {
    const HttpReply r = Http(port(), "GET", "/metrics");
    EXPECT_EQ(r.status, 200) << Describe(r);
    return ParseMetrics(r.body);
  }
  // The JSON predict result for bus.jpg with default options (computed once).
  static const json& BusResult() {
    static const json result = [] {
      const HttpReply r = PostImage(port(), BusJpeg());
      EXPECT_EQ(r.status, 200) << Describe(r);
      return json::parse(r.body, nullptr, false);
    }();
    return result;
  }

  static ServerProcess* server_;
  static std::string start_error_;
};

ServerProcess* ServerApiTest::server_ = nullptr;
std::string ServerApiTest::start_error_;

// --- Health and metadata ---------------------------------------------------------------

TEST_F(ServerApiTest, HealthLiveAndReady) {
  const HttpReply live = Http(port(), "GET", "/v2/health/live");
  ASSERT_EQ(live.status, 200) << Describe(live);
  EXPECT_EQ(HeaderOf(live, "content-type"), "application/json");
  EXPECT_EQ(ParseJson(live), json({{"live", true}}));
  const HttpReply ready = Http(port(), "GET", "/v2/health/ready");
  ASSERT_EQ(ready.status, 200) << Describe(ready);
  EXPECT_EQ(ParseJson(ready), json({{"ready", true}}));
}

TEST_F(ServerApiTest, ServerMetadata) {
  const HttpReply r = Http(port(), "GET", "/v2");
  ASSERT_EQ(r.status, 200) << Describe(r);
  const json doc = ParseJson(r);
  EXPECT_EQ(doc["name"], "cvdeploy");
  EXPECT_EQ(doc["version"], CVDEPLOY_VERSION);
  ASSERT_TRUE(doc["extensions"].is_array()) << r.body;
  for (const auto& e : doc["extensions"]) EXPECT_TRUE(e.is_string()) << r.body;
  const auto& ext = doc["extensions"];
  EXPECT_NE(std::find(ext.begin(), ext.end(), "binary_tensor_data"), ext.end()) << r.body;
  // Model control is off, so the repository extension is not advertised.
  EXPECT_EQ(std::find(ext.begin(), ext.end(), "model_repository"), ext.end()) << r.body;
}

TEST_F(ServerApiTest, ModelMetadataWithAndWithoutVersion) {
  for (const std::string& target :
       {std::string("/v2/models/yolov8n-dq"), std::string("/v2/models/yolov8n-dq/versions/1")}) {
    SCOPED_TRACE(target);
    const HttpReply r = Http(port(), "GET", target);
    ASSERT_EQ(r.status, 200) << Describe(r);
    const json doc = ParseJson(r);
    EXPECT_EQ(CheckModelMetadata(doc), std::vector<std::string>()) << r.body;
    EXPECT_EQ(doc["name"], kModel);
    EXPECT_EQ(doc["versions"], json({"1"}));
    EXPECT_EQ(doc["inputs"], json::parse(R"([{"name":"images","datatype":"FP32",
                                              "shape":[1,3,640,640]}])"));
    EXPECT_EQ(doc["outputs"], json::parse(R"([{"name":"output0","datatype":"FP32",
                                               "shape":[1,84,8400]}])"));
    EXPECT_EQ(doc["parameters"]["task"], "detect") << r.body;
    EXPECT_EQ(doc["parameters"]["classes"], 80) << r.body;
  }
}

TEST_F(ServerApiTest, ModelAndVersionReadiness) {
  for (const std::string& target : {std::string("/v2/models/yolov8n-dq/ready"),
                                    std::string("/v2/models/yolov8n-dq/versions/1/ready")}) {
    SCOPED_TRACE(target);
    const HttpReply r = Http(port(), "GET", target);
    ASSERT_EQ(r.status, 200) << Describe(r);
    const json doc = ParseJson(r);
    EXPECT_EQ(doc["name"], kModel);
    EXPECT_EQ(doc["ready"], true);
    EXPECT_EQ(doc["version"], "1");
  }
}

TEST_F(ServerApiTest, UnknownModelAndVersionAre404BadVersionTextIs400) {
  EXPECT_TRUE(IsJsonError(Http(port(), "GET", "/v2/models/nope"), 404, "nope"));
  EXPECT_TRUE(IsJsonError(Http(port(), "GET", "/v2/models/nope/ready"), 404, "nope"));
  EXPECT_TRUE(IsJsonError(Http(port(), "GET", "/v2/models/nope/versions/1"), 404, "nope"));
  EXPECT_TRUE(IsJsonError(
      Http(port(), "POST", "/v2/models/nope/infer", "{}", {{"Content-Type", "application/json"}}),
      404, "nope"));
  EXPECT_TRUE(IsJsonError(
      Http(port(), "POST", "/v1/models/nope/predict", BusJpeg(), {{"Content-Type", "image/jpeg"}}),
      404, "nope"));
  EXPECT_TRUE(IsJsonError(Http(port(), "GET", "/v2/models/yolov8n-dq/versions/2"), 404));
  EXPECT_TRUE(IsJsonError(Http(port(), "GET", "/v2/models/yolov8n-dq/versions/2/ready"), 404));
  EXPECT_TRUE(IsJsonError(Http(port(), "POST", "/v2/models/yolov8n-dq/versions/2/infer", "{}",
                               {{"Content-Type", "application/json"}}),
                          404));
  EXPECT_TRUE(IsJsonError(Http(port(), "GET", "/v2/models/yolov8n-dq/versions/abc"), 400, "abc"));
  EXPECT_TRUE(IsJsonError(Http(port(), "GET", "/v2/models/yolov8n-dq/versions/0/ready"), 400));
  EXPECT_TRUE(IsJsonError(Http(port(), "GET", "/v2/models/yolov8n-dq/versions/-1"), 400));
}

TEST_F(ServerApiTest, WrongMethodIs405WithAllowHeader) {
  struct Case {
    const char* method;
    const char* target;
    const char* allow;
  };
  for (const Case& c :
       {Case{"DELETE", "/v2/health/live", "GET"}, Case{"POST", "/v2/health/ready", "GET"},
        Case{"POST", "/v2", "GET"}, Case{"PUT", "/v2/models/yolov8n-dq", "GET"},
        Case{"POST", "/v2/models/yolov8n-dq/versions/1/ready", "GET"},
        Case{"GET", "/v2/models/yolov8n-dq/infer", "POST"},
        Case{"GET", "/v1/models/yolov8n-dq/predict", "POST"}, Case{"POST", "/metrics", "GET"},
        Case{"GET", "/v2/repository/models/x/load", "POST"}}) {
    SCOPED_TRACE(std::string(c.method) + " " + c.target);
    const HttpReply r = Http(port(), c.method, c.target);
    EXPECT_TRUE(IsJsonError(r, 405, c.allow));
    EXPECT_EQ(HeaderOf(r, "allow"), c.allow);
  }
}

TEST_F(ServerApiTest, UnknownRouteIs404) {
  for (const char* target : {"/", "/nope", "/v2/models", "/v2/models/yolov8n-dq/explain",
                             "/v2/health/dead", "/v1/models/yolov8n-dq", "/v3"}) {
    SCOPED_TRACE(target);
    EXPECT_TRUE(IsJsonError(Http(port(), "GET", target), 404));
  }
  EXPECT_TRUE(IsJsonError(Http(port(), "GET", "/nope"), 404, "/nope"));
}

TEST_F(ServerApiTest, RepositoryApiIsDisabledByDefault) {
  EXPECT_TRUE(
      IsJsonError(Http(port(), "GET", "/v2/repository/index"), 403, "model control is disabled"));
  EXPECT_TRUE(IsJsonError(Http(port(), "POST", "/v2/repository/index", "{}"), 403,
                          "--model-control explicit"));
  EXPECT_TRUE(IsJsonError(Http(port(), "POST", "/v2/repository/models/x/load", "{}"), 403,
                          "model control is disabled"));
  EXPECT_TRUE(IsJsonError(Http(port(), "POST", "/v2/repository/models/yolov8n-dq/unload", "{}"),
                          403, "model control is disabled"));
  // Still serving.
  EXPECT_EQ(Http(port(), "GET", "/v2/models/yolov8n-dq/ready").status, 200);
}

// --- KServe v2 infer ----------------------------------------------------------------------

TEST_F(ServerApiTest, InferJsonAndBinaryGiveTheSameOutput) {
  const std::vector<float> input = BusTensor();

  // JSON in, JSON out.
  const HttpReply json_reply = Http(port(), "POST", kInfer, JsonInferBody("json-1", input),
                                    {{"Content-Type", "application/json"}});
  ASSERT_EQ(json_reply.status, 200) << Describe(json_reply);
  EXPECT_EQ(HeaderOf(json_reply, "content-type"), "application/json");
  EXPECT_EQ(HeaderOf(json_reply, "inference-header-content-length"), "");
  const json doc = ParseJson(json_reply);
  EXPECT_EQ(CheckInferResponse(doc, 0), std::vector<std::string>());
  EXPECT_EQ(doc["model_name"], kModel);
  EXPECT_EQ(doc["model_version"], "1");
  EXPECT_EQ(doc["id"], "json-1");
  ASSERT_EQ(doc["outputs"].size(), 1u);
  const json& out = doc["outputs"][0];
  EXPECT_EQ(out["name"], "output0");
  EXPECT_EQ(out["datatype"], "FP32");
  EXPECT_EQ(out["shape"], json({1, 84, 8400}));
  ASSERT_EQ(out["data"].size(), kOutputFloats);
  std::vector<float> from_json(kOutputFloats);
  for (size_t i = 0; i < kOutputFloats; ++i) from_json[i] = out["data"][i].get<float>();

  // The model sees the bus: a strong person and a strong bus score somewhere.
  auto max_score = [&](int cls) {
    const float* row = from_json.data() + (4 + cls) * 8400;
    return *std::max_element(row, row + 8400);
  };
  EXPECT_GT(max_score(kPersonClass), 0.8f);
  EXPECT_GT(max_score(kBusClass), 0.7f);

  // Binary in, binary out, unversioned and pinned to version 1.
  for (const std::string& target :
       {std::string(kInfer), std::string("/v2/models/yolov8n-dq/versions/1/infer")}) {
    SCOPED_TRACE(target);
    const BinaryBody request = WithBinary(BinaryInferHeader("bin-1", {1, 3, 640, 640}), input);
    const HttpReply r = Http(port(), "POST", target, request.body, request.headers);
    ASSERT_EQ(r.status, 200) << Describe(r);
    EXPECT_EQ(HeaderOf(r, "content-type"), "application/octet-stream");
    const std::string length_text = HeaderOf(r, "inference-header-content-length");
    ASSERT_FALSE(length_text.empty());
    const size_t header_length = std::stoul(length_text);
    ASSERT_LE(header_length, r.body.size());
    const json header = json::parse(r.body.substr(0, header_length), nullptr, false);
    ASSERT_FALSE(header.is_discarded()) << r.body.substr(0, header_length);
    const size_t binary_bytes = r.body.size() - header_length;
    EXPECT_EQ(CheckInferResponse(header, binary_bytes), std::vector<std::string>()) << header;
    EXPECT_EQ(header["model_name"], kModel);
    EXPECT_EQ(header["model_version"], "1");
    EXPECT_EQ(header["id"], "bin-1");
    ASSERT_EQ(header["outputs"].size(), 1u);
    const json& bout = header["outputs"][0];
    EXPECT_EQ(bout["name"], "output0");
    EXPECT_EQ(bout["datatype"], "FP32");
    EXPECT_EQ(bout["shape"], json({1, 84, 8400}));
    EXPECT_FALSE(bout.contains("data"));
    EXPECT_EQ(bout["parameters"]["binary_data_size"], kOutputFloats * sizeof(float));
    ASSERT_EQ(binary_bytes, kOutputFloats * sizeof(float));
    std::vector<float> from_binary(kOutputFloats);
    std::memcpy(from_binary.data(), r.body.data() + header_length, binary_bytes);
    size_t mismatches = 0, first = 0;
    for (size_t i = 0; i < kOutputFloats; ++i) {
      if (from_binary[i] != from_json[i] && mismatches++ == 0) first = i;
    }
    EXPECT_EQ(mismatches, 0u) << "first at " << first << ": binary " << from_binary[first]
                              << " vs JSON " << from_json[first];
  }
}

TEST_F(ServerApiTest, InferRejectsBadRequests) {
  const std::map<std::string, std::string> json_type = {{"Content-Type", "application/json"}};
  auto post = [&](const std::string& body) {
    return Http(port(), "POST", kInfer, body, json_type);
  };

  // A valid input but an output the model does not have.
  const std::vector<float> zeros(kInputFloats, 0.0f);
  const BinaryBody unknown_output =
      WithBinary(BinaryInferHeader("u", {1, 3, 640, 640}, "output7"), zeros);
  EXPECT_TRUE(IsJsonError(Http(port(), "POST", kInfer, unknown_output.body, unknown_output.headers),
                          400, "output7"));

  EXPECT_TRUE(
      IsJsonError(post(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[0]}]})"),
                  400, "unknown input 'x'"));
  EXPECT_TRUE(IsJsonError(
      post(R"({"inputs":[{"name":"images","datatype":"UINT8","shape":[1],"data":[0]}]})"), 400,
      "UINT8"));
  EXPECT_TRUE(IsJsonError(
      post(R"({"inputs":[{"name":"images","datatype":"FLOAT","shape":[1],"data":[0]}]})"), 400,
      "FLOAT"));
  // The right element count for its own shape, but not the model's shape.
  const BinaryBody small =
      WithBinary(BinaryInferHeader("s", {1, 3, 32, 32}), std::vector<float>(3 * 32 * 32, 0.5f));
  EXPECT_TRUE(IsJsonError(Http(port(), "POST", kInfer, small.body, small.headers), 400,
                          "shape [1,3,32,32]"));
  EXPECT_TRUE(IsJsonError(
      post(R"({"inputs":[{"name":"images","datatype":"FP32","shape":[3,640,640],"data":[0]}]})"),
      400));
  // Data length does not match the shape.
  EXPECT_TRUE(IsJsonError(
      post(
          R"({"inputs":[{"name":"images","datatype":"FP32","shape":[1,3,640,640],"data":[1,2,3]}]})"),
      400));
  // binary_data_size does not match the shape.
  {
    json header = BinaryInferHeader("b", {1, 3, 640, 640});
    header["inputs"][0]["parameters"]["binary_data_size"] = 12;
    const BinaryBody b = WithBinary(header, {1.0f, 2.0f, 3.0f});
    EXPECT_TRUE(IsJsonError(Http(port(), "POST", kInfer, b.body, b.headers), 400));
  }
  EXPECT_TRUE(IsJsonError(post("{not json"), 400));
  EXPECT_TRUE(IsJsonError(post("[1,2,3]"), 400));
  EXPECT_TRUE(IsJsonError(post("{}"), 400, "inputs"));
  EXPECT_TRUE(IsJsonError(post(R"({"inputs":[]})"), 400));
  EXPECT_TRUE(IsJsonError(post(""), 400));
  EXPECT_TRUE(
      IsJsonError(post(R"({"inputs":[{"name":"images","datatype":"FP32","shape":[1],"data":[0]},
                         {"name":"other","datatype":"FP32","shape":[1],"data":[0]}]})"),
                  400));
  // Inference-Header-Content-Length beyond the body, and not a number.
  EXPECT_TRUE(IsJsonError(Http(port(), "POST", kInfer, R"({"inputs":[]})",
                               {{"Content-Type", "application/octet-stream"},
                                {"Inference-Header-Content-Length", "99999"}}),
                          400));
  EXPECT_TRUE(IsJsonError(Http(port(), "POST", kInfer, R"({"inputs":[]})",
                               {{"Content-Type", "application/octet-stream"},
                                {"Inference-Header-Content-Length", "12abc"}}),
                          400));
  // Still serving after all of that.
  EXPECT_EQ(Http(port(), "GET", "/v2/health/ready").status, 200);
}

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

TEST_F(ServerApiTest, PredictRejectsBadBodies) {
  EXPECT_TRUE(IsJsonError(PostImage(port(), BusJpeg(), "", "text/plain"), 415, "text/plain"));
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
  EXPECT_NE(text.body.find("# TYPE cvdeploy_request_duration_us histogram"), std::string::npos);

  const auto before = ParseMetrics(text.body);
  const std::vector<std::string> histograms = {
      "cvdeploy_request_duration_us",   "cvdeploy_queue_duration_us",
      "cvdeploy_decode_duration_us",    "cvdeploy_preprocess_duration_us",
      "cvdeploy_inference_duration_us", "cvdeploy_postprocess_duration_us"};
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
  ASSERT_EQ(PostImage(port(), BusJpeg(), "", "text/plain").status, 415);
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

// --- Connection handling ---------------------------------------------------------------------

TEST_F(ServerApiTest, KeepAliveAndPipelining) {
  const int fd = ConnectRaw(port());
  ASSERT_GE(fd, 0);
  auto request = [](const std::string& id, bool close) {
    return "GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: " + id + "\r\n" +
           (close ? "Connection: close\r\n" : "") + "\r\n";
  };
  // One request, answered, connection kept open.
  ASSERT_TRUE(SendRaw(fd, request("keep-1", false)));
  std::string first;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (SplitResponses(first).empty() && Clock::now() < deadline) first += ReadRaw(fd, 0.2);
  ASSERT_EQ(SplitResponses(first).size(), 1u) << first;
  // Two more in a single write on the same connection; the last one asks to close.
  ASSERT_TRUE(SendRaw(fd, request("pipe-2", false) + request("pipe-3", true)));
  const std::string rest = ReadRaw(fd, 10);
  close(fd);
  std::vector<RawResponse> all = SplitResponses(first + rest);
  ASSERT_EQ(all.size(), 3u) << first + rest;
  const char* ids[] = {"keep-1", "pipe-2", "pipe-3"};
  for (size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(all[i].status, 200);
    EXPECT_EQ(HeadValue(all[i].head, "x-request-id"), ids[i]);
    EXPECT_EQ(json::parse(all[i].body, nullptr, false), json({{"live", true}}));
  }
  EXPECT_NE(HeadValue(all[0].head, "connection"), "close");
  EXPECT_NE(HeadValue(all[1].head, "connection"), "close");
  EXPECT_EQ(HeadValue(all[2].head, "connection"), "close");
}

TEST_F(ServerApiTest, NonHttpBytesGet400AndTheConnectionCloses) {
  // The start of a TLS ClientHello, as a client that speaks HTTPS to a plain port sends.
  static const char kTlsHello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 tls hello\r\n\r\n";
  for (const std::string& garbage : {std::string("THIS IS NOT HTTP AT ALL\r\n\r\n"),
                                     std::string(kTlsHello, sizeof(kTlsHello) - 1)}) {
    const int fd = ConnectRaw(port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendRaw(fd, garbage));
    const auto t0 = Clock::now();
    const std::string reply = ReadRaw(fd, 10);  // returns at EOF
    const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
    close(fd);
    EXPECT_LT(waited, 5.0) << "the connection was not closed";
    const auto responses = SplitResponses(reply);
    ASSERT_EQ(responses.size(), 1u) << reply;
    EXPECT_EQ(responses[0].status, 400);
    EXPECT_EQ(HeadValue(responses[0].head, "connection"), "close");
    const json doc = json::parse(responses[0].body, nullptr, false);
    ASSERT_TRUE(doc.is_object()) << reply;
    EXPECT_FALSE(doc.value("error", "").empty()) << reply;
  }
  // The server keeps serving.
  EXPECT_EQ(Http(port(), "GET", "/v2/health/live").status, 200);
  EXPECT_EQ(PostImage(port(), BusJpeg()).status, 200);
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
}  // namespace cvdeploy
