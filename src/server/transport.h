// SPDX-License-Identifier: Apache-2.0
// HTTP/1.1 transport on Boost.Beast: asynchronous accept, read and write; keep-alive;
// pipelined requests answered one at a time in order (the next request is read only after
// the previous response is written). Request framing follows RFC 9112: a Transfer-Encoding
// other than a final, single chunked is refused (400, or 501 for codings such as gzip) and
// the connection closed; absolute-form targets are accepted; "OPTIONS *" is answered 204. Handlers
// run on I/O threads only long enough to hand work off: they answer through a Respond callback from
// any thread.
//
// The connection logic is a template over the stream type so that TLS (asio::ssl over the
// same tcp_stream) is one more instantiation, not a change to handlers.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "cvdeploy/server.h"
#include "server/http.h"

namespace cvdeploy::server {

// One completed exchange, for the access log and request metrics.
struct Exchange {
  const HttpRequest* request = nullptr;  // null when the request could not be parsed
  const HttpResponse* response = nullptr;
  std::string method, path, client, request_id;
  double latency_ms = 0;
  size_t bytes_in = 0, bytes_out = 0;
};
using ExchangeObserver = std::function<void(const Exchange&)>;
// Told of each connection refused at accept; reason "total" (max_connections) or "per_client".
using RefusalObserver = std::function<void(std::string_view reason)>;

class TlsManager;

// Accepts on one address and serves `handler`, over TLS when `tls` is given (each connection
// takes the manager's current context at accept and keeps it; the handshake is bounded by the
// read timeout; a failed handshake is counted by the manager and the connection closed).
// Thread safety: Start/BeginShutdown/
// ActiveConnections/BusyConnections may be called from any thread.
class HttpListener : public std::enable_shared_from_this<HttpListener> {
 public:
  // Throws cvdeploy::Error naming the address when it cannot bind: kInvalidArgument for a
  // host that does not resolve, kUnavailable when it cannot listen (address in use).
  static std::shared_ptr<HttpListener> Create(boost::asio::io_context& io, const std::string& host,
                                              int port, const TransportLimits& limits,
                                              Handler handler, ExchangeObserver observer,
                                              RefusalObserver on_refused = {},
                                              std::shared_ptr<TlsManager> tls = nullptr);
  ~HttpListener();
  int port() const { return port_; }  // the bound port (resolves port 0)
  bool tls() const;
  void Start();
  // Stops accepting and closes idle keep-alive connections; a connection with a request in
  // progress is closed after its response is written.
  void BeginShutdown();
  size_t ActiveConnections() const;
  // Connections between a request's first byte and its response's last.
  size_t BusyConnections() const;

  struct State;  // shared with the connections, which may outlive the listener

 private:
  HttpListener() = default;
  void Accept();

  int port_ = 0;
  std::shared_ptr<State> state_;
};

}  // namespace cvdeploy::server
