// SPDX-License-Identifier: Apache-2.0
// The event line about a request answered with a server error (server/request_log.h): it names
// the request id and trace id; client errors and overload answers write none.
#include "server/request_log.h"

#include <gtest/gtest.h>

#include <string>

namespace cvdeploy::server {
namespace {

TEST(ServerErrorEventLineTest, NamesTheRequestTraceAndError) {
  const auto line =
      ServerErrorEventLine(500, "req-42", "4bf92f3577b34da6a3ce929d0e0e4736", "POST",
                           "/v1/models/m/predict", R"({"error":"inference failed: boom"})");
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(*line,
            "request req-42 (trace 4bf92f3577b34da6a3ce929d0e0e4736) POST /v1/models/m/predict "
            "answered 500: inference failed: boom");
}

TEST(ServerErrorEventLineTest, WithoutAJsonErrorTheLineHasNoMessage) {
  for (const std::string body : {"", "not json", R"({"error":7})", "[1]"}) {
    const auto line = ServerErrorEventLine(502, "r", "t", "GET", "/x", body);
    ASSERT_TRUE(line.has_value()) << body;
    EXPECT_EQ(*line, "request r (trace t) GET /x answered 502") << body;
  }
  const std::string big = R"({"error":")" + std::string(5000, 'a') + R"("})";
  EXPECT_EQ(*ServerErrorEventLine(500, "r", "t", "GET", "/x", big),
            "request r (trace t) GET /x answered 500");
  const std::string long_message = R"({"error":")" + std::string(300, 'b') + R"("})";
  EXPECT_EQ(ServerErrorEventLine(500, "r", "t", "GET", "/x", long_message)->size(),
            std::string("request r (trace t) GET /x answered 500: ").size() + 200);
}

TEST(ServerErrorEventLineTest, NoLineForSuccessClientErrorsOrOverload) {
  for (int status : {200, 204, 400, 404, 422, 429, 499, 503, 504}) {
    EXPECT_FALSE(ServerErrorEventLine(status, "r", "t", "GET", "/x", R"({"error":"e"})")) << status;
  }
  EXPECT_TRUE(ServerErrorEventLine(501, "r", "t", "GET", "/x", ""));
}

}  // namespace
}  // namespace cvdeploy::server
