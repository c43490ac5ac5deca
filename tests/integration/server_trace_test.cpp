// SPDX-License-Identifier: Apache-2.0
// Request tracing of `cvdeploy serve` end to end (docs/server.md "Tracing"): W3C traceparent
// accepted and propagated (same trace id, a new span id), a fresh trace without or with a
// malformed header, tracestate passed on, ?debug=timings on predict and infer (six stages,
// only with the query), and trace ids and timings in the access log (--access-log FILE).
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "support/assets.h"
#include "support/server_api.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kTrace[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kParent[] = "00f067aa0ba902b7";
const char* const kStages[] = {"queue",     "decode",      "preprocess",
                               "inference", "postprocess", "encode"};

// "00-TRACE-SPAN-FLAGS" split; empty strings when the header is not a valid version 00 value.
struct Parent {
  std::string trace, span, flags;
};
Parent Split(const std::string& value) {
  static const std::regex re("^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$");
  std::smatch m;
  if (!std::regex_match(value, m, re)) return {};
  if (m[1].str() == std::string(32, '0') || m[2].str() == std::string(16, '0')) return {};
  return {m[1], m[2], m[3]};
}

class ServerTraceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    log_path_ = ::testing::TempDir() + "/trace_access_" + std::to_string(::getpid()) + ".log";
    std::remove(log_path_.c_str());
    server_ =
        new ServerProcess({"--model", Asset("models/yolov8n-dq.onnx"), "--access-log", log_path_});
    ASSERT_TRUE(server_->WaitReady());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    std::remove(log_path_.c_str());
  }
  int port() const { return server_->port(); }

  // The access log record of the request with `request_id` (waits for it briefly).
  static json AccessRecord(const std::string& request_id) {
    json found;
    WaitFor(
        [&] {
          std::istringstream in(ReadFileText(log_path_));
          std::string line;
          while (std::getline(in, line)) {
            const json record = json::parse(line, nullptr, false);
            if (record.is_object() && record.value("request_id", "") == request_id) {
              found = record;
              return true;
            }
          }
          return false;
        },
        5);
    return found;
  }

  static ServerProcess* server_;
  static std::string log_path_;
};
ServerProcess* ServerTraceTest::server_ = nullptr;
std::string ServerTraceTest::log_path_;

TEST_F(ServerTraceTest, KeepsTheCallersTraceWithANewSpan) {
  const std::string sent = std::string("00-") + kTrace + "-" + kParent + "-01";
  const HttpReply r = PostImage(port(), BusJpeg(), "", "image/jpeg",
                                {{"traceparent", sent}, {"tracestate", "congo=t61rcWkgMzE"}});
  ASSERT_EQ(r.status, 200) << Describe(r);
  const Parent p = Split(HeaderOf(r, "traceparent"));
  EXPECT_EQ(p.trace, kTrace) << HeaderOf(r, "traceparent");
  EXPECT_FALSE(p.span.empty());
  EXPECT_NE(p.span, kParent);
  EXPECT_EQ(p.flags, "01");
  EXPECT_EQ(HeaderOf(r, "tracestate"), "congo=t61rcWkgMzE");

  // Two requests in the same trace get different spans.
  const HttpReply again = Http(port(), "GET", "/v2/health/live", "", {{"traceparent", sent}});
  const Parent q = Split(HeaderOf(again, "traceparent"));
  EXPECT_EQ(q.trace, kTrace);
  EXPECT_NE(q.span, p.span);
}

TEST_F(ServerTraceTest, StartsAFreshTraceWithoutOrWithAMalformedHeader) {
  const HttpReply none = Http(port(), "GET", "/v2/health/live");
  ASSERT_EQ(none.status, 200) << Describe(none);
  const Parent a = Split(HeaderOf(none, "traceparent"));
  EXPECT_FALSE(a.trace.empty()) << HeaderOf(none, "traceparent");
  EXPECT_TRUE(HeaderOf(none, "tracestate").empty());

  const std::string malformed[] = {
      "garbage", std::string("00-") + std::string(32, '0') + "-" + kParent + "-01",
      std::string("00-4BF92F3577B34DA6A3CE929D0E0E4736-") + kParent + "-01",
      std::string("ff-") + kTrace + "-" + kParent + "-01"};
  for (const std::string& bad : malformed) {
    SCOPED_TRACE(bad);
    const HttpReply r = PostImage(port(), BusJpeg(), "", "image/jpeg",
                                  {{"traceparent", bad}, {"tracestate", "congo=x"}});
    ASSERT_EQ(r.status, 200) << Describe(r);
    const Parent p = Split(HeaderOf(r, "traceparent"));
    EXPECT_FALSE(p.trace.empty()) << HeaderOf(r, "traceparent");
    EXPECT_NE(p.trace, kTrace);
    EXPECT_NE(p.trace, a.trace);
    // A tracestate without a valid traceparent is dropped.
    EXPECT_TRUE(HeaderOf(r, "tracestate").empty());
  }
  // Error answers carry a traceparent too.
  const HttpReply missing = Http(port(), "GET", "/v2/models/no-such-model");
  EXPECT_EQ(missing.status, 404);
  EXPECT_FALSE(Split(HeaderOf(missing, "traceparent")).trace.empty());
}

