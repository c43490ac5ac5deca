// SPDX-License-Identifier: Apache-2.0
// The multipart/form-data parser accepts what browsers, curl and HTTP libraries send
// (preamble, quoted boundary, binary data) and rejects every malformed body with a 400.
#include "server/multipart.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "server/http_error.h"

namespace cvdeploy::server {
namespace {

using namespace std::string_literals;

// The HTTP status and message ParseMultipart throws, or "ok".
std::string Failure(std::string_view body, std::string_view boundary, size_t max_parts = 64) {
  try {
    ParseMultipart(body, boundary, max_parts);
  } catch (const cvdeploy::Error& e) {
    EXPECT_EQ(HttpStatusOf(e.code()), 400) << e.what();
    return e.what();
  }
  return "ok";
}

void ExpectFailure(std::string_view body, std::string_view boundary, const std::string& fragment,
                   size_t max_parts = 64) {
  const std::string message = Failure(body, boundary, max_parts);
  EXPECT_NE(message.find(fragment), std::string::npos)
      << "expected \"" << fragment << "\" in \"" << message << "\"";
}

TEST(MultipartBoundary, FromContentType) {
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=abc123"), "abc123");
  EXPECT_EQ(MultipartBoundary("Multipart/Form-Data;BOUNDARY=abc"), "abc");
  EXPECT_EQ(MultipartBoundary("multipart/form-data; charset=utf-8; boundary=\"a b:c\""), "a b:c");
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk"),
            "----WebKitFormBoundary7MA4YWxk");
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=\"x\";"), "x");
}

TEST(MultipartBoundary, AbsentOrInvalid) {
  EXPECT_EQ(MultipartBoundary(""), std::nullopt);
  EXPECT_EQ(MultipartBoundary("image/jpeg"), std::nullopt);
  EXPECT_EQ(MultipartBoundary("multipart/mixed; boundary=abc"), std::nullopt);
  EXPECT_EQ(MultipartBoundary("multipart/form-data"), std::nullopt);
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary="), std::nullopt);
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=\"\""), std::nullopt);
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=\"abc"), std::nullopt);
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=" + std::string(71, 'a')),
            std::nullopt);
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=" + std::string(70, 'a')),
            std::string(70, 'a'));
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=\"ends in space \""), std::nullopt);
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=\"a\rb\""), std::nullopt);
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=a; boundary=b"), std::nullopt);
}

TEST(ParseMultipart, OnePart) {
  const std::string body =
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"image\"; filename=\"bus.jpg\"\r\n"
      "Content-Type: image/jpeg\r\n"
      "\r\n"
      "JPEGDATA\r\n"
      "--XyZ--\r\n";
  const std::vector<FormPart> parts = ParseMultipart(body, "XyZ");
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].name, "image");
  EXPECT_EQ(parts[0].filename, "bus.jpg");
  EXPECT_EQ(parts[0].content_type, "image/jpeg");
  EXPECT_EQ(parts[0].body, "JPEGDATA");
  // The body is a view into the input, not a copy.
  EXPECT_GE(parts[0].body.data(), body.data());
  EXPECT_LE(parts[0].body.data() + parts[0].body.size(), body.data() + body.size());
}

TEST(ParseMultipart, SeveralPartsPreambleEpilogueAndPadding) {
  const std::string body =
      "This is the preamble, ignored.\r\n"
      "--b0undary  \t\r\n"  // transport padding after the boundary
      "content-disposition: FORM-DATA; name=conf\r\n"
      "\r\n"
      "0.25\r\n"
      "--b0undary\r\n"
      "CONTENT-DISPOSITION:form-data;name=\"image\";filename=\"C:\\photos\\a \\\"b\\\".png\"\r\n"
      "Content-Type:   image/png  \r\n"
      "X-Extra: ignored\r\n"
      "\r\n"
      "\r\n"  // the data: one CRLF
      "\r\n"
      "--b0undary\r\n"
      "Content-Disposition: form-data; name=\"empty\"\r\n"
      "\r\n"
      "\r\n"
      "--b0undary--\r\n"
      "epilogue --b0undary\r\n also ignored";
  const std::vector<FormPart> parts = ParseMultipart(body, "b0undary");
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].name, "conf");
  EXPECT_EQ(parts[0].filename, "");
  EXPECT_EQ(parts[0].content_type, "");
  EXPECT_EQ(parts[0].body, "0.25");
  EXPECT_EQ(parts[1].name, "image");
  EXPECT_EQ(parts[1].filename, "C:\\photos\\a \"b\".png");  // literal backslashes kept
  EXPECT_EQ(parts[1].content_type, "image/png");
  EXPECT_EQ(parts[1].body, "\r\n");
  EXPECT_EQ(parts[2].name, "empty");
  EXPECT_EQ(parts[2].body, "");
}

