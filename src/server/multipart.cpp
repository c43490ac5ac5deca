// SPDX-License-Identifier: Apache-2.0
// multipart/form-data parsing: a single forward scan with std::string_view::find for the
// delimiter, then small per-part header parses. Reports every violation as a cvdeploy::Error
// with kInvalidArgument whose message says what was wrong, for the client to read (the server
// chooses the HTTP status; this parser knows nothing of HTTP).
#include "server/multipart.h"

#include <cctype>
#include <optional>
#include <string>
#include <utility>

#include "cvdeploy/error.h"
#include "server/text_escape.h"

namespace cvdeploy::server {
namespace {

Error BadRequest(const std::string& reason) {
  return EscapedError(ErrorCode::kInvalidArgument, "invalid multipart/form-data body: " + reason);
}

char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

// RFC 7230 tchar: the characters of header names and unquoted parameter values.
bool IsTokenChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (std::isalnum(u)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 2046 bchars.
bool IsBoundaryChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (std::isalnum(u)) return true;
  return std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// A parameter list parser for `type; a=b; c="d"` header values (RFC 2045 / RFC 2183
// syntax). Returns false on malformed input.
class ParamReader {
 public:
  explicit ParamReader(std::string_view s) : s_(s) {}

  // The leading type (token characters and '/'), lower-cased.
  bool Type(std::string* type) {
    SkipSpace();
    const size_t start = i_;
    while (i_ < s_.size() && (IsTokenChar(s_[i_]) || s_[i_] == '/')) ++i_;
    if (i_ == start) return false;
    type->clear();
    for (char c : s_.substr(start, i_ - start)) type->push_back(Lower(c));
    return true;
  }

  // The next `; name=value`; false at the end (with *ok) or on malformed input (with !*ok).
  bool Next(std::string* name, std::string* value, bool* ok) {
    *ok = true;
    SkipSpace();
    if (i_ == s_.size()) return false;
    if (s_[i_] != ';') return *ok = false;
    ++i_;
    SkipSpace();
    if (i_ == s_.size()) return false;  // a trailing ';' is tolerated
    const size_t start = i_;
    while (i_ < s_.size() && IsTokenChar(s_[i_])) ++i_;
    if (i_ == start || i_ == s_.size() || s_[i_] != '=') return *ok = false;
    name->clear();
    for (char c : s_.substr(start, i_ - start)) name->push_back(Lower(c));
    ++i_;
    value->clear();
    if (i_ < s_.size() && s_[i_] == '"') return *ok = QuotedString(value);
    const size_t value_start = i_;
    while (i_ < s_.size() && IsTokenChar(s_[i_])) ++i_;
    if (i_ == value_start) return *ok = false;
    value->assign(s_.substr(value_start, i_ - value_start));
    return true;
  }

 private:
  void SkipSpace() {
    while (i_ < s_.size() && IsSpace(s_[i_])) ++i_;
  }

  // From the opening quote; \" and \\ are escapes, any other backslash is literal.
  bool QuotedString(std::string* value) {
    for (++i_; i_ < s_.size(); ++i_) {
      const char c = s_[i_];
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c == '\\' && i_ + 1 < s_.size() && (s_[i_ + 1] == '"' || s_[i_ + 1] == '\\')) {
        value->push_back(s_[++i_]);
      } else {
        value->push_back(c);
      }
    }
    return false;  // unterminated
  }

  std::string_view s_;
  size_t i_ = 0;
};

// A delimiter line: [begin, end) spans "\r\n--BOUNDARY", optional padding and its CRLF (or
// "--" for the closing delimiter); `begin` is where the preceding part's data ends.
struct Delimiter {
  size_t begin;
  size_t end;
  bool close;
};

// Checks what follows "--BOUNDARY" at `after`: "--" (close) or padding and CRLF.
std::optional<Delimiter> DelimiterAt(std::string_view body, size_t begin, size_t after) {
  if (body.substr(after, 2) == "--") return Delimiter{begin, after + 2, true};
  size_t i = after;
  while (i < body.size() && IsSpace(body[i])) ++i;
  if (body.substr(i, 2) == "\r\n") return Delimiter{begin, i + 2, false};
  return std::nullopt;
}

// The first delimiter at or after `from`. A match that is not a delimiter line is part data,
// and the search goes on after it: each byte is looked at a bounded number of times.
std::optional<Delimiter> NextDelimiter(std::string_view body, std::string_view delimiter,
                                       size_t from) {
  for (size_t pos = body.find(delimiter, from); pos != std::string_view::npos;
       pos = body.find(delimiter, pos + 1)) {
    if (auto d = DelimiterAt(body, pos, pos + delimiter.size())) return d;
  }
  return std::nullopt;
}

// Fills name, filename and content_type from the part's header block (lines without the
// terminating empty line).
void ParsePartHeaders(std::string_view headers, size_t index, FormPart* part) {
  const std::string which = "part " + std::to_string(index + 1);
  bool have_disposition = false;
  bool have_type = false;
  while (!headers.empty()) {
    const size_t eol = headers.find("\r\n");
    const std::string_view line = headers.substr(0, eol);
    headers.remove_prefix(eol == std::string_view::npos ? headers.size() : eol + 2);
    if (line.find_first_of("\r\n") != std::string_view::npos) {
      throw BadRequest(which + " has a header line with a bare CR or LF");
    }
    if (line.empty() || IsSpace(line.front())) {
      throw BadRequest(which + " has an empty or folded header line");
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      throw BadRequest(which + " has a header line without a name and ':'");
    }
    const std::string_view field = line.substr(0, colon);
    for (char c : field) {
      if (!IsTokenChar(c)) throw BadRequest(which + " has an invalid header name");
    }
    const std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsIgnoreCase(field, "content-disposition")) {
      if (have_disposition) throw BadRequest(which + " has two Content-Disposition headers");
      have_disposition = true;
      ParamReader reader(value);
      std::string type;
      if (!reader.Type(&type) || type != "form-data") {
        throw BadRequest(which + " has no Content-Disposition: form-data");
      }
      std::string param, param_value;
      bool ok = true, have_name = false, have_filename = false;
      while (reader.Next(&param, &param_value, &ok)) {
        if (param == "name") {
          if (have_name) throw BadRequest(which + " has two name parameters");
          have_name = true;
          part->name = param_value;
        } else if (param == "filename") {
          if (have_filename) throw BadRequest(which + " has two filename parameters");
          have_filename = true;
          part->filename = param_value;
        }
      }
      if (!ok) throw BadRequest(which + " has a malformed Content-Disposition header");
      if (!have_name) throw BadRequest(which + " has no name in its Content-Disposition");
      if (part->name.empty())
        throw BadRequest(which + " has an empty name in its Content-Disposition");
    } else if (EqualsIgnoreCase(field, "content-type")) {
      if (have_type) throw BadRequest(which + " has two Content-Type headers");
      have_type = true;
      if (value.empty()) throw BadRequest(which + " has an empty Content-Type");
      part->content_type = std::string(value);
    }
    // Other headers (Content-Transfer-Encoding, which RFC 7578 deprecates) are ignored.
  }
  if (!have_disposition) throw BadRequest(which + " has no Content-Disposition: form-data");
}

}  // namespace

