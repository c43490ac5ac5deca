// SPDX-License-Identifier: Apache-2.0
#include "server/http.h"

#include <atomic>
#include <new>
#include <nlohmann/json.hpp>

#include "server/http_error.h"

namespace cvdeploy::server {

std::optional<std::string_view> HttpRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  if (it == headers.end()) return std::nullopt;
  return std::string_view(it->second);
}

HttpResponse JsonError(int status, std::string_view message) {
  HttpResponse r;
  r.status = status;
  // A reason quoting client bytes must stay one line (control bytes escaped) and valid JSON
  // (invalid UTF-8 replaced).
  r.body = nlohmann::json{{"error", EscapeControlBytes(message)}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse ErrorResponse(const Status& status) {
  return JsonError(HttpStatusOf(status.code()), status.message());
}

struct Respond::State {
  explicit State(Send s) : send(std::move(s)) {}
  ~State() {
    if (!answered.exchange(true)) {
      Deliver(ErrorResponse(Status(ErrorCode::kUnavailable,
                                   "the server dropped the request before answering it; retry")));
    }
  }
  void Deliver(HttpResponse response) noexcept {
    try {
      send(std::move(response));
    } catch (...) {
      // Nothing left to answer with (the transport could not even post the response); the
      // connection's own timeouts close it.
    }
  }
  Send send;
  std::atomic<bool> answered{false};
};

Respond::Respond(Send send) : state_(std::make_shared<State>(std::move(send))) {}

void Respond::operator()(HttpResponse response) const noexcept {
  if (state_->answered.exchange(true)) return;  // a second answer is a bug; the first one stands
  state_->Deliver(std::move(response));
}

bool Respond::answered() const noexcept { return state_->answered.load(); }

HttpResponse CurrentExceptionResponse() noexcept {
  try {
    try {
      throw;
    } catch (const Error& e) {
      return ErrorResponse(e);
    } catch (const nlohmann::json::exception& e) {
      // Only client JSON reaches nlohmann inside a handler: a value of the wrong type or range.
      return ErrorResponse(
          Status(ErrorCode::kInvalidArgument, std::string("malformed request: ") + e.what()));
    } catch (const std::bad_alloc&) {
      HttpResponse r = ErrorResponse(
          Status(ErrorCode::kUnavailable, "out of memory while handling the request; retry later"));
      r.headers.emplace_back("Retry-After", "1");
      return r;
    } catch (const std::exception& e) {
      return ErrorResponse(Status(ErrorCode::kRuntime, std::string("internal error: ") + e.what()));
    }
  } catch (...) {
    // Not a std::exception, or building the answer failed (out of memory): a fixed answer that
    // needs no formatting.
  }
  HttpResponse r;
  r.status = HttpStatusOf(ErrorCode::kRuntime);
  r.body = R"({"error":"internal error"})";
  return r;
}

void Dispatch(const Handler& handler, HttpRequest& request, const Respond& respond) noexcept {
  try {
    handler(request, respond);
  } catch (...) {
    respond(CurrentExceptionResponse());
  }
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool ParseTarget(std::string_view target, std::string* path,
                 std::map<std::string, std::string>* query) {
  const size_t q = target.find('?');
  auto decoded = PercentDecode(target.substr(0, q), false);
  if (!decoded || decoded->empty() || (*decoded)[0] != '/') return false;
  *path = std::move(*decoded);
  query->clear();
  if (q == std::string_view::npos) return true;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto key = PercentDecode(pair.substr(0, eq), true);
    auto value = PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!key || !value) return false;
    (*query)[*key] = *value;
  }
  return true;
}

std::optional<RequestTarget> ParseRequestTarget(std::string_view target) {
  RequestTarget out;
  if (target == "*") {
    out.form = RequestTarget::Form::kAsterisk;
    out.path = "*";
    return out;
  }
  std::string_view origin = target;
  const size_t scheme_end = target.find("://");
  if (scheme_end != std::string_view::npos && (target.empty() || target[0] != '/')) {
    std::string scheme(target.substr(0, scheme_end));
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme != "http" && scheme != "https") return std::nullopt;
    const std::string_view rest = target.substr(scheme_end + 3);
    const size_t authority_end = rest.find_first_of("/?#");
    const std::string_view authority = rest.substr(0, authority_end);
    // An http(s) URI must have a host (RFC 9110 4.2.1) and userinfo is an error (4.2.4).
    if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
    for (const char c : authority) {
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
    }
    out.form = RequestTarget::Form::kAbsolute;
    out.authority = std::string(authority);
    origin =
        authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
    if (!origin.empty() && origin[0] == '#') return std::nullopt;  // never sent in a request
  }
  if (out.form == RequestTarget::Form::kAbsolute && (origin.empty() || origin[0] == '?')) {
    // "http://host" and "http://host?q" mean the path "/".
    if (!ParseTarget("/" + std::string(origin), &out.path, &out.query)) return std::nullopt;
    return out;
  }
  if (!ParseTarget(origin, &out.path, &out.query)) return std::nullopt;
  return out;
}

}  // namespace cvdeploy::server
