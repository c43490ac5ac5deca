// SPDX-License-Identifier: Apache-2.0
// Shared pieces of the server API integration tests: the routes of the served sample model
// yolov8n-dq, checks of HTTP replies and the JSON error document, the image predict request,
// a Prometheus text parser, and the ServerApiTest fixture (one server per suite).
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "support/server_process.h"

namespace cvdeploy::testing {

inline constexpr char kModel[] = "yolov8n-dq";
inline constexpr char kPredict[] = "/v1/models/yolov8n-dq/predict";
inline constexpr char kInfer[] = "/v2/models/yolov8n-dq/infer";
inline constexpr int kPersonClass = 0;
inline constexpr int kBusClass = 5;

// Status, transport error and the start of the body, for assertion messages.
std::string Describe(const HttpReply& r);

// The value of a header ("" when absent); `lower_name` in lower case.
std::string HeaderOf(const HttpReply& r, const std::string& lower_name);

// The reply has `status` and the error document {"error": "<one non-empty line>"} (and
// nothing else), served as application/json; the reason contains `needle`.
::testing::AssertionResult IsJsonError(const HttpReply& r, int status,
                                       const std::string& needle = "");

// The body as JSON; fails the test (and returns a discarded value) when it is not JSON.
nlohmann::json ParseJson(const HttpReply& r);

// The bytes of the sample images/bus.jpg.
std::string BusJpeg();

// POST `bytes` to the predict route of the sample model, with `query` appended.
HttpReply PostImage(int port, const std::string& bytes, const std::string& query = "",
                    const std::string& content_type = "image/jpeg",
                    std::map<std::string, std::string> headers = {});

// Prometheus text exposition: "name{labels} value" lines, comments skipped.
std::map<std::string, double> ParseMetrics(const std::string& text);

// ---------------------------------------------------------------------------------------
// The main server: default options except a smaller header limit.

inline constexpr int kMaxHeaderBytes = 8192;

class ServerApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  static int port() { return server_->port(); }
  static std::map<std::string, double> Metrics();
  // The JSON predict result for bus.jpg with default options (computed once).
  static const nlohmann::json& BusResult();

  static ServerProcess* server_;
  static std::string start_error_;
};

}  // namespace cvdeploy::testing
