// SPDX-License-Identifier: Apache-2.0
// `cvdeploy serve` against hostile clients, end to end on a real server process serving small
// synthetic models: JSON nested 100,000 deep, numbers out of range, request smuggling through
// Transfer-Encoding (RFC 9112 section 6.3), absolute-form and asterisk-form targets, NUL bytes
// in names, non-finite outputs in a JSON response, a client trickling its header, and one
// client opening more connections than --max-connections-per-client. After each attack the
// server must still answer.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/assets.h"
#include "support/onnx_builder.h"
#include "support/server_api.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kAnchors = 8;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Status lines in raw response bytes ("HTTP/1.1 400 ...").
std::vector<int> StatusLines(const std::string& raw) {
  std::vector<int> statuses;
  for (size_t at = raw.find("HTTP/1."); at != std::string::npos; at = raw.find("HTTP/1.", at + 1)) {
    // A status line starts the stream or follows a header block or a JSON body.
    if (at != 0 && raw[at - 1] != '\n' && raw[at - 1] != '}') continue;
    if (at + 12 <= raw.size()) statuses.push_back(std::atoi(raw.c_str() + at + 9));
  }
  return statuses;
}

// Reads from a kept-alive connection until `responses` status lines arrived or `timeout_s`
// passed (a loaded machine may be slow; a fixed wait would be flaky).
std::string ReadResponses(int fd, size_t responses, double timeout_s = 20) {
  std::string out;
  const auto started = Clock::now();
  while (StatusLines(out).size() < responses && SecondsSince(started) < timeout_s) {
    out += ReadRaw(fd, 0.1);
  }
  return out;
}

// A detector with input [1,3,64,64] and output0 [1,6,8]: two classes, all scores 0. With
// `non_finite`, anchors 0-2 have NaN, +Inf and -Inf coordinates (scores 0, so the image
// endpoint's decoding drops them).
SyntheticModel Detector(bool non_finite) {
  SyntheticModel m;
  m.input_shape = {1, 3, 64, 64};
  std::vector<float> values(6 * kAnchors, 1.0f);
  for (int a = 0; a < kAnchors; ++a) values[4 * kAnchors + a] = values[5 * kAnchors + a] = 0.0f;
  if (non_finite) {
    values[0] = std::numeric_limits<float>::quiet_NaN();
    values[1] = std::numeric_limits<float>::infinity();
    values[2] = -std::numeric_limits<float>::infinity();
  }
  m.outputs.push_back({"output0", {1, 6, kAnchors}, values});
  m.metadata = UltralyticsMetadata("detect", {"a", "b"});
  return m;
}

std::string Tensor64(const std::string& data) {
  return R"({"inputs":[{"name":"images","datatype":"FP32","shape":[1,3,64,64],"data":)" + data +
         "}]}";
}

std::string FlatData(const std::string& first = "0.5") {
  std::string data = "[" + first;
  for (int i = 1; i < 3 * 64 * 64; ++i) data += ",0.5";
  return data + "]";
}

std::string Nested(size_t depth, const std::string& inner = "") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

// One server per suite: "det" (finite outputs) and "nan" (NaN/Inf outputs), a 2 s read
// timeout and a 30 s idle timeout, so that the header-trickling test tells them apart.
class ServerRobustnessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = MakeTempDir("robustness");
    WriteModel(Detector(false), dir_ + "/det.onnx");
    WriteModel(Detector(true), dir_ + "/nan.onnx");
    try {
      server_ = std::make_unique<ServerProcess>(std::vector<std::string>{
          "--model", dir_ + "/det.onnx:det", "--model", dir_ + "/nan.onnx:nan", "--read-timeout",
          "2", "--idle-timeout", "30", "--instances", "1", "--threads", "1"});
      if (!server_->WaitReady(60)) start_error_ = "not ready: " + server_->Stderr();
    } catch (const std::exception& e) {
      start_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    server_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void SetUp() override { ASSERT_TRUE(start_error_.empty()) << start_error_; }
  void TearDown() override {
    // Whatever the test did, the server is alive and answers.
    const HttpReply live = Http(port(), "GET", "/v2/health/live", "", {}, 10);
    EXPECT_EQ(live.status, 200) << "after the test: " << Describe(live) << "\n"
                                << server_->Stderr();
  }
  static int port() { return server_->port(); }
  static HttpReply Infer(const std::string& model, const std::string& body) {
    return Http(port(), "POST", "/v2/models/" + model + "/infer", body,
                {{"Content-Type", "application/json"}}, 30);
  }

  static std::string dir_;
  static std::unique_ptr<ServerProcess> server_;
  static std::string start_error_;
};

