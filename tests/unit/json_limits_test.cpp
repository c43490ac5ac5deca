// SPDX-License-Identifier: Apache-2.0
#include "core/json_limits.h"

#include <gtest/gtest.h>

#include <string>

#include "cvdeploy/error.h"

namespace cvdeploy::core {
namespace {

std::string Nested(int depth, char open, char close, const std::string& inner = "1") {
  return std::string(depth, open) + inner + std::string(depth, close);
}

TEST(JsonLimits, CountsDepthOutsideStrings) {
  EXPECT_EQ(JsonNestingDepth("1"), 0);
  EXPECT_EQ(JsonNestingDepth("[]"), 1);
  EXPECT_EQ(JsonNestingDepth(R"({"a":[[1],{"b":[2]}]})"), 4);
  EXPECT_EQ(JsonNestingDepth(R"({"a":"[[[[{{{{"})"), 1);
  EXPECT_EQ(JsonNestingDepth(R"(["\"[[[", [1]])"), 2);
  EXPECT_EQ(JsonNestingDepth(R"(["\\", [1]])"), 2);
}

TEST(JsonLimits, StopsEarlyAboveTheLimit) {
  EXPECT_EQ(JsonNestingDepth(Nested(100000, '[', ']'), 64), 65);
  EXPECT_EQ(JsonNestingDepth(Nested(64, '[', ']'), 64), 64);
}

TEST(JsonLimits, AcceptsTheLimitAndRefusesOneMore) {
  EXPECT_EQ(ParseJsonBounded(Nested(64, '[', ']'), "doc").size(), 1u);
  try {
    ParseJsonBounded(Nested(65, '[', ']'), "body.json");
    FAIL() << "65 levels accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_EQ(std::string(e.what()), "body.json: JSON nested deeper than 64 levels");
  }
}

TEST(JsonLimits, HundredThousandLevelsIsABadInputNotACrash) {
  std::string deep = R"({"inputs":[{"data":)" + Nested(100000, '{', '}', "") + "}]}";
  EXPECT_THROW(ParseJsonBounded(deep, "request body"), Error);
  deep = Nested(100000, '[', ']');
  EXPECT_THROW(ParseOrderedJsonBounded(deep, "config.json"), Error);
}

TEST(JsonLimits, InvalidJsonAndHugeNumbersAreBadInput) {
  for (const std::string text : {"{", "[1,]", "1e400", R"({"a":-1e999})", ""}) {
    try {
      ParseJsonBounded(text, "x.json");
      FAIL() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kBadInput) << text;
      EXPECT_EQ(std::string(e.what()).rfind("x.json: invalid JSON: ", 0), 0u) << e.what();
    }
  }
}

TEST(JsonLimits, NulByteIsBadInputNotTheEndOfTheDocument) {
  // nlohmann alone would parse "0" and ignore the rest (its lexer stops at NUL).
  for (const std::string& text : {std::string("0\0[", 3), std::string("{\"a\":1}\0{\"b\":", 13),
                                  std::string("[\"x\0y\"]", 7)}) {
    try {
      ParseJsonBounded(text, "body");
      FAIL() << "accepted a NUL byte";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kBadInput);
      EXPECT_NE(std::string(e.what()).find("body: invalid JSON: NUL byte at offset"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace cvdeploy::core
