// SPDX-License-Identifier: Apache-2.0
// The KServe v2 HTTP API of `cvdeploy serve` end to end, against a real server process serving
// the sample yolov8n-dq.onnx: health, server and model metadata, readiness, routing errors
// (unknown model, version or route, wrong method), the disabled repository API, KServe v2
// infer in JSON and binary form and its error paths, keep-alive, pipelining and non-HTTP
// bytes. The image predict endpoint, request ids, the access log, metrics and limits are in
// server_predict_test.cpp. One server per suite keeps the runtime low.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <string>
#include <vector>

#include "cvdeploy/build_info.h"
#include "support/assets.h"
#include "support/server_api.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kSide = 640;
constexpr size_t kInputFloats = 3 * kSide * kSide;
constexpr size_t kOutputFloats = 84 * 8400;

// ---------------------------------------------------------------------------------------
// Helpers.

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
  for (const char* target : {"/nope", "/v2/models/", "/v2/models/yolov8n-dq/explain",
                             "/v2/health/dead", "/v1/models/yolov8n-dq", "/v3"}) {
    SCOPED_TRACE(target);
    EXPECT_TRUE(IsJsonError(Http(port(), "GET", target), 404));
  }
  EXPECT_TRUE(IsJsonError(Http(port(), "GET", "/nope"), 404, "/nope"));
}

// The index is readable by default; loading and unloading need --model-control explicit.
TEST_F(ServerApiTest, RepositoryWritesAreDisabledByDefault) {
  for (const char* method : {"GET", "POST"}) {
    const HttpReply index = Http(port(), method, "/v2/repository/index", "{}");
    ASSERT_EQ(index.status, 200) << Describe(index);
    const nlohmann::json body = ParseJson(index);
    ASSERT_TRUE(body.is_array()) << Describe(index);
    ASSERT_EQ(body.size(), 1u) << Describe(index);
    EXPECT_EQ(body[0].value("name", ""), kModel);
    EXPECT_EQ(body[0].value("state", ""), "READY");
  }
  EXPECT_TRUE(IsJsonError(Http(port(), "POST", "/v2/repository/models/x/load", "{}"), 403,
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

}  // namespace
}  // namespace cvdeploy::testing
