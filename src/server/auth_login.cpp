// SPDX-License-Identifier: Apache-2.0
// POST /v1/auth/login: {"username", "password", "totp"} -> {"token", "expires_in"}. Public
// (it is how a user gets a credential); throttled by the user store (per user and address,
// exponential backoff, lockout -> 429 with Retry-After). Every attempt is audited (never the
// password, the code or the token).
#include <nlohmann/json.hpp>
#include <optional>

#include "cvdeploy/error.h"
#include "cvdeploy/json.h"
#include "server/auth_gate.h"

namespace cvdeploy::server {
namespace {

using nlohmann::json;

std::string Field(const json& body, const char* name, bool required) {
  if (!body.contains(name)) {
    if (!required) return {};
    throw Error(ErrorCode::kInvalidArgument,
                std::string("login body: missing \"") + name + "\" (a string)");
  }
  if (!body[name].is_string() || body[name].get_ref<const std::string&>().size() > 1024) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("login body: \"") + name + "\" must be a string of at most 1024 bytes");
  }
  return body[name].get<std::string>();
}

// "address:port" -> "address": the throttle counts per address, not per connection.
std::string ClientAddress(const std::string& client) {
  const size_t colon = client.rfind(':');
  return colon == std::string::npos ? client : client.substr(0, colon);
}

// The fields of a login body, or the 413/400 answer. The answer never quotes the body: the
// JSON parser's message ("last read: ...") would hold the password.
std::optional<HttpResponse> ReadLoginBody(const std::string& text, std::string* user,
                                          std::string* password, std::string* totp) {
  if (text.size() > kMaxLoginBodyBytes) return JsonError(413, "login body larger than 4096 bytes");
  json body;
  try {
    body = ParseJsonBounded(text, "login body", 4);
  } catch (const Error&) {
    return JsonError(400,
                     R"(login body is not valid JSON: {"username", "password", "totp"} expected)");
  }
  if (!body.is_object()) return JsonError(400, "login body must be a JSON object");
  try {
    *user = Field(body, "username", true);
    *password = Field(body, "password", true);
    *totp = Field(body, "totp", false);
  } catch (const Error& e) {
    return JsonError(400, e.what());
  }
  return std::nullopt;
}

}  // namespace

void AuthGate::Login(HttpRequest& request, const Respond& respond) {
  if (request.method != "POST") {
    HttpResponse r = JsonError(405, "method not allowed; use POST");
    r.headers.emplace_back("Allow", "POST");
    return respond(std::move(r));
  }
  if (!auth_.login || !auth_.issue) {
    return respond(JsonError(404, "login is not enabled on this server (no users file)"));
  }
  const auto now = std::chrono::system_clock::now();
  json event{{"action", "login"},        {"request_id", request.request_id},
             {"client", request.client}, {"method", request.method},
             {"path", request.path},     {"username", ""}};
  std::string user, password, totp;
  if (std::optional<HttpResponse> refused = ReadLoginBody(request.body, &user, &password, &totp)) {
    // A malformed attempt is a failed login too (never with its body).
    registry_
        .GetCounter("cvdeploy_auth_failures_total", "Requests refused 401, by reason",
                    {{"reason", "malformed"}})
        .Inc();
    event["action"] = "login.failure";
    event["reason"] = "malformed";
    return Finish(std::move(event), std::move(*refused), respond);
  }
  event["username"] = user;
  const security::AuthResult result =
      auth_.login(user, password, totp, ClientAddress(request.client), now);
  if (!result.ok()) {
    registry_
        .GetCounter("cvdeploy_auth_failures_total", "Requests refused 401, by reason",
                    {{"reason", result.reason}})
        .Inc();
    event["action"] = "login.failure";
    event["reason"] = result.reason;
    HttpResponse r;
    if (result.retry_after_s > 0) {
      r = JsonError(429, result.message);
      r.headers.emplace_back("Retry-After", std::to_string(result.retry_after_s));
    } else {
      r = JsonError(401, result.message);
      r.headers.emplace_back("WWW-Authenticate", R"(Bearer realm="cvdeploy")");
    }
    return Finish(std::move(event), std::move(r), respond);
  }
  const Authenticators::Issued issued = auth_.issue(*result.identity, now);
  event["action"] = "login.success";
  event["identity"] = {{"name", result.identity->name},
                       {"method", security::AuthMethodName(security::AuthMethod::kSession)},
                       {"roles", result.identity->roles},
                       {"mfa", result.identity->mfa}};
  HttpResponse r;
  r.body =
      json{{"token", issued.token}, {"token_type", "Bearer"}, {"expires_in", issued.expires_in}}
          .dump();
  r.headers.emplace_back("Cache-Control", "no-store");
  r.identity = "session:" + result.identity->name;
  Finish(std::move(event), std::move(r), respond);
}

}  // namespace cvdeploy::server
