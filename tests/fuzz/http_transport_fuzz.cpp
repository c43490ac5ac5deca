// SPDX-License-Identifier: Apache-2.0
// The HTTP transport (server/transport.h) driven through its own connection code: an
// HttpListener on 127.0.0.1 (an ephemeral port) in this process, and each input sent as the
// raw bytes of one client connection, which then half-closes and reads until the server
// closes. The connection class is internal to transport.cpp and bound to a TCP stream, so
// loopback is the nearest way in (a Connection<Stream> template reachable from a header
// would allow beast's in-memory test stream instead, at several times the speed).
//
// The limits are the transport's, scaled down (1 KiB of header, 4 KiB of body) so that
// small inputs reach the 413 and 431 paths. Checks, besides the sanitizers: the server
// answers or closes within 10 s of the client's end of input (a hang aborts), every byte it
// sends parses as complete HTTP responses with a status in 100..599, and the connection
// is released (no connection outlives its client).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "server/http.h"
#include "server/transport.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using cvdeploy::server::HttpRequest;
using cvdeploy::server::HttpResponse;
using cvdeploy::server::Respond;

[[noreturn]] void Fail(const char* why) {
  std::fprintf(stderr, "http_transport_fuzz: %s\n", why);
  std::abort();
}

// A handler that exercises the ways real handlers answer: at once, later from another
// task on the I/O context (as the scheduler does), by throwing, or (a handler bug the
// transport must absorb) twice.
void Handle(asio::io_context& io, HttpRequest& request, Respond respond) {
  if (request.path == "/throw") throw std::runtime_error("handler failure");
  HttpResponse response;
  response.content_type = "text/plain";
  response.body =
      request.method + " " + request.path + " q=" + std::to_string(request.query.size()) +
      " h=" + std::to_string(request.headers.size()) + " b=" + std::to_string(request.body.size());
  if (request.path == "/later") {
    asio::post(io, [respond, response]() mutable { respond(std::move(response)); });
    return;
  }
  if (request.path == "/twice") respond(response);
  respond(std::move(response));
}

struct Server {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::shared_ptr<cvdeploy::server::HttpListener> listener;
  std::thread thread;
};

// Started once; never destroyed (its I/O thread runs until the process exits).
Server& GetServer() {
  static Server* server = [] {
    auto* s = new Server;
    cvdeploy::server::TransportLimits limits;
    limits.max_body_bytes = 4096;
    limits.max_header_bytes = 1024;
    limits.read_timeout = std::chrono::seconds(10);
    limits.idle_timeout = std::chrono::seconds(10);
    s->listener = cvdeploy::server::HttpListener::Create(
        s->io, "127.0.0.1", 0, limits,
        [s](HttpRequest& request, Respond respond) { Handle(s->io, request, std::move(respond)); },
        nullptr);
    s->listener->Start();
    s->thread = std::thread([s] { s->io.run(); });
    return s;
  }();
  return *server;
}

std::string Exchange(int port, const uint8_t* data, size_t size) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A long run opens hundreds of connections a second; when the server closed first, its
  // side keeps TIME_WAIT for a minute and loopback's ephemeral ports can run out
  // (EADDRNOTAVAIL). That is the harness's limit, not a server fault: wait and retry. Any
  // other failure (ECONNREFUSED: the listener is gone) is one.
  int fd = -1;
  for (int attempt = 0;; ++attempt) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) Fail("socket failed");
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) break;
    const int err = errno;
    ::close(fd);
    if ((err != EADDRNOTAVAIL && err != EAGAIN && err != EINTR) || attempt == 3000) {
      std::fprintf(stderr, "http_transport_fuzz: connect: %s\n", std::strerror(err));
      Fail("connect failed");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  for (size_t sent = 0; sent < size;) {
    const ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server answered early (413, 431) and stopped reading: fine
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string received;
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      received.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      Fail("the server neither answered nor closed within 10 s of the end of input");
    }
    break;  // EOF, or a reset after the server's answer
  }
  // Close with a reset: no TIME_WAIT, so a long run does not exhaust ephemeral ports.
  linger no_linger{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &no_linger, sizeof(no_linger));
  ::close(fd);
  return received;
}

// Everything the server sent must be a sequence of complete HTTP responses.
void CheckResponses(const std::string& received) {
  size_t offset = 0;
  while (offset < received.size()) {
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    for (int step = 0; !parser.is_done(); ++step) {
      if (step > 8) Fail("response parser made no progress");
      beast::error_code ec;
      offset += parser.put(asio::buffer(received.data() + offset, received.size() - offset), ec);
      if (ec == http::error::need_more && offset == received.size()) Fail("truncated response");
      if (ec && ec != http::error::need_more) Fail("malformed response");
    }
    const unsigned status = parser.get().result_int();
    if (status < 100 || status > 599) Fail("status outside 100..599");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Server& server = GetServer();
  CheckResponses(Exchange(server.listener->port(), data, size));
  // The connection must go away once its client has: wait for it (bounded), so that one
  // input's connection never overlaps the next one's.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server.listener->ActiveConnections() > 0) {
    if (std::chrono::steady_clock::now() > deadline) Fail("a connection outlived its client");
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  return 0;
}