TEST_F(ServerTraceTest, DebugTimingsOnPredictHasSixStagesWithinTheRequestTime) {
  const auto t0 = Clock::now();
  const HttpReply r = PostImage(port(), BusJpeg(), "?debug=timings");
  const double measured_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  ASSERT_EQ(r.status, 200) << Describe(r);
  const json body = ParseJson(r);
  ASSERT_TRUE(body.contains("timings")) << body.dump();
  ASSERT_FALSE(body["detections"].empty());
  const json& t = body["timings"];
  EXPECT_EQ(t.size(), 6u) << t;
  double sum = 0;
  for (const char* stage : kStages) {
    ASSERT_TRUE(t.contains(stage) && t[stage].is_number()) << stage << " in " << t;
    EXPECT_GE(t[stage].get<double>(), 0) << stage;
    sum += t[stage].get<double>();
  }
  EXPECT_GT(t["inference"].get<double>(), 0);
  EXPECT_LE(sum, measured_ms) << t;

  const HttpReply plain = PostImage(port(), BusJpeg());
  ASSERT_EQ(plain.status, 200) << Describe(plain);
  EXPECT_FALSE(ParseJson(plain).contains("timings"));
  EXPECT_TRUE(IsJsonError(PostImage(port(), BusJpeg(), "?debug=everything"), 400, "debug"));
}

TEST_F(ServerTraceTest, DebugTimingsOnInferGoesIntoTheJsonHeader) {
  const size_t count = 3 * 640 * 640;
  json header = {{"id", "t"},
                 {"inputs",
                  {{{"name", "images"},
                    {"datatype", "FP32"},
                    {"shape", {1, 3, 640, 640}},
                    {"parameters", {{"binary_data_size", count * sizeof(float)}}}}}},
                 {"outputs", {{{"name", "output0"}, {"parameters", {{"binary_data", true}}}}}}};
  std::string body = header.dump();
  const std::map<std::string, std::string> headers = {
      {"Inference-Header-Content-Length", std::to_string(body.size())},
      {"Content-Type", "application/octet-stream"}};
  body.append(count * sizeof(float), '\0');
  for (const bool debug : {true, false}) {
    SCOPED_TRACE(debug);
    const HttpReply r =
        Http(port(), "POST", std::string(kInfer) + (debug ? "?debug=timings" : ""), body, headers);
    ASSERT_EQ(r.status, 200) << Describe(r);
    const size_t length = std::stoul(HeaderOf(r, "inference-header-content-length"));
    ASSERT_LE(length, r.body.size());
    const json doc = json::parse(r.body.substr(0, length), nullptr, false);
    ASSERT_TRUE(doc.is_object()) << r.body.substr(0, std::min<size_t>(length, 300));
    EXPECT_EQ(doc["outputs"][0]["parameters"]["binary_data_size"].get<size_t>(),
              r.body.size() - length);
    EXPECT_EQ(doc.contains("timings"), debug) << doc;
    if (debug) {
      for (const char* stage : kStages) EXPECT_GE(doc["timings"][stage].get<double>(), 0);
      EXPECT_GT(doc["timings"]["inference"].get<double>(), 0);
    }
  }
}

TEST_F(ServerTraceTest, AccessLogCarriesTraceIdsAndTimings) {
  const std::string sent = std::string("00-") + kTrace + "-" + kParent + "-01";
  const HttpReply r = PostImage(port(), BusJpeg(), "", "image/jpeg",
                                {{"traceparent", sent}, {"X-Request-Id", "trace-log-1"}});
  ASSERT_EQ(r.status, 200) << Describe(r);
  const json record = AccessRecord("trace-log-1");
  ASSERT_TRUE(record.is_object()) << ReadFileText(log_path_);
  EXPECT_EQ(record["trace_id"], kTrace);
  EXPECT_EQ(record["span_id"], Split(HeaderOf(r, "traceparent")).span);
  ASSERT_TRUE(record.contains("timings")) << record;
  for (const char* stage : kStages) EXPECT_GE(record["timings"][stage].get<double>(), 0) << stage;
  EXPECT_GT(record["timings"]["inference"].get<double>(), 0);

  // A request that ran on no scheduler has ids but no timings.
  const HttpReply live =
      Http(port(), "GET", "/v2/health/live", "", {{"X-Request-Id", "trace-log-2"}});
  ASSERT_EQ(live.status, 200);
  const json other = AccessRecord("trace-log-2");
  ASSERT_TRUE(other.is_object());
  EXPECT_EQ(other["trace_id"], Split(HeaderOf(live, "traceparent")).trace);
  EXPECT_FALSE(other.contains("timings"));
}

}  // namespace
}  // namespace cvdeploy::testing
