// SPDX-License-Identifier: Apache-2.0
#include "server/transport.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <map>
#include <optional>
#include <random>
#include <string_view>
#include <type_traits>

#include "server/http_error.h"
#include "server/tls.h"

namespace cvdeploy::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using Clock = std::chrono::steady_clock;

namespace {

class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  virtual void CloseIfIdle() = 0;
};

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id(16, '0');
  uint64_t v = rng();
  for (char& c : id) {
    c = kHex[v & 15];
    v >>= 4;
  }
  return id;
}

// A client-chosen id is echoed only when it is short and printable (it lands in logs).
bool UsableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') return false;
  }
  return true;
}

// A refusal of a request's framing (RFC 9112 section 6): the status and reason.
struct FramingError {
  int status;
  std::string message;
};

// The comma-separated elements of every `field` line, trimmed and lower-cased (parameters
// after ';' kept); empty elements are dropped as the list syntax allows.
std::vector<std::string> ListValues(const http::fields& fields, http::field field) {
  std::vector<std::string> out;
  for (const auto& f : fields) {
    if (f.name() != field) continue;
    const std::string_view value(f.value().data(), f.value().size());
    size_t start = 0;
    while (start <= value.size()) {
      const size_t comma = std::min(value.find(',', start), value.size());
      std::string item(value.substr(start, comma - start));
      for (char& c : item) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const size_t first = item.find_first_not_of(" \t");
      const size_t last = item.find_last_not_of(" \t");
      if (first != std::string::npos) out.push_back(item.substr(first, last - first + 1));
      start = comma + 1;
    }
  }
  return out;
}

// Checks how the request's body is delimited before it is read. Beast treats a
// Transfer-Encoding whose final coding is not chunked as "no body", which would let the body
// be read as a second request (request smuggling), and accepts Content-Length after such a
// Transfer-Encoding; both are refused here, and the connection is closed after the answer.
std::optional<FramingError> CheckFraming(const http::request_parser<http::string_body>& parser) {
  const auto& req = parser.get();
  const std::vector<std::string> codings = ListValues(req, http::field::transfer_encoding);
  const bool has_te = req.find(http::field::transfer_encoding) != req.end();
  if (has_te && req.version() < 11) {
    return FramingError{400, "Transfer-Encoding in an HTTP/1.0 request"};
  }
  if (has_te && req.find(http::field::content_length) != req.end()) {
    return FramingError{400, "both Content-Length and Transfer-Encoding"};
  }
  const std::vector<std::string> lengths = ListValues(req, http::field::content_length);
  for (const std::string& length : lengths) {
    if (length != lengths.front()) return FramingError{400, "conflicting Content-Length values"};
  }
  if (!has_te) return std::nullopt;
  std::string list;
  for (const std::string& coding : codings) list += (list.empty() ? "" : ", ") + coding;
  list = "Transfer-Encoding '" + list.substr(0, 64) + "'";
  if (codings.empty() || codings.back() != "chunked") {
    return FramingError{400, list + ": the final coding must be chunked"};
  }
  if (std::count(codings.begin(), codings.end(), "chunked") > 1) {
    return FramingError{400, list + ": chunked is applied more than once"};
  }
  if (codings.size() > 1) {
    return FramingError{501, list + ": only chunked is supported"};
  }
  return std::nullopt;
}

}  // namespace

struct HttpListener::State {
  explicit State(asio::io_context& io_context) : io(io_context), acceptor(asio::make_strand(io)) {}
  asio::io_context& io;
  tcp::acceptor acceptor;
  TransportLimits limits;
  Handler handler;
  ExchangeObserver observer;
  std::atomic<size_t> active{0}, busy{0};
  std::atomic<bool> shutting_down{false};
  std::function<void(std::string_view reason)> on_refused;
  std::shared_ptr<TlsManager> tls;  // null: plain HTTP
  std::mutex mu;
  std::vector<std::weak_ptr<ConnectionBase>> connections;  // pruned on accept
  std::mutex clients_mu;
  std::map<std::string, size_t> per_client;  // open connections by remote address
};

