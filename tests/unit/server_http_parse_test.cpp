// SPDX-License-Identifier: Apache-2.0
// Transport-neutral HTTP pieces of the server: request-target forms (RFC 9112 section 3.2),
// control bytes in error messages, the Respond handle (one answer per request, whatever a
// handler does with its copies) and Dispatch's mapping of exceptions to statuses.
#include <gtest/gtest.h>

#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cvdeploy/error.h"
#include "server/http.h"
#include "server/http_error.h"

namespace cvdeploy::server {
namespace {

using nlohmann::json;

std::string ErrorOf(const HttpResponse& r) { return json::parse(r.body).at("error"); }

// ---------------------------------------------------------------------------------------
// Request targets.

TEST(RequestTarget, OriginFormIsDecoded) {
  const auto t = ParseRequestTarget("/v2/models/a%20b/infer?x=1&y=%41");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->form, RequestTarget::Form::kOrigin);
  EXPECT_EQ(t->path, "/v2/models/a b/infer");
  EXPECT_EQ(t->query, (std::map<std::string, std::string>{{"x", "1"}, {"y", "A"}}));
  EXPECT_EQ(t->authority, "");
}

TEST(RequestTarget, AbsoluteFormGivesPathQueryAndAuthority) {
  for (const std::string scheme : {"http", "https", "HTTP", "Https"}) {
    const auto t = ParseRequestTarget(scheme + "://example.com:8080/v2/health/live?x=%31");
    ASSERT_TRUE(t) << scheme;
    EXPECT_EQ(t->form, RequestTarget::Form::kAbsolute);
    EXPECT_EQ(t->path, "/v2/health/live");
    EXPECT_EQ(t->query, (std::map<std::string, std::string>{{"x", "1"}}));
    EXPECT_EQ(t->authority, "example.com:8080");
  }
  // No path: the root.
  auto t = ParseRequestTarget("http://h");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->path, "/");
  t = ParseRequestTarget("http://h?a=b");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->path, "/");
  EXPECT_EQ(t->query.at("a"), "b");
  t = ParseRequestTarget("http://[::1]:80/metrics");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->authority, "[::1]:80");
  EXPECT_EQ(t->path, "/metrics");
}

TEST(RequestTarget, AsteriskForm) {
  const auto t = ParseRequestTarget("*");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->form, RequestTarget::Form::kAsterisk);
}

TEST(RequestTarget, GarbageIsRefused) {
  for (const std::string bad :
       {"", "v2/health", "ftp://h/x", "http:///x", "http://user@h/x", "http://h/%zz", "http://h#f",
        "example.com:443", "**", "http:/h/x", "h://x/y"}) {
    EXPECT_FALSE(ParseRequestTarget(bad)) << "'" << bad << "'";
  }
  // An origin-form path may contain "://" further on.
  EXPECT_TRUE(ParseRequestTarget("/a/http://b"));
}

// ---------------------------------------------------------------------------------------
// Control bytes in messages.

TEST(ErrorMessages, ControlBytesAreEscapedNotCut) {
  const std::string with_nul("name 'a\0b'\n", 11);
  EXPECT_EQ(EscapeControlBytes(with_nul), "name 'a\\x00b'\\x0a");
  EXPECT_EQ(EscapeControlBytes(EscapeControlBytes(with_nul)), EscapeControlBytes(with_nul));
  EXPECT_EQ(EscapeControlBytes("\x7f\x1f ok \xc3\xa9"), "\\x7f\\x1f ok \xc3\xa9");
  // what() is a C string: before, everything after the NUL was lost.
  const Error error = EscapedError(ErrorCode::kInvalidArgument,
                                   "unknown input '" + std::string("im\0ages", 7) + "'");
  EXPECT_STREQ(error.what(), "unknown input 'im\\x00ages'");
  EXPECT_EQ(ErrorOf(JsonError(404, std::string("no route for /a\0b", 17))),
            "no route for /a\\x00b");
}

