// SPDX-License-Identifier: Apache-2.0
// KServe request decoding against hostile documents: nesting far beyond any tensor (in data,
// shape, parameters and binary_data_size) is refused before anything walks it, error
// excerpts stay short whatever the value, numbers out of range are a 400, and nothing here
// throws anything but cvdeploy::Error.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "server/http_error.h"
#include "server/json_excerpt.h"
#include "server/kserve.h"

namespace cvdeploy::server::kserve {
namespace {

std::string Nested(size_t depth, const std::string& open = "[", const std::string& close = "]",
                   const std::string& inner = "") {
  std::string text;
  text.reserve(depth * (open.size() + close.size()) + inner.size());
  for (size_t i = 0; i < depth; ++i) text += open;
  text += inner;
  for (size_t i = 0; i < depth; ++i) text += close;
  return text;
}

// Parses and returns the cvdeploy::Error, or nullopt when it parsed. Any other exception fails the
// test through gtest's handler.
std::optional<cvdeploy::Error> ParseError(const std::string& body,
                                          std::optional<size_t> header_length = std::nullopt) {
  try {
    ParseInferRequest(body, header_length);
  } catch (const cvdeploy::Error& e) {
    return e;
  }
  return std::nullopt;
}

const char kInput[] = R"({"name":"x","datatype":"FP32",)";

// The four places of the issue, each nested `depth` levels below the document.
std::vector<std::pair<std::string, std::string>> DeepBodies(size_t depth) {
  return {
      {"data object element", std::string(R"({"inputs":[)") + kInput +
                                  R"("shape":[1],"data":[{"a":)" + Nested(depth) + "}]}]}"},
      {"shape", std::string(R"({"inputs":[)") + kInput + R"("shape":)" + Nested(depth) +
                    R"(,"data":[1]}]})"},
      {"parameters", R"({"parameters":{"p":)" + Nested(depth, "{\"a\":", "}", "1") +
                         R"(},"inputs":[)" + kInput + R"("shape":[1],"data":[1]}]})"},
      {"binary_data_size", std::string(R"({"inputs":[)") + kInput +
                               R"("shape":[1],"parameters":{"binary_data_size":)" + Nested(depth) +
                               "}}]}"},
  };
}

TEST(KServeLimits, DeepNestingIsRefusedBeforeParsing) {
  for (const size_t depth : {size_t{100000}, size_t{63}}) {
    // 63 levels below the 2 to 5 levels around them: 65 to 68, just over the limit.
    for (const auto& [where, body] : DeepBodies(depth)) {
      SCOPED_TRACE(where + " at depth " + std::to_string(depth));
      const std::optional<cvdeploy::Error> error = ParseError(body);
      ASSERT_TRUE(error);
      EXPECT_EQ(HttpStatusOf(error->code()), 400);
      EXPECT_NE(std::string(error->what()).find("request body: JSON nested deeper than 64 levels"),
                std::string::npos)
          << error->what();
    }
  }
}

TEST(KServeLimits, DeepNestingInTheJsonHeaderOfABinaryBody) {
  std::string body = std::string(R"({"inputs":[)") + kInput +
                     R"("shape":[1],"parameters":{"binary_data_size":4,"x":)" + Nested(100000) +
                     "}}]}";
  const size_t header_length = body.size();
  body.append(4, '\0');
  const std::optional<cvdeploy::Error> error = ParseError(body, header_length);
  ASSERT_TRUE(error);
  EXPECT_NE(std::string(error->what()).find("nested deeper than 64"), std::string::npos);
}

TEST(KServeLimits, Depth64IsFineAndRank4DataParses) {
  // Exactly 64 levels: the document, "parameters", then 62 levels of arrays.
  const std::string body = R"({"parameters":{"p":)" + Nested(62, "[", "]") + R"(},"inputs":[)" +
                           kInput + R"("shape":[1],"data":[1]}]})";
  EXPECT_FALSE(ParseError(body)) << ParseError(body)->what();
  const std::string rank4 = std::string(R"({"inputs":[)") + kInput +
                            R"("shape":[1,2,2,2],"data":[[[[1,2],[3,4]],[[5,6],[7,8]]]]}]})";
  const InferRequest request = ParseInferRequest(rank4, std::nullopt);
  ASSERT_EQ(request.inputs.size(), 1u);
  EXPECT_EQ(request.inputs[0].bytes.size(), 8 * sizeof(float));
}

TEST(KServeLimits, NumbersOutOfRangeAre400) {
  for (const std::string number : {"1e400", "-1e400", "1E+999"}) {
    const std::string body =
        std::string(R"({"inputs":[)") + kInput + R"("shape":[2],"data":[1,)" + number + "]}]}";
    const std::optional<cvdeploy::Error> error = ParseError(body);
    ASSERT_TRUE(error) << number;
    EXPECT_EQ(HttpStatusOf(error->code()), 400);
    EXPECT_NE(std::string(error->what()).find("request body: invalid JSON"), std::string::npos)
        << error->what();
  }
}

TEST(KServeLimits, ExcerptsStayShort) {
  // A huge wrong-typed value is quoted by a short prefix, not serialized whole.
  std::string big = "[";
  for (int i = 0; i < 200000; ++i) big += (i ? ",{\"k\":[1,2,3]}" : "{\"k\":[1,2,3]}");
  big += "]";
  const std::optional<cvdeploy::Error> error =
      ParseError(std::string(R"({"inputs":[)") + kInput + R"("shape":)" + big + "}]}");
  ASSERT_TRUE(error);
  const std::string message = error->what();
  EXPECT_LT(message.size(), 200u) << message;
  EXPECT_NE(message.find(R"("shape" [{"k":[1,2,3]},{"k":[1,2,3]},{)"), std::string::npos)
      << message;
  EXPECT_NE(message.find("... must hold"), std::string::npos) << message;
  // A scalar string is cut too.
  const std::optional<cvdeploy::Error> string_error = ParseError(
      std::string(R"({"inputs":[)") + kInput + R"("shape":")" + std::string(100000, 'x') + "\"}]}");
  ASSERT_TRUE(string_error);
  EXPECT_LT(std::string(string_error->what()).size(), 200u);
}

TEST(KServeLimits, JsonExcerptIsBoundedAndIterative) {
  EXPECT_EQ(JsonExcerpt(nlohmann::json::parse(R"({"a":[1,2.5,"x"],"b":null})")),
            R"({"a":[1,2.5,"x"],"b":null})");
  EXPECT_EQ(JsonExcerpt(nlohmann::json::parse("[[],{}]")), "[[],{}]");
  EXPECT_EQ(JsonExcerpt(nlohmann::json::parse("[1,2,3,4,5]"), 6), "[1,2,3...");
  // A value nested 100,000 deep (built in code, as no parser would) is quoted by its prefix.
  nlohmann::json deep = nlohmann::json::array();
  for (int i = 0; i < 100000; ++i) deep = nlohmann::json::array({std::move(deep)});
  EXPECT_EQ(JsonExcerpt(deep), std::string(40, '[') + "...");
}

TEST(KServeLimits, ParametersAreKeptVerbatim) {
  const std::string body = R"({"parameters":{"binary_data_output":true,"n":{"a":[1,{"b":2}]}},)"
                           R"("inputs":[)" +
                           std::string(kInput) + R"("shape":[1],"data":[1]}]})";
  const InferRequest request = ParseInferRequest(body, std::nullopt);
  EXPECT_TRUE(request.binary_output);
  EXPECT_EQ(request.parameters.dump(), R"({"binary_data_output":true,"n":{"a":[1,{"b":2}]}})");
}

}  // namespace
}  // namespace cvdeploy::server::kserve