namespace {

// Gives back the per-client slot a connection from `client` held ("" : none).
void ReleaseClient(HttpListener::State& state, const std::string& client) noexcept {
  if (client.empty()) return;
  std::lock_guard<std::mutex> lock(state.clients_mu);
  auto it = state.per_client.find(client);
  if (it != state.per_client.end() && --it->second == 0) state.per_client.erase(it);
}

// One client connection. Runs on its own strand; every member is touched only there.
template <class Stream>
class Connection : public ConnectionBase, public std::enable_shared_from_this<Connection<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  // `client`: the remote address this connection counts against in State::per_client
  // (empty: not counted). `context`: the TLS context (kept for the connection's lifetime, so
  // a reload does not disturb it); null for plain HTTP.
  Connection(tcp::socket socket, std::shared_ptr<asio::ssl::context> context,
             std::shared_ptr<HttpListener::State> state, std::string client)
      : context_(std::move(context)),
        stream_(MakeStream(std::move(socket), context_.get())),
        state_(std::move(state)),
        client_(std::move(client)) {
    ++state_->active;
  }
  ~Connection() override {
    if (busy_) --state_->busy;
    --state_->active;
    ReleaseClient(*state_, client_);
  }

  // `refusal`: empty to serve the connection, else the reason it is answered 503 and closed
  // without reading a request (over TLS after the handshake, so the client can read it).
  void Run(const std::string& refusal) {
    if constexpr (kTls) {
      Lowest().expires_after(state_->limits.read_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this(), refusal](beast::error_code ec) {
                                self->OnHandshake(ec, refusal);
                              });
      return;
    }
    Serve(refusal);
  }

  void CloseIfIdle() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->closing_ = true;
      if (!self->busy_) self->Close();
    });
  }

 private:
  using Self = Connection<Stream>;

  static Stream MakeStream(tcp::socket socket, asio::ssl::context* context) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *context);
    } else {
      (void)context;
      return Stream(std::move(socket));
    }
  }

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  void OnHandshake(beast::error_code ec, const std::string& refusal) {
    if (ec) {
      if (!closed_ && state_->tls) state_->tls->CountHandshakeFailure(ec);
      closed_ = true;
      Lowest().close();
      return;
    }
    handshake_done_ = true;
    if constexpr (kTls) peer_ = VerifiedPeerCertificate(stream_.native_handle());
    Serve(refusal);
  }

  void Serve(const std::string& refusal) {
    if (!refusal.empty()) {
      keep_alive_ = false;
      Write(ErrorResponse(Status(ErrorCode::kUnavailable, refusal)));
      return;
    }
    ReadRequest();
  }

  void SetBusy(bool busy) {
    if (busy == busy_) return;
    busy_ = busy;
    if (busy) {
      ++state_->busy;
    } else {
      --state_->busy;
    }
  }

  void ReadRequest() {
    SetBusy(false);
    if (closing_ || state_->shutting_down) return Close();
    parser_.emplace();
    parser_->body_limit(state_->limits.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(state_->limits.max_header_bytes));
    bytes_in_ = 0;
    // Bytes of a pipelined request already here: it has started.
    if (buffer_.size() > 0) return StartRequest();
    // Waiting for a new request is bounded by the idle timeout. The first byte is read on its
    // own (Beast's parser reports nothing until the whole header is there), so that the read
    // timeout can start with it.
    Lowest().expires_after(state_->limits.idle_timeout);
    idle_read_pending_ = true;
    stream_.async_read_some(
        buffer_.prepare(kFirstReadBytes),
        beast::bind_front_handler(&Self::OnFirstBytes, this->shared_from_this()));
  }

  void OnFirstBytes(beast::error_code ec, size_t n) {
    idle_read_pending_ = false;
    if (ec) return OnReadError(ec);
    buffer_.commit(n);
    StartRequest();
  }

  // From a request's first byte, the whole of it (header and body) must arrive within the
  // read timeout.
  void StartRequest() {
    started_ = Clock::now();
    SetBusy(true);
    Lowest().expires_after(state_->limits.read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Self::OnHeader, this->shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t n) {
    if (ec) return OnReadError(ec);
    bytes_in_ += n;
    if (auto framing = CheckFraming(*parser_)) {
      // The body's extent is unknown: nothing after this header can be trusted as a request.
      keep_alive_ = false;
      version_ = parser_->get().version();
      return Write(JsonError(framing->status, framing->message));
    }
    auto& req = parser_->get();
    if (!parser_->is_done() && beast::iequals(req[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                     req.version());
      http::async_write(stream_, *cont,
                        [self = this->shared_from_this(), cont](beast::error_code wec, size_t) {
                          if (wec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return OnRead({}, 0);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Self::OnRead, this->shared_from_this()));
  }

  void OnReadError(beast::error_code ec) {
    keep_alive_ = false;
    if (ec == http::error::body_limit) {
      return Write(ErrorResponse(Status(
          ErrorCode::kTooLarge, "request body exceeds the limit of " +
                                    std::to_string(state_->limits.max_body_bytes) + " bytes")));
    }
    if (ec == http::error::header_limit) {
      return Write(JsonError(431, "request headers exceed the limit of " +
                                      std::to_string(state_->limits.max_header_bytes) + " bytes"));
    }
    // A closed, reset or timed-out connection (a slow client) is simply dropped; a request
    // that is not HTTP gets a 400.
    if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return Write(JsonError(400, "malformed HTTP request: " + ec.message()));
    }
    Close();
  }

  void OnRead(beast::error_code ec, size_t n) {
    if (ec) return OnReadError(ec);
    bytes_in_ += n;
    auto req = parser_->release();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    request_ = HttpRequest{};
    request_.method = std::string(req.method_string());
    request_.target = std::string(req.target());
    for (const auto& field : req) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      // A repeated Authorization field is joined (RFC 9110 5.3), which no credential parser
      // accepts: a proxy may have checked the first, the last must not win silently.
      auto [it, added] = request_.headers.try_emplace(name, field.value());
      if (!added && name == "authorization") {
        it->second += ", " + std::string(field.value());
      } else if (!added) {
        it->second = std::string(field.value());
      }
    }
    request_.body = std::move(req.body());
    beast::error_code addr_ec;
    auto remote = Lowest().socket().remote_endpoint(addr_ec);
    if (!addr_ec)
      request_.client = remote.address().to_string() + ":" + std::to_string(remote.port());
    auto id = request_.Header("x-request-id");
    request_.request_id = id && UsableRequestId(*id) ? std::string(*id) : NewRequestId();
    request_.peer_certificate = peer_;

    auto target = ParseRequestTarget(request_.target);
    if (!target) return Write(JsonError(400, "malformed request target"));
    if (target->form == RequestTarget::Form::kAsterisk) return AnswerAsterisk();
    if (target->form == RequestTarget::Form::kAbsolute) {
      // RFC 9112 3.2.2: the target's authority replaces the Host field.
      request_.headers["host"] = target->authority;
    }
    request_.path = std::move(target->path);
    request_.query = std::move(target->query);
    Respond respond([self = this->shared_from_this()](HttpResponse response) {
      asio::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable {
        self->Write(std::move(response));
      });
    });
    Dispatch(state_->handler, request_, respond);
  }

  // "OPTIONS *" asks about the server as a whole; any other method with "*" is malformed.
  void AnswerAsterisk() {
    if (request_.method != "OPTIONS") {
      return Write(JsonError(400, "request target '*' is only valid with OPTIONS"));
    }
    HttpResponse r;
    r.status = 204;
    r.content_type.clear();
    r.headers.emplace_back("Allow", "GET, POST");
    Write(std::move(r));
  }

  void Write(HttpResponse response) {
    response_ = std::move(response);
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response_.status), version_ ? version_ : 11);
    res->set(http::field::server, "cvdeploy");
    if (!response_.content_type.empty()) {
      res->set(http::field::content_type, response_.content_type);
    }
    if (!request_.request_id.empty()) res->set("X-Request-Id", request_.request_id);
    for (const auto& [name, value] : response_.headers) res->set(name, value);
    // A HEAD answer carries the headers only (a body would corrupt the next response).
    if (request_.method != "HEAD") res->body() = std::move(response_.body);
    res->keep_alive(keep_alive_ && !closing_ && !state_->shutting_down);
    res->prepare_payload();
    bytes_out_ = res->body().size();
    Lowest().expires_after(state_->limits.read_timeout);
    http::async_write(stream_, *res,
                      [self = this->shared_from_this(), res](beast::error_code ec, size_t n) {
                        self->OnWrite(ec, n, res->need_eof());
                      });
  }

  void OnWrite(beast::error_code ec, size_t n, bool close) {
    if (state_->observer) {
      Exchange x;
      const bool parsed = !request_.method.empty();
      x.request = parsed ? &request_ : nullptr;
      x.response = &response_;
      x.method = request_.method;
      x.path = request_.path;
      x.client = request_.client;
      x.request_id = request_.request_id;
      x.latency_ms =
          started_ == Clock::time_point{}
              ? 0
              : std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
      x.bytes_in = bytes_in_;
      x.bytes_out = n ? n : bytes_out_;
      try {
        state_->observer(x);
      } catch (...) {
        // Logging must never take a connection down.
      }
    }
    request_ = HttpRequest{};
    started_ = {};
    if (ec || close) return Close();
    ReadRequest();
  }

  // Half-closes, then drains what the client still sends (bounded) so that an early answer
  // such as 413 reaches it instead of being lost to a reset.
  void Close() {
    if (closed_) return;
    closed_ = true;
    SetBusy(false);
    if constexpr (kTls) {
      // close_notify, then wait (bounded) for the peer's; a peer that just closes is fine.
      // No close_notify while an idle read is pending on the TLS stream (one operation at a
      // time on its engine): an idle keep-alive connection is closed at the TCP level.
      if (!handshake_done_ || idle_read_pending_) return Lowest().close();
      Lowest().expires_after(std::chrono::seconds(2));
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->Lowest().close(); });
      return;
    }
    beast::error_code ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      Lowest().close();
      return;
    }
    Lowest().expires_after(std::chrono::seconds(2));
    Drain();
  }

  void Drain() {
    auto scratch = std::make_shared<std::array<char, 16384>>();
    stream_.async_read_some(asio::buffer(*scratch), [self = this->shared_from_this(), scratch](
                                                        beast::error_code ec, size_t) {
      if (ec) {
        self->Lowest().close();
        return;
      }
      self->Drain();
    });
  }

  static constexpr size_t kFirstReadBytes = 4096;

  std::shared_ptr<asio::ssl::context> context_;  // before stream_, which refers to it
  Stream stream_;
  std::shared_ptr<HttpListener::State> state_;
  const std::string client_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpRequest request_;
  HttpResponse response_;
  unsigned version_ = 11;
  bool keep_alive_ = true, busy_ = false, closing_ = false, closed_ = false;
  bool handshake_done_ = false, idle_read_pending_ = false;
  std::optional<PeerCertificate> peer_;  // the verified client certificate (mTLS)
  Clock::time_point started_{};
  size_t bytes_in_ = 0, bytes_out_ = 0;
};