TEST(ParseMultipart, QuotedBoundaryFromContentType) {
  const std::optional<std::string> boundary =
      MultipartBoundary("multipart/form-data; boundary=\"gc0p4Jq0M2Yt08j34c0p(\"");
  ASSERT_TRUE(boundary);
  const std::string body =
      "--gc0p4Jq0M2Yt08j34c0p(\r\n"
      "Content-Disposition: form-data; name=\"a\"\r\n\r\n"
      "1\r\n"
      "--gc0p4Jq0M2Yt08j34c0p(--";
  const std::vector<FormPart> parts = ParseMultipart(body, *boundary);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].body, "1");
}

TEST(ParseMultipart, BinaryDataWithNearDelimiters) {
  // Every byte value, and sequences that start like a delimiter but are not one.
  std::string data;
  for (int i = 0; i < 256; ++i) data.push_back(static_cast<char>(i));
  data += "\r\n--\r\n--b\r\n--bnd2\r\n--bndX\r\n--bnd-\r\n--bnd \tx\r\n--bnd\r\r\n--bnd\n"s;
  data += "\0\0\r\n\r\n--"s;
  const std::string body =
      "--bnd\r\n"
      "Content-Disposition: form-data; name=\"image\"; filename=\"x.bin\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\n" +
      data + "\r\n--bnd--";
  const std::vector<FormPart> parts = ParseMultipart(body, "bnd");
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].body, data);
}

TEST(ParseMultipart, OnlyTheClosingDelimiterMeansNoParts) {
  EXPECT_TRUE(ParseMultipart("--abc--\r\n", "abc").empty());
}

TEST(ParseMultipart, MaxParts) {
  std::string body;
  for (int i = 0; i < 3; ++i) {
    body +=
        "--p\r\nContent-Disposition: form-data; name=\"f" + std::to_string(i) + "\"\r\n\r\nv\r\n";
  }
  body += "--p--\r\n";
  EXPECT_EQ(ParseMultipart(body, "p", 3).size(), 3u);
  ExpectFailure(body, "p", "more than 2 parts", 2);
}

TEST(ParseMultipart, Errors) {
  const std::string part = "Content-Disposition: form-data; name=\"a\"\r\n\r\nv";
  ExpectFailure("", "b", "empty body");
  ExpectFailure("--b\r\n" + part + "\r\n--b--", "", "no boundary");
  ExpectFailure("no delimiter here", "b", "no opening boundary");
  ExpectFailure("--b\r\n" + part + "\r\n", "b", "no closing boundary");
  ExpectFailure("--b\r\n" + part + "\r\n--b", "b", "no closing boundary");
  ExpectFailure("--b\r\n" + part, "b", "no closing boundary");
  ExpectFailure("--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--", "b",
                "no Content-Disposition: form-data");
  ExpectFailure("--b\r\n\r\nv\r\n--b--", "b", "no Content-Disposition: form-data");
  ExpectFailure("--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--b--", "b",
                "no Content-Disposition: form-data");
  ExpectFailure("--b\r\nContent-Disposition: form-data; filename=\"x\"\r\n\r\nv\r\n--b--", "b",
                "no name");
  // Found by fuzz_multipart: name="" named no field (regressions/multipart).
  ExpectFailure("--b\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nv\r\n--b--", "b",
                "empty name");
  ExpectFailure("--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--b--", "b",
                "malformed Content-Disposition");
  ExpectFailure("--b\r\nContent-Disposition: form-data; name=a b\r\n\r\nv\r\n--b--", "b",
                "malformed Content-Disposition");
  ExpectFailure("--b\r\nContent-Disposition form-data; name=a\r\n\r\nv\r\n--b--", "b",
                "without a name and ':'");
  ExpectFailure("--b\r\nContent-Disposition: form-data; name=a\r\n filename=x\r\n\r\nv\r\n--b--",
                "b", "folded");
  ExpectFailure("--b\r\nContent-Disposition: form-data; name=a\nX: y\r\n\r\nv\r\n--b--", "b",
                "bare CR or LF");
  ExpectFailure("--b\r\nBad Name: x\r\n" + part + "\r\n--b--", "b", "invalid header name");
  ExpectFailure("--b\r\n" + part.substr(0, part.find("\r\n")) + "\r\n" + part + "\r\n--b--", "b",
                "two Content-Disposition");
  ExpectFailure("--b\r\nContent-Disposition: form-data; name=a\r\nv\r\n--b--", "b",
                "no empty line after its headers");
  ExpectFailure("--b\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\nv\r\n--b--", "b",
                "two name parameters");
  ExpectFailure("--bX\r\n" + part + "\r\n--bX--", "b", "no opening boundary");
}

TEST(ParseMultipart, LinearTime) {
  // Many near-delimiters and a large part: a quadratic scan would take minutes.
  std::string data;
  for (int i = 0; i < 200000; ++i) data += "\r\n--boundaryX";
  data += std::string(4 << 20, '-');
  const std::string body = "--boundary\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n" +
                           data + "\r\n--boundary--";
  const auto start = std::chrono::steady_clock::now();
  const std::vector<FormPart> parts = ParseMultipart(body, "boundary");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].body.size(), data.size());
  EXPECT_LT(seconds, 2.0);
}

}  // namespace
}  // namespace cvdeploy::server