std::string ServerRobustnessTest::dir_;
std::unique_ptr<ServerProcess> ServerRobustnessTest::server_;
std::string ServerRobustnessTest::start_error_;

// ---------------------------------------------------------------------------------------
// JSON.

TEST_F(ServerRobustnessTest, JsonNested100000DeepIs400) {
  constexpr size_t kDepth = 100000;
  const std::string input = R"({"name":"images","datatype":"FP32",)";
  const std::map<std::string, std::string> bodies = {
      {"data object element", Tensor64("[{\"a\":" + Nested(kDepth) + "}]")},
      {"shape", R"({"inputs":[)" + input + R"("shape":)" + Nested(kDepth) + R"(,"data":[1]}]})"},
      {"parameters", R"({"parameters":{"p":)" + Nested(kDepth, "1") + R"(},"inputs":[)" + input +
                         R"("shape":[1,3,64,64],"data":)" + FlatData() + "}]}"},
      {"binary_data_size", R"({"inputs":[)" + input +
                               R"("shape":[1,3,64,64],"parameters":{"binary_data_size":)" +
                               Nested(kDepth) + "}}]}"},
  };
  for (const auto& [where, body] : bodies) {
    SCOPED_TRACE(where);
    const HttpReply r = Infer("det", body);
    EXPECT_TRUE(IsJsonError(r, 400, "request body: JSON nested deeper than 64 levels"));
    const HttpReply live = Http(port(), "GET", "/v2/health/live", "", {}, 10);
    ASSERT_EQ(live.status, 200) << "the server died: " << Describe(live);
  }
  // The same in the JSON header of a binary-extension body.
  std::string binary = R"({"inputs":[)" + input +
                       R"("shape":[1,3,64,64],"parameters":{"binary_data_size":49152,"x":)" +
                       Nested(kDepth) + "}}]}";
  const size_t header_length = binary.size();
  binary.append(49152, '\0');
  const HttpReply r = Http(port(), "POST", "/v2/models/det/infer", binary,
                           {{"Content-Type", "application/octet-stream"},
                            {"Inference-Header-Content-Length", std::to_string(header_length)}},
                           30);
  EXPECT_TRUE(IsJsonError(r, 400, "nested deeper than 64 levels"));
}

TEST_F(ServerRobustnessTest, Depth65IsRefusedAndRank4DataServed) {
  // data at depth 4 + 61 more levels of arrays inside its first element: 65.
  EXPECT_TRUE(IsJsonError(Infer("det", Tensor64("[" + Nested(61, "1") + "]")), 400,
                          "nested deeper than 64"));
  // Rank-4 nested data, the legitimate deep case.
  std::string nested = "[";
  for (int c = 0; c < 3; ++c) {
    nested += c ? ",[" : "[";
    for (int y = 0; y < 64; ++y) {
      nested += y ? ",[" : "[";
      for (int x = 0; x < 64; ++x) nested += x ? ",0.5" : "0.5";
      nested += "]";
    }
    nested += "]";
  }
  nested += "]";
  const HttpReply r = Infer("det", Tensor64("[" + nested + "]"));
  ASSERT_EQ(r.status, 200) << Describe(r);
  EXPECT_EQ(ParseJson(r).at("outputs")[0].at("shape"), json::parse("[1,6,8]"));
}

TEST_F(ServerRobustnessTest, NumbersOutOfRangeAre400) {
  for (const std::string number : {"1e400", "-1e400"}) {
    EXPECT_TRUE(IsJsonError(Infer("det", Tensor64(FlatData(number))), 400, "invalid JSON"))
        << number;
  }
}

// ---------------------------------------------------------------------------------------
// Non-finite outputs.

TEST_F(ServerRobustnessTest, NonFiniteOutputsAreJsonStrings) {
  const HttpReply r = Infer("nan", Tensor64(FlatData()));
  ASSERT_EQ(r.status, 200) << Describe(r);
  const json doc = ParseJson(r);
  const json& data = doc.at("outputs")[0].at("data");
  ASSERT_EQ(data.size(), 6u * kAnchors);
  EXPECT_EQ(data[0], "NaN");
  EXPECT_EQ(data[1], "Infinity");
  EXPECT_EQ(data[2], "-Infinity");
  EXPECT_EQ(data[3], 1.0);
  // Binary output carries the bits; the image endpoint is not affected either.
  const HttpReply binary =
      Infer("nan", R"({"inputs":[{"name":"images","datatype":"FP32","shape":[1,3,64,64],"data":)" +
                       FlatData() +
                       R"(}],"outputs":[{"name":"output0","parameters":{"binary_data":true}}]})");
  EXPECT_EQ(binary.status, 200) << Describe(binary);
  const HttpReply image = Http(port(), "POST", "/v1/models/nan/predict", BusJpeg(),
                               {{"Content-Type", "image/jpeg"}}, 30);
  EXPECT_EQ(image.status, 200) << Describe(image);
}