// ---------------------------------------------------------------------------------------
// Respond and Dispatch.

struct Sink {
  std::vector<HttpResponse> sent;
  Respond Make() {
    return Respond([this](HttpResponse r) { sent.push_back(std::move(r)); });
  }
};

TEST(Respond, CopiesShareOneAnswer) {
  Sink sink;
  {
    Respond respond = sink.Make();
    Respond copy = respond;
    Respond moved = std::move(copy);  // copies: `copy` stays usable
    copy(JsonError(418, "first"));
    respond(JsonError(400, "second"));
    moved(JsonError(500, "third"));
    EXPECT_TRUE(respond.answered());
  }
  ASSERT_EQ(sink.sent.size(), 1u);
  EXPECT_EQ(sink.sent[0].status, 418);
}

TEST(Respond, DroppedUnansweredAnswers503Once) {
  Sink sink;
  {
    Respond respond = sink.Make();
    Respond kept = respond;
  }
  ASSERT_EQ(sink.sent.size(), 1u);
  EXPECT_EQ(sink.sent[0].status, 503);
  EXPECT_NE(ErrorOf(sink.sent[0]).find("dropped"), std::string::npos);
}

TEST(Dispatch, ExceptionsMapToStatuses) {
  struct Case {
    std::function<void()> raise;
    int status;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {[] { throw TooLarge("too big"); }, 413, "too big"},
      {[] { throw LimitError("max_pixels", "x.png: too many pixels"); }, 413, "too many pixels"},
      {[] { throw NotFound("no model 'm'"); }, 404, "no model 'm'"},
      {[] { throw UnsupportedMedia("not an image"); }, 415, "not an image"},
      {[] { throw PermissionDenied("control disabled"); }, 403, "control disabled"},
      {[] { throw Unauthenticated("no token"); }, 401, "no token"},
      {[] { throw DeadlineExceeded("too late"); }, 504, "too late"},
      {[] { throw BadInput("x.jpg: corrupt"); }, 422, "x.jpg: corrupt"},
      {[] { throw InvalidArgument("bad option"); }, 400, "bad option"},
      {[] { throw RuntimeError("engine"); }, 500, "engine"},
      {[] { [[maybe_unused]] const json j = json::parse("[1e400]"); }, 400, "malformed request"},
      {[] { [[maybe_unused]] const auto s = json(1).get<std::string>(); }, 400,
       "malformed request"},
      {[] { throw std::bad_alloc(); }, 503, "out of memory"},
      {[] { throw std::logic_error("oops"); }, 500, "internal error: oops"},
      {[] { throw 42; }, 500, "internal error"},
  };
  for (const Case& c : cases) {
    Sink sink;
    HttpRequest request;
    // The handler keeps a copy of respond (as asynchronous work does), then throws.
    std::vector<Respond> kept;
    Dispatch(
        [&](HttpRequest&, Respond respond) {
          kept.push_back(respond);
          c.raise();
        },
        request, sink.Make());
    kept.clear();
    ASSERT_EQ(sink.sent.size(), 1u) << c.needle;
    EXPECT_EQ(sink.sent[0].status, c.status) << c.needle;
    EXPECT_NE(ErrorOf(sink.sent[0]).find(c.needle), std::string::npos) << sink.sent[0].body;
    if (c.status == 503) {
      ASSERT_EQ(sink.sent[0].headers.size(), 1u);
      EXPECT_EQ(sink.sent[0].headers[0].first, "Retry-After");
    }
  }
}

TEST(Dispatch, AnAnswerGivenBeforeAnExceptionStands) {
  Sink sink;
  HttpRequest request;
  Dispatch(
      [](HttpRequest&, Respond respond) {
        respond(JsonError(202, "accepted"));
        throw std::bad_alloc();
      },
      request, sink.Make());
  ASSERT_EQ(sink.sent.size(), 1u);
  EXPECT_EQ(sink.sent[0].status, 202);
}

}  // namespace
}  // namespace cvdeploy::server
