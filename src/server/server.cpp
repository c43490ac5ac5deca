// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/server.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include "cvdeploy/error.h"
#include "cvdeploy/security/crypto.h"
#include "server/api.h"
#include "server/auth_setup.h"
#include "server/http_error.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/request_log.h"
#include "server/sampler.h"
#include "server/tls.h"
#include "server/trace_context.h"
#include "server/transport.h"

namespace cvdeploy::server {
namespace {

// One JSON object per line; the time comes from spdlog's pattern, the rest from the record.
std::shared_ptr<spdlog::logger> AccessLogger(const std::string& target) {
  if (target.empty()) return nullptr;
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (target == "-") {
      logger = std::make_shared<spdlog::logger>("access",
                                                std::make_shared<spdlog::sinks::stdout_sink_mt>());
    } else {
      logger = std::make_shared<spdlog::logger>(
          "access", std::make_shared<spdlog::sinks::basic_file_sink_mt>(target, false));
    }
  } catch (const spdlog::spdlog_ex& e) {
    throw BadInput(target + ": cannot open the access log: " + e.what());
  }
  logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%f%z",%v})");
  logger->flush_on(spdlog::level::info);
  return logger;
}

void LogExchange(spdlog::logger& logger, const Exchange& x) {
  nlohmann::ordered_json record = {{"method", x.method},
                                   {"path", x.path},
                                   {"status", x.response ? x.response->status : 0},
                                   {"latency_ms", std::round(x.latency_ms * 1000) / 1000},
                                   {"model", x.response ? x.response->log.model : ""},
                                   {"version", x.response ? x.response->log.version : ""},
                                   {"batch_size", x.response ? x.response->log.batch_size : 0},
                                   {"bytes_in", x.bytes_in},
                                   {"bytes_out", x.bytes_out},
                                   {"client", x.client},
                                   {"request_id", x.request_id},
                                   {"identity", x.response ? x.response->identity : ""},
                                   {"trace_id", x.response ? x.response->trace_id : ""},
                                   {"span_id", x.response ? x.response->span_id : ""}};
  if (x.response && x.response->timings) {
    record["timings"] = nlohmann::ordered_json::parse(TimingsJson(*x.response->timings));
  }
  std::string text = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // Drop the braces: the pattern supplies the object around the time field.
  logger.info(std::string_view(text).substr(1, text.size() - 2));
}

// n random bytes as lower-case hex, never all zero (an all-zero id is invalid in W3C Trace
// Context).
std::string NewTraceId(size_t n) {
  for (;;) {
    std::string id = security::HexEncode(security::RandomBytes(n));
    if (id.find_first_not_of('0') != std::string::npos) return id;
  }
}

// Gives each request a span: a new span id in the caller's trace (a valid `traceparent`) or
// in a new trace; the response carries `traceparent` (and the caller's `tracestate`) and the
// access log the ids. A malformed header is ignored (W3C Trace Context), never an error.
Handler Traced(Handler inner) {
  return [inner = std::move(inner)](HttpRequest& request, Respond respond) {
    std::optional<TraceParent> parent;
    if (auto h = request.Header("traceparent")) parent = ParseTraceparent(*h);
    std::optional<std::string> state;
    if (auto h = request.Header("tracestate"); h && parent) state = SanitizeTracestate(*h);
    const std::string trace_id = parent ? parent->trace_id : NewTraceId(16);
    const std::string span_id = NewTraceId(8);
    const uint8_t flags = parent ? parent->flags : 0x01;
    request.trace_id = trace_id;
    Respond traced([respond, trace_id, span_id, flags, state](HttpResponse response) {
      response.headers.emplace_back("traceparent", FormatTraceparent(trace_id, span_id, flags));
      if (state) response.headers.emplace_back("tracestate", *state);
      response.trace_id = trace_id;
      response.span_id = span_id;
      respond(std::move(response));
    });
    // Every event line written while the handler runs here names the request (log.h).
    RequestLogScope scope(request.request_id, trace_id);
    try {
      inner(request, traced);
    } catch (...) {
      traced(CurrentExceptionResponse());
    }
  };
}

// The event line about a request answered with a server error (request_log.h).
void LogServerError(const Exchange& x) {
  if (!x.response) return;
  if (auto line = ServerErrorEventLine(x.response->status, x.request_id, x.response->trace_id,
                                       x.method, x.path, x.response->body)) {
    // The text line names the ids itself; JSON lines carry them as fields too.
    std::optional<RequestLogScope> scope;
    if (CurrentLogFormat() == LogFormat::kJson) scope.emplace(x.request_id, x.response->trace_id);
    Log(LogLevel::kError, *line);
  }
}