// ---------------------------------------------------------------------------------------
// Messages with NUL bytes.

TEST_F(ServerRobustnessTest, NulBytesInNamesAreEscapedNotCut) {
  // A query parameter name, a JSON input name and a path, each with a NUL in the middle.
  EXPECT_TRUE(IsJsonError(Http(port(), "POST", "/v1/models/det/predict?co%00nf=1", BusJpeg(),
                               {{"Content-Type", "image/jpeg"}}),
                          400, "unknown query parameter 'co\\x00nf'"));
  EXPECT_TRUE(IsJsonError(
      Infer("det",
            R"({"inputs":[{"name":"ima\u0000ges","datatype":"FP32","shape":[1],"data":[1]}]})"),
      400, "unknown input 'ima\\x00ges'"));
  EXPECT_TRUE(IsJsonError(Http(port(), "GET", "/v2/models/de%00t/ready"), 404, "de\\x00t"));
}

// ---------------------------------------------------------------------------------------
// Request framing and targets over raw sockets.

// Sends `request`, reads until the server closes (or 5 s); returns what it sent back.
std::string Exchange(int port, const std::string& request, bool* closed) {
  const int fd = ConnectRaw(port);
  EXPECT_GE(fd, 0);
  if (fd < 0) return "";
  SendRaw(fd, request);
  std::string answer = ReadRaw(fd, 5.0);
  *closed = WaitClosed(fd, 0.5);
  close(fd);
  return answer;
}

TEST_F(ServerRobustnessTest, TransferEncodingOtherThanChunkedIsRefusedAndClosed) {
  // After each header comes a body that is also a complete request: a server that takes the
  // body for a second request answers twice.
  const std::string smuggled = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string chunked_smuggled = "29\r\n" + smuggled + "\r\n0\r\n\r\n";
  struct Case {
    std::string headers;
    std::string body;
    int status;
  };
  const std::vector<Case> cases = {
      {"Transfer-Encoding: gzip\r\n", smuggled, 400},
      {"Transfer-Encoding: identity\r\n", smuggled, 400},
      {"Transfer-Encoding: chunked, gzip\r\n", smuggled, 400},
      {"Transfer-Encoding: chunked, chunked\r\n", chunked_smuggled, 400},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunked_smuggled, 400},
      {"Transfer-Encoding: gzip, chunked\r\n", chunked_smuggled, 501},
      {"Transfer-Encoding: gzip\r\nContent-Length: 41\r\n", smuggled, 400},
      {"Content-Length: 41\r\nTransfer-Encoding: chunked\r\n", smuggled, 400},
      {"Transfer-Encoding: chunked\r\nContent-Length: 41\r\n", smuggled, 400},
      {"Content-Length: 41\r\nContent-Length: 0\r\n", smuggled, 400},
      {"Content-Length: 0, 41\r\n", smuggled, 400},
  };
  ASSERT_EQ(smuggled.size(), 41u);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.headers);
    bool closed = false;
    const std::string answer = Exchange(
        port(), "POST /v2/models/det/infer HTTP/1.1\r\nHost: x\r\n" + c.headers + "\r\n" + c.body,
        &closed);
    EXPECT_EQ(StatusLines(answer), std::vector<int>{c.status}) << answer;
    EXPECT_TRUE(Contains(answer, "\"error\"")) << answer;
    EXPECT_TRUE(closed) << "the connection stayed open after a framing error";
  }
  // HTTP/1.0 has no Transfer-Encoding.
  bool closed = false;
  const std::string answer = Exchange(
      port(), "POST /v2/models/det/infer HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      &closed);
  EXPECT_EQ(StatusLines(answer), std::vector<int>{400}) << answer;
  EXPECT_TRUE(closed);
  // A correct chunked request is still served (and the connection kept).
  const std::string body = Tensor64(FlatData());
  char size[32];
  std::snprintf(size, sizeof(size), "%zx", body.size());
  const int fd = ConnectRaw(port());
  ASSERT_GE(fd, 0);
  SendRaw(fd,
          "POST /v2/models/det/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
              std::string(size) + "\r\n" + body + "\r\n0\r\n\r\n" + smuggled);
  const std::string both = ReadResponses(fd, 2);
  close(fd);
  EXPECT_EQ(StatusLines(both), (std::vector<int>{200, 200})) << both.substr(0, 300);
}

