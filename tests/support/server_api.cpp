// SPDX-License-Identifier: Apache-2.0
#include "support/server_api.h"

#include <cstdlib>
#include <exception>
#include <sstream>

#include "support/assets.h"

namespace cvdeploy::testing {

using json = nlohmann::json;

std::string Describe(const HttpReply& r) {
  std::string body = r.body.size() > 600 ? r.body.substr(0, 600) + "..." : r.body;
  return "status " + std::to_string(r.status) + (r.error.empty() ? "" : " (" + r.error + ")") +
         ", body: " + body;
}

std::string HeaderOf(const HttpReply& r, const std::string& lower_name) {
  auto it = r.headers.find(lower_name);
  return it == r.headers.end() ? std::string() : it->second;
}

::testing::AssertionResult IsJsonError(const HttpReply& r, int status, const std::string& needle) {
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

HttpReply PostImage(int port, const std::string& bytes, const std::string& query,
                    const std::string& content_type, std::map<std::string, std::string> headers) {
  headers["Content-Type"] = content_type;
  return Http(port, "POST", std::string(kPredict) + query, bytes, headers);
}

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

ServerProcess* ServerApiTest::server_ = nullptr;
std::string ServerApiTest::start_error_;

void ServerApiTest::SetUpTestSuite() {
  try {
    server_ = new ServerProcess({"--model", Asset("models/yolov8n-dq.onnx"), "--max-header-bytes",
                                 std::to_string(kMaxHeaderBytes)});
    if (!server_->WaitReady(60)) start_error_ = "not ready in 60 s: " + server_->Stderr();
  } catch (const std::exception& e) {
    start_error_ = e.what();
  }
}

void ServerApiTest::TearDownTestSuite() {
  delete server_;
  server_ = nullptr;
}

void ServerApiTest::SetUp() {
  ASSERT_TRUE(server_ != nullptr && start_error_.empty()) << "server start: " << start_error_;
}

std::map<std::string, double> ServerApiTest::Metrics() {
  const HttpReply r = Http(port(), "GET", "/metrics");
  EXPECT_EQ(r.status, 200) << Describe(r);
  return ParseMetrics(r.body);
}

const json& ServerApiTest::BusResult() {
  static const json result = [] {
    const HttpReply r = PostImage(port(), BusJpeg());
    EXPECT_EQ(r.status, 200) << Describe(r);
    return json::parse(r.body, nullptr, false);
  }();
  return result;
}

}  // namespace cvdeploy::testing
