// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/health_probe.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>

#include <memory>
#include <type_traits>

#include "cvdeploy/error.h"

namespace cvdeploy::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct Url {
  bool tls = false;
  std::string host, port, target;
};

Url ParseUrl(const std::string& url) {
  Url u;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    u.tls = true;
    rest = url.substr(8);
  } else {
    throw InvalidArgument("health: URL '" + url + "' must start with http:// or https://");
  }
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  u.port = u.tls ? "443" : "80";
  if (!authority.empty() && authority.front() == '[') {  // [::1]:8080
    const size_t close = authority.find(']');
    if (close == std::string::npos) throw InvalidArgument("health: URL '" + url + "': bad host");
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') throw InvalidArgument("health: URL '" + url + "': bad host");
      u.port = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) u.port = authority.substr(colon + 1);
  }
  if (u.host.empty() || u.port.empty() ||
      u.port.find_first_not_of("0123456789") != std::string::npos || u.port.size() > 5) {
    throw InvalidArgument("health: URL '" + url + "': expected http[s]://HOST[:PORT]/PATH");
  }
  return u;
}

// The exchange as an asynchronous chain (connect, TLS handshake, write, read) so that the
// caller's io_context.run_for bounds all of it: Beast's synchronous calls ignore timeouts.
template <class Stream>
class Probe {
 public:
  Probe(Stream& stream, const Url& url, ProbeResult* result)
      : stream_(stream), url_(url), result_(result) {
    req_ = {http::verb::get, url_.target, 11};
    req_.set(http::field::host, url_.host);
    req_.set(http::field::user_agent, "cvdeploy-health");
    req_.set(http::field::connection, "close");
    parser_.body_limit(64 * 1024);
  }

  void Start(const tcp::resolver::results_type& endpoints) {
    beast::get_lowest_layer(stream_).async_connect(
        endpoints, [this](beast::error_code ec, const tcp::endpoint&) {
          if (Failed(ec)) return;
          if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
            Write();
          } else {
            stream_.async_handshake(asio::ssl::stream_base::client, [this](beast::error_code e) {
              if (!Failed(e)) Write();
            });
          }
        });
  }

 private:
  bool Failed(beast::error_code ec) {
    if (ec) result_->detail = ec.message();
    return static_cast<bool>(ec);
  }
  void Write() {
    http::async_write(stream_, req_, [this](beast::error_code ec, size_t) {
      if (Failed(ec)) return;
      http::async_read(stream_, buffer_, parser_, [this](beast::error_code e, size_t) {
        if (!Failed(e)) result_->status = static_cast<int>(parser_.get().result_int());
      });
    });
  }

  Stream& stream_;
  const Url& url_;
  ProbeResult* result_;
  http::request<http::empty_body> req_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

}  // namespace

ProbeResult ProbeUrl(const std::string& url, std::chrono::milliseconds timeout) {
  const Url u = ParseUrl(url);
  ProbeResult result;
  asio::io_context io;
  tcp::resolver::results_type endpoints;
  try {
    endpoints = tcp::resolver(io).resolve(u.host, u.port);
  } catch (const boost::system::system_error& e) {
    result.detail = u.host + ": " + e.code().message();
    return result;
  }
  asio::ssl::context context(asio::ssl::context::tls_client);
  context.set_verify_mode(asio::ssl::verify_none);  // see the header: nothing is trusted
  beast::tcp_stream plain(io);
  beast::ssl_stream<beast::tcp_stream> secure(io, context);
  std::unique_ptr<Probe<beast::tcp_stream>> plain_probe;
  std::unique_ptr<Probe<beast::ssl_stream<beast::tcp_stream>>> secure_probe;
  if (u.tls) {
    secure_probe =
        std::make_unique<Probe<beast::ssl_stream<beast::tcp_stream>>>(secure, u, &result);
    secure_probe->Start(endpoints);
  } else {
    plain_probe = std::make_unique<Probe<beast::tcp_stream>>(plain, u, &result);
    plain_probe->Start(endpoints);
  }
  io.run_for(timeout);
  if (result.status == 0 && result.detail.empty()) result.detail = "timed out";
  io.stop();
  return result;
}

}  // namespace cvdeploy::server