TEST_F(ServerRobustnessTest, AbsoluteAndAsteriskFormTargets) {
  const std::string authority = "127.0.0.1:" + std::to_string(port());
  HttpReply r = Http(port(), "GET", "http://" + authority + "/v2/health/live");
  EXPECT_EQ(r.status, 200) << Describe(r);
  r = Http(port(), "GET", "HTTPS://example.com/v2/models/det/ready?x=1");
  EXPECT_EQ(r.status, 200) << Describe(r);
  r = Http(port(), "POST", "http://" + authority + "/v2/models/det/infer", Tensor64(FlatData()),
           {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, 200) << Describe(r);
  for (const std::string bad : {"ftp://h/v2/health/live", "http:///v2/health/live",
                                "http://user@h/v2/health/live", "v2/health/live"}) {
    EXPECT_TRUE(IsJsonError(Http(port(), "GET", bad), 400, "malformed request target")) << bad;
  }
  bool closed = false;
  std::string answer =
      Exchange(port(), "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &closed);
  EXPECT_EQ(StatusLines(answer), std::vector<int>{204}) << answer;
  EXPECT_TRUE(Contains(answer, "Allow: GET, POST")) << answer;
  answer = Exchange(port(), "GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &closed);
  EXPECT_EQ(StatusLines(answer), std::vector<int>{400}) << answer;
}

// ---------------------------------------------------------------------------------------
// Slow clients and connection limits.

TEST_F(ServerRobustnessTest, HeaderTricklingClientIsDroppedAtTheReadTimeout) {
  const int fd = ConnectRaw(port());
  ASSERT_GE(fd, 0);
  const std::string request = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  const auto started = Clock::now();
  bool dropped = false;
  // One byte every 200 ms: the header never completes. Give up well before --idle-timeout (30).
  for (size_t i = 0; !dropped && SecondsSince(started) < 20; ++i) {
    dropped = !SendRaw(fd, std::string(1, i < request.size() ? request[i] : 'a'));
    pollfd p{fd, POLLIN, 0};
    if (!dropped && poll(&p, 1, 200) > 0) {
      char c;
      dropped = recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
    }
  }
  const double held = SecondsSince(started);
  close(fd);
  EXPECT_TRUE(dropped) << "a client trickling its header was held for " << held << " s";
  EXPECT_GE(held, 1.5) << "dropped before --read-timeout (2 s)";
  EXPECT_LT(held, 15) << "held far beyond --read-timeout (2 s)";
}

TEST(ServerConnectionsPerClient, FourthConnectionFromOneAddressIsRefused) {
  const std::string dir = MakeTempDir("per_client");
  WriteModel(Detector(false), dir + "/det.onnx");
  ServerProcess server({"--model", dir + "/det.onnx:det", "--max-connections-per-client", "3"});
  const int port = server.port();
  ASSERT_TRUE(server.WaitReady(60)) << server.Stderr();
  const std::string get = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<int> held;
  // Three keep-alive connections, each proven accepted by an answer. The probes of WaitReady
  // may still be counted for a moment, so the first request is retried briefly.
  for (int i = 0; i < 3; ++i) {
    std::string answer;
    for (int attempt = 0; attempt < 20 && !Contains(answer, "HTTP/1.1 200"); ++attempt) {
      const int fd = ConnectRaw(port);
      ASSERT_GE(fd, 0);
      SendRaw(fd, get);
      answer = ReadResponses(fd, 1, 5);
      if (Contains(answer, "HTTP/1.1 200")) {
        held.push_back(fd);
      } else {
        close(fd);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    ASSERT_TRUE(Contains(answer, "HTTP/1.1 200")) << answer;
  }
  // The fourth is answered 503 with the reason and closed.
  bool closed = false;
  const std::string refused = Exchange(port, get, &closed);
  EXPECT_EQ(StatusLines(refused), std::vector<int>{503}) << refused;
  EXPECT_TRUE(Contains(refused, "too many connections from 127.0.0.1 (limit 3 per client)"))
      << refused;
  EXPECT_TRUE(closed);
  // The three still work.
  for (int fd : held) {
    SendRaw(fd, get);
    EXPECT_TRUE(Contains(ReadResponses(fd, 1), "HTTP/1.1 200"));
  }
  // Once one is released, a new connection is served, and the refusal was counted.
  close(held[0]);
  HttpReply metrics;
  for (int attempt = 0; attempt < 50 && metrics.status != 200; ++attempt) {
    metrics = Http(port, "GET", "/metrics", "", {}, 5);
    if (metrics.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(metrics.status, 200) << Describe(metrics);
  const auto values = ParseMetrics(metrics.body);
  const auto it = values.find("cvdeploy_http_connections_refused_total{reason=\"per_client\"}");
  ASSERT_NE(it, values.end()) << metrics.body;
  EXPECT_GE(it->second, 1);
  for (size_t i = 1; i < held.size(); ++i) close(held[i]);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace cvdeploy::testing