std::optional<std::string> MultipartBoundary(std::string_view content_type) {
  ParamReader reader(content_type);
  std::string type;
  if (!reader.Type(&type) || type != "multipart/form-data") return std::nullopt;
  std::string name, value;
  std::optional<std::string> boundary;
  bool ok = true;
  while (reader.Next(&name, &value, &ok)) {
    if (name != "boundary") continue;
    if (boundary) return std::nullopt;  // two boundaries: ambiguous
    boundary = value;
  }
  if (!ok || !boundary || boundary->empty() || boundary->size() > 70 || boundary->back() == ' ') {
    return std::nullopt;
  }
  for (char c : *boundary) {
    if (!IsBoundaryChar(c)) return std::nullopt;
  }
  return boundary;
}

std::vector<FormPart> ParseMultipart(std::string_view body, std::string_view boundary,
                                     size_t max_parts) {
  if (boundary.empty()) throw BadRequest("no boundary");
  if (body.empty()) throw BadRequest("empty body");
  const std::string delimiter = "\r\n--" + std::string(boundary);
  const std::string_view dash_boundary = std::string_view(delimiter).substr(2);

  // The first delimiter may open the body without a preceding CRLF; otherwise it follows a
  // preamble, which is ignored.
  std::optional<Delimiter> d;
  if (body.substr(0, dash_boundary.size()) == dash_boundary) {
    d = DelimiterAt(body, 0, dash_boundary.size());
  }
  if (!d) d = NextDelimiter(body, delimiter, 0);
  if (!d) throw BadRequest("no opening boundary line \"--" + std::string(boundary) + "\"");

  std::vector<FormPart> parts;
  while (!d->close) {
    if (parts.size() == max_parts) {
      throw BadRequest("more than " + std::to_string(max_parts) + " parts");
    }
    const size_t start = d->end;
    d = NextDelimiter(body, delimiter, start);
    if (!d) throw BadRequest("no closing boundary \"--" + std::string(boundary) + "--\"");
    const std::string_view whole = body.substr(start, d->begin - start);
    // Headers, an empty line, then the data; a part with no headers starts with the CRLF.
    size_t data_start;
    std::string_view headers;
    if (whole.substr(0, 2) == "\r\n") {
      data_start = 2;
    } else {
      const size_t blank = whole.find("\r\n\r\n");
      if (blank == std::string_view::npos) {
        throw BadRequest("part " + std::to_string(parts.size() + 1) +
                         " has no empty line after its headers");
      }
      headers = whole.substr(0, blank);
      data_start = blank + 4;
    }
    FormPart part;
    ParsePartHeaders(headers, parts.size(), &part);
    part.body = whole.substr(data_start);
    parts.push_back(std::move(part));
  }
  return parts;
}

}  // namespace cvdeploy::server
