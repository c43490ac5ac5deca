// SPDX-License-Identifier: Apache-2.0
// Strict multipart/form-data parsing (RFC 7578 on top of RFC 2046's multipart syntax) for
// image uploads. Parts are views into the request body, so an uploaded image is never
// copied; the parser runs in time linear in the body size (the boundary is at most 70 bytes).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cvdeploy::server {

// One form field. `filename` is empty when the part has none (a plain field) and
// `content_type` is empty when the part has no Content-Type header (RFC 7578 then implies
// text/plain). `body` points into the body given to ParseMultipart and is only valid while
// that buffer is.
struct FormPart {
  std::string name;
  std::string filename;
  std::string content_type;
  std::string_view body;
};

// The boundary parameter of a Content-Type "multipart/form-data; boundary=..." (a token or a
// quoted string; media type and parameter names are case-insensitive). nullopt when the type
// is not multipart/form-data, the parameter is absent or malformed, or the boundary is not
// 1..70 RFC 2046 boundary characters.
std::optional<std::string> MultipartBoundary(std::string_view content_type);

// Parses the whole body: an optional preamble, parts separated by "\r\n--BOUNDARY" lines
// (transport padding of spaces and tabs allowed before the CRLF), and the closing
// "--BOUNDARY--" delimiter, after which an epilogue is ignored. A "\r\n--BOUNDARY" inside a
// part that is not followed by "--", padding or CRLF is part data. Each part needs header
// lines (names case-insensitive, no folding), an empty line, and Content-Disposition:
// form-data with a name parameter; quoted parameter values unescape \" and \\ only, since
// browsers percent-encode quotes and send Windows paths with literal backslashes.
// Throws cvdeploy::Error (kInvalidArgument, the reason as message; control bytes escaped) for an
// empty body or boundary, a missing opening or closing delimiter, malformed part headers, a part
// without Content-Disposition: form-data or a name, or more than `max_parts` parts. A body with
// only the closing delimiter has no parts.
std::vector<FormPart> ParseMultipart(std::string_view body, std::string_view boundary,
                                     size_t max_parts = 64);

}  // namespace cvdeploy::server
