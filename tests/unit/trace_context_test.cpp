// SPDX-License-Identifier: Apache-2.0
// W3C Trace Context parsing (server/trace_context.h): valid traceparent values, every kind of
// malformed one (ignored, never an error), future versions, tracestate bounds, the formatted
// traceparent and the timings JSON inserted into a response body.
#include "server/trace_context.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cvdeploy/error.h"

namespace cvdeploy::server {
namespace {

constexpr char kTrace[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kParent[] = "00f067aa0ba902b7";
const std::string kValid = std::string("00-") + kTrace + "-" + kParent + "-01";

TEST(TraceparentTest, ParsesAValidHeader) {
  const auto p = ParseTraceparent(kValid);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->trace_id, kTrace);
  EXPECT_EQ(p->parent_id, kParent);
  EXPECT_EQ(p->flags, 0x01);
  const auto unsampled = ParseTraceparent(std::string("00-") + kTrace + "-" + kParent + "-00");
  ASSERT_TRUE(unsampled.has_value());
  EXPECT_EQ(unsampled->flags, 0x00);
  // Surrounding optional whitespace is not part of the value.
  EXPECT_TRUE(ParseTraceparent(" \t" + kValid + " ").has_value());
}

TEST(TraceparentTest, RefusesEachMalformedPart) {
  const std::string cases[] = {
      "",
      "00",
      kValid.substr(0, 54),                                           // one short
      kValid + "0",                                                   // version 00 with extra bytes
      kValid + "-extra",                                              // 00 allows no extra fields
      "0-" + std::string(kTrace) + "-" + kParent + "-01-",            // version one digit
      "zz-" + std::string(kTrace) + "-" + kParent + "-01",            // version not hex
      "ff-" + std::string(kTrace) + "-" + kParent + "-01",            // version ff is invalid
      "00_" + std::string(kTrace) + "-" + kParent + "-01",            // wrong separator
      "00-" + std::string(kTrace) + "_" + kParent + "-01",            //
      "00-" + std::string(kTrace) + "-" + kParent + "_01",            //
      "00-" + std::string(kTrace).substr(1) + "0-" + kParent + "-1",  // lengths shifted
      "00-4bf92f3577b34da6a3ce929d0e0e473g-" + std::string(kParent) + "-01",  // non-hex
      "00-" + std::string(kTrace) + "-00f067aa0ba902bz-01",                   // non-hex parent
      "00-" + std::string(kTrace) + "-" + kParent + "-0x",                    // non-hex flags
      "00-" + std::string(kTrace) + "-" + kParent + "-\x01\x02",              // control bytes
  };
  for (const std::string& c : cases) {
    EXPECT_FALSE(ParseTraceparent(c).has_value()) << "'" << c << "'";
  }
}

TEST(TraceparentTest, RefusesAllZeroIds) {
  EXPECT_FALSE(ParseTraceparent("00-" + std::string(32, '0') + "-" + kParent + "-01"));
  EXPECT_FALSE(ParseTraceparent("00-" + std::string(kTrace) + "-" + std::string(16, '0') + "-01"));
}

TEST(TraceparentTest, RefusesUpperCaseHex) {
  EXPECT_FALSE(
      ParseTraceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-" + std::string(kParent) + "-01"));
  EXPECT_FALSE(ParseTraceparent("00-" + std::string(kTrace) + "-00F067AA0BA902B7-01"));
  EXPECT_FALSE(ParseTraceparent("00-" + std::string(kTrace) + "-" + kParent + "-0A"));
  EXPECT_FALSE(ParseTraceparent("0A-" + std::string(kTrace) + "-" + kParent + "-01"));
}

TEST(TraceparentTest, AcceptsAFutureVersionWithExtraFields) {
  const std::string base = "cc-" + std::string(kTrace) + "-" + kParent + "-03";
  for (const std::string& value : {base, base + "-what-the-future-holds"}) {
    const auto p = ParseTraceparent(value);
    ASSERT_TRUE(p.has_value()) << value;
    EXPECT_EQ(p->trace_id, kTrace);
    EXPECT_EQ(p->parent_id, kParent);
    EXPECT_EQ(p->flags, 0x01) << "only the sampled bit of an unknown version is known";
  }
  // Extra data must follow a '-'.
  EXPECT_FALSE(ParseTraceparent(base + "x"));
}

TEST(TracestateTest, PassesValidValuesWithinBounds) {
  EXPECT_EQ(SanitizeTracestate("congo=t61rcWkgMzE"), "congo=t61rcWkgMzE");
  EXPECT_EQ(SanitizeTracestate("  rojo=00f067aa0ba902b7,congo=t61rcWkgMzE "),
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  const std::string longest(kMaxTracestate, 'a');
  EXPECT_EQ(SanitizeTracestate(longest), longest);
}

TEST(TracestateTest, DropsEmptyTooLongNonPrintableAndTooManyMembers) {
  EXPECT_FALSE(SanitizeTracestate(""));
  EXPECT_FALSE(SanitizeTracestate("   "));
  EXPECT_FALSE(SanitizeTracestate(std::string(kMaxTracestate + 1, 'a')));
  EXPECT_FALSE(SanitizeTracestate("a=b\r\nInjected: yes"));
  EXPECT_FALSE(SanitizeTracestate("a=\xc3\xa9"));
  std::string members = "k0=v";
  for (int i = 1; i < 33; ++i) members += ",k" + std::to_string(i) + "=v";
  EXPECT_FALSE(SanitizeTracestate(members));  // 33 members
  members = members.substr(0, members.rfind(','));
  EXPECT_TRUE(SanitizeTracestate(members));  // 32
}

TEST(TraceparentTest, FormatsVersion00AndRoundTrips) {
  const std::string text = FormatTraceparent(kTrace, kParent, 0x01);
  EXPECT_EQ(text, kValid);
  const auto p = ParseTraceparent(FormatTraceparent(kTrace, kParent, 0xab));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->flags, 0xab);
}

TEST(TimingsTest, JsonHasAllSixStagesAndZeroForStagesNotGoneThrough) {
  StageTimings t;
  t.queue_ms = 1.5;
  t.inference_ms = 12.3456789;
  const auto j = nlohmann::json::parse(TimingsJson(t));
  ASSERT_EQ(j.size(), 6u);
  EXPECT_DOUBLE_EQ(j["queue"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(j["inference"].get<double>(), 12.346);
  for (const char* k : {"decode", "preprocess", "postprocess", "encode"}) {
    EXPECT_EQ(j[k].get<double>(), 0.0) << k;
  }
}

TEST(TimingsTest, InsertsIntoAJsonObjectOnlyAtItsClosingBrace) {
  StageTimings t;
  t.encode_ms = 2;
  std::string body = R"({"a":1})";
  EXPECT_GT(InsertTimings(body, body.size(), t), 0u);
  auto j = nlohmann::json::parse(body);
  EXPECT_EQ(j["a"], 1);
  EXPECT_DOUBLE_EQ(j["timings"]["encode"].get<double>(), 2.0);

  std::string empty = "{}";
  InsertTimings(empty, empty.size(), t);
  EXPECT_TRUE(nlohmann::json::parse(empty).contains("timings")) << empty;

  // A JSON header followed by binary data: inserted inside the header.
  std::string binary = std::string(R"({"b":2})") + std::string("\x00\x01}", 3);
  const size_t added = InsertTimings(binary, 7, t);
  ASSERT_GT(added, 0u);
  EXPECT_TRUE(nlohmann::json::parse(binary.substr(0, 7 + added)).contains("timings"));
  EXPECT_EQ(binary.substr(7 + added), std::string("\x00\x01}", 3));

  std::string not_object = "[1]";
  EXPECT_EQ(InsertTimings(not_object, not_object.size(), t), 0u);
  EXPECT_EQ(not_object, "[1]");
  EXPECT_EQ(InsertTimings(not_object, 99, t), 0u);
  EXPECT_EQ(InsertTimings(not_object, 0, t), 0u);
}

TEST(TimingsTest, DebugParameterKnowsOnlyTimings) {
  EXPECT_TRUE(DebugTimingsParam("timings"));
  EXPECT_THROW(DebugTimingsParam("all"), Error);
  EXPECT_THROW(DebugTimingsParam(""), Error);
}

}  // namespace
}  // namespace cvdeploy::server