// TLS for the listeners (null without). Throws (missing file, bad or mismatched certificate
// or key, key file too open) before any socket is bound.
std::shared_ptr<TlsManager> MakeTls(const TlsOptions& options, Registry& registry) {
  if (!options.enabled()) return nullptr;
  auto tls = std::make_shared<TlsManager>(options, &registry, LogNamed);
  const CertificateSummary cert = tls->Certificate();
  const char* auth[] = {"not requested", "optional", "required"};
  Log(LogLevel::kInfo, "TLS: certificate " + cert.subject + ", serial " + cert.serial_hex +
                           ", expires " + FormatUtc(cert.not_after) + "; client certificates " +
                           auth[static_cast<int>(options.client_auth)]);
  return tls;
}

// "" without TLS (the log line stays as it was), else "https " or "http " (--metrics-tls off).
std::string MetricsScheme(bool tls, const HttpListener& metrics) {
  if (!tls) return "";
  return metrics.tls() ? "https " : "http ";
}

// Reloads of the TLS files on SIGHUP (caught only with TLS: otherwise SIGHUP keeps its
// default) and by polling. Tick() runs them on the main loop, off the I/O threads, since a
// reload reads files.
class TlsReloader {
 public:
  TlsReloader(boost::asio::io_context& io, std::shared_ptr<TlsManager> tls, double interval_s)
      : hangup_(io), tls_(std::move(tls)), interval_(interval_s), next_poll_(Next()) {
    if (!tls_) return;
    hangup_.add(SIGHUP);
    Await();
  }
  void Tick() {
    if (!tls_) return;
    if (requested_.exchange(false)) tls_->Reload();
    if (interval_.count() > 0 && Clock::now() >= next_poll_) {
      next_poll_ = Next();
      tls_->ReloadIfChanged();
    }
  }

 private:
  Clock::time_point Next() const {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(interval_);
  }
  void Await() {
    hangup_.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      requested_ = true;
      Await();
    });
  }

  boost::asio::signal_set hangup_;
  std::shared_ptr<TlsManager> tls_;
  std::chrono::duration<double> interval_;
  Clock::time_point next_poll_;
  std::atomic<bool> requested_{false};
};

// Runs io on n threads (at least one). An exception out of a completion handler (out of
// memory while Beast reads a body) ends only the connection it came from, whose handler state
// unwinds; the thread serves on.
std::vector<std::thread> StartIoThreads(boost::asio::io_context& io, int n) {
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, n); ++i) {
    threads.emplace_back([&io] {
      for (;;) {
        try {
          io.run();
          return;
        } catch (const std::exception& e) {
          Log(LogLevel::kWarning,
              std::string("I/O thread: ") + e.what() + "; a connection was dropped");
        } catch (...) {
          Log(LogLevel::kWarning, "I/O thread: unknown exception; a connection was dropped");
        }
      }
    });
  }
  return threads;
}

}  // namespace