// The peer's address without the port ("" when the socket no longer has one).
std::string RemoteAddress(const tcp::socket& socket) {
  beast::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  return ec ? std::string() : endpoint.address().to_string();
}

}  // namespace

std::shared_ptr<HttpListener> HttpListener::Create(asio::io_context& io, const std::string& host,
                                                   int port, const TransportLimits& limits,
                                                   Handler handler, ExchangeObserver observer,
                                                   RefusalObserver on_refused,
                                                   std::shared_ptr<TlsManager> tls) {
  auto listener = std::shared_ptr<HttpListener>(new HttpListener());
  auto state = std::make_shared<State>(io);
  state->limits = limits;
  state->handler = std::move(handler);
  state->observer = std::move(observer);
  state->on_refused = std::move(on_refused);
  state->tls = std::move(tls);
  const std::string where = host + ":" + std::to_string(port);
  tcp::resolver::results_type results;
  try {
    tcp::resolver resolver(io);
    results = resolver.resolve(host, std::to_string(port),
                               tcp::resolver::passive | tcp::resolver::numeric_service);
  } catch (const boost::system::system_error& e) {
    // A host that does not resolve is a wrong argument, not a momentary state.
    throw InvalidArgument("cannot resolve " + host + ": " + e.code().message());
  }
  if (results.empty()) throw InvalidArgument("cannot resolve " + host);
  try {
    const tcp::endpoint endpoint = results.begin()->endpoint();
    state->acceptor.open(endpoint.protocol());
    state->acceptor.set_option(asio::socket_base::reuse_address(true));
    state->acceptor.bind(endpoint);
    state->acceptor.listen(asio::socket_base::max_listen_connections);
    listener->port_ = state->acceptor.local_endpoint().port();
  } catch (const boost::system::system_error& e) {
    // Address in use (or not available on this host): the run failed, exit 4 in the CLI.
    throw Unavailable("cannot listen on " + where + ": " + e.code().message());
  }
  listener->state_ = std::move(state);
  return listener;
}