int RunServer(const ServerOptions& options, const ExitCodeOfStatus& exit_code_of) {
  Registry registry;
  AddProcessMetrics(registry);
  auto& http_requests =
      registry.GetCounter("cvdeploy_http_requests_total", "HTTP requests answered, all routes", {});
  auto access = AccessLogger(options.access_log);
  const std::string refused_help =
      "Connections refused at accept: over --max-connections (reason=\"total\") or over "
      "--max-connections-per-client (reason=\"per_client\")";
  auto& refused_total = registry.GetCounter("cvdeploy_http_connections_refused_total", refused_help,
                                            {{"reason", "total"}});
  auto& refused_per_client = registry.GetCounter("cvdeploy_http_connections_refused_total",
                                                 refused_help, {{"reason", "per_client"}});
  auto on_refused = [&](std::string_view reason) {
    (reason == "per_client" ? refused_per_client : refused_total).Inc();
  };

  // Refuses a non-loopback bind without authentication (kInvalidArgument) before anything
  // else starts; loads the policy, keys and audit log.
  SecurityStack security(options, registry, LogNamed);
  std::shared_ptr<TlsManager> tls = MakeTls(options.tls, registry);
  if (tls) {
    tls->SetReloadHook(
        [&security](bool ok, const std::string& detail) { security.CertificateEvent(ok, detail); });
  }

  // Before the repository, so that it outlives every scheduler that feeds it. Throws
  // kPermissionDenied for a directory that cannot be created or written.
  std::unique_ptr<Sampler> sampler;
  if (options.sampling.enabled()) sampler = std::make_unique<Sampler>(options.sampling, registry);
  ModelRepository repository(options.repository, registry,
                             [&security](const std::string& level, const std::string& message) {
                               LogNamed(level, message);
                               security.RepositoryEvent(level, message);
                             });
  boost::asio::io_context io;
  ApiOptions api_options = options.api;
  // Port 0 means "any free port" for each listener, so two zeros are two listeners.
  api_options.serve_metrics =
      !options.metrics_port || (*options.metrics_port == options.port && options.port != 0);
  Api api(repository, registry, api_options, sampler.get());
  auto observer = [&](const Exchange& x) {
    http_requests.Inc();
    if (access) LogExchange(*access, x);
    LogServerError(x);
  };
  // Throws kInvalidArgument (a host that does not resolve) or kUnavailable (address in use).
  std::shared_ptr<HttpListener> main, metrics;
  main = HttpListener::Create(
      io, options.host, options.port, options.limits,
      Traced(security.Protect([&api](HttpRequest& r, Respond respond) { api.Handle(r, respond); })),
      observer, on_refused, tls);
  if (!api_options.serve_metrics) {
    metrics = HttpListener::Create(
        io, options.host, *options.metrics_port, options.limits,
        security.Protect([&registry](HttpRequest& r, Respond respond) {
          if (r.path != "/metrics")
            return respond(ErrorResponse(NotFound("only /metrics is served here")));
          HttpResponse res;
          res.content_type = "text/plain; version=0.0.4; charset=utf-8";
          res.body = registry.Render();
          respond(std::move(res));
        }),
        observer, on_refused, options.tls.metrics_tls ? tls : nullptr);
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  std::atomic<bool> stop_requested{false};
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) stop_requested = true;
  });
  TlsReloader tls_reloader(io, tls, options.tls.reload_interval_s);
  main->Start();
  if (metrics) metrics->Start();
  const std::string scheme = tls ? "https://" : "http://";
  Log(LogLevel::kInfo, "listening on " + scheme + options.host + ":" +
                           std::to_string(main->port()) +
                           (metrics ? " (metrics on " + MetricsScheme(tls != nullptr, *metrics) +
                                          "port " + std::to_string(metrics->port()) + ")"
                                    : ""));
  security.Started(options.host + ":" + std::to_string(main->port()));
  repository.Start();

  // Keeps io.run() going while every connection waits on a scheduler: once the acceptor
  // closes for the drain there may be no pending operation, and the responses of requests
  // still in flight are posted later.
  auto keep_running = boost::asio::make_work_guard(io);
  std::vector<std::thread> io_threads = StartIoThreads(io, options.io_threads);
  Status stopped;  // ok: stopped by a signal
  bool reported_ready = false;
  while (!stop_requested) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    security.Tick();
    tls_reloader.Tick();
    if (!reported_ready && repository.StartupDone()) {
      reported_ready = true;
      const auto failures = repository.StartupFailures();
      for (const auto& f : failures) Log(LogLevel::kError, f);
      if (!failures.empty() && options.exit_on_error) {
        const std::string message =
            "a model failed to load; exiting (start with --exit-on-error=false to serve the "
            "others)";
        Log(LogLevel::kError, message);
        stopped = BadInput(message);
        break;
      }
      if (repository.AllReady()) Log(LogLevel::kInfo, "ready");
    }
  }

  // Drain: readiness goes false, no new connections, idle ones close; requests in progress
  // finish (bounded by the drain timeout).
  api.SetDraining();
  if (stopped.ok()) Log(LogLevel::kInfo, "shutting down: draining in-flight requests");
  main->BeginShutdown();
  if (metrics) metrics->BeginShutdown();
  const auto drain_until = Clock::now() + options.drain_timeout;
  while (Clock::now() < drain_until &&
         (main->BusyConnections() > 0 || (metrics && metrics->BusyConnections() > 0))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const bool drained = main->BusyConnections() == 0;
  io.stop();
  for (auto& t : io_threads) t.join();
  security.Stopped();
  if (!drained) {
    Log(LogLevel::kWarning, "drain timeout passed with requests in progress; exiting without them");
    std::fflush(stdout);
    // Queued work would otherwise run to completion in destructors.
    std::_Exit(exit_code_of(stopped));
  }
  if (stopped.ok()) Log(LogLevel::kInfo, "stopped");
  return exit_code_of(stopped);
}

}  // namespace cvdeploy::server