HttpListener::~HttpListener() = default;

bool HttpListener::tls() const { return state_->tls != nullptr; }
size_t HttpListener::ActiveConnections() const { return state_->active.load(); }
size_t HttpListener::BusyConnections() const { return state_->busy.load(); }

void HttpListener::Start() { Accept(); }

namespace {

template <class Stream>
void StartConnection(const std::shared_ptr<HttpListener::State>& state, tcp::socket socket,
                     std::shared_ptr<asio::ssl::context> context, const std::string& client,
                     const std::string& refusal) {
  std::shared_ptr<Connection<Stream>> connection;
  try {
    connection =
        std::make_shared<Connection<Stream>>(std::move(socket), std::move(context), state, client);
  } catch (...) {
    ReleaseClient(*state, client);  // from here on, the connection's destructor does it
    throw;
  }
  {
    std::lock_guard<std::mutex> lock(state->mu);
    std::erase_if(state->connections, [](const auto& w) { return w.expired(); });
    state->connections.push_back(connection);
  }
  connection->Run(refusal);
}

// Counts a new connection against the limits and starts it (or its 503 refusal).
void ServeConnection(const std::shared_ptr<HttpListener::State>& state, tcp::socket socket) {
  beast::error_code nodelay_ec;
  socket.set_option(tcp::no_delay(true), nodelay_ec);
  std::string refusal, reason, client = RemoteAddress(socket);
  if (state->active.load() >= state->limits.max_connections) {
    reason = "total";
    refusal = "too many connections (limit " + std::to_string(state->limits.max_connections) + ")";
  } else if (!client.empty()) {
    std::lock_guard<std::mutex> lock(state->clients_mu);
    size_t& open = state->per_client[client];
    if (open >= state->limits.max_connections_per_client) {
      reason = "per_client";
      refusal = "too many connections from " + client + " (limit " +
                std::to_string(state->limits.max_connections_per_client) + " per client)";
      if (open == 0) state->per_client.erase(client);
    } else {
      ++open;
    }
  }
  if (!refusal.empty()) {
    client.clear();  // a refused connection does not count against its client
    if (state->on_refused) {
      try {
        state->on_refused(reason);
      } catch (...) {
        // Counting must never take the listener down.
      }
    }
  }
  if (state->tls) {
    StartConnection<TlsStream>(state, std::move(socket), state->tls->Context(), client, refusal);
  } else {
    StartConnection<beast::tcp_stream>(state, std::move(socket), nullptr, client, refusal);
  }
}

}  // namespace

void HttpListener::Accept() {
  auto state = state_;
  state->acceptor.async_accept(
      asio::make_strand(state->io),
      [state, self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
        if (state->shutting_down) return;
        if (ec) {
          if (ec == asio::error::operation_aborted) return;
          // Out of descriptors and similar: back off briefly instead of spinning.
          auto timer =
              std::make_shared<asio::steady_timer>(state->io, std::chrono::milliseconds(50));
          timer->async_wait([self, timer](beast::error_code) { self->Accept(); });
          return;
        }
        try {
          ServeConnection(state, std::move(socket));
        } catch (...) {
          // Out of memory setting the connection up: this one is dropped (its socket closes
          // as it unwinds), the listener goes on accepting.
        }
        self->Accept();
      });
}

void HttpListener::BeginShutdown() {
  state_->shutting_down = true;
  asio::post(state_->acceptor.get_executor(), [state = state_] {
    beast::error_code ec;
    state->acceptor.close(ec);
  });
  std::vector<std::shared_ptr<ConnectionBase>> live;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    for (auto& w : state_->connections) {
      if (auto c = w.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) c->CloseIfIdle();
}

}  // namespace cvdeploy::server
