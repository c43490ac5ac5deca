// SPDX-License-Identifier: Apache-2.0
// The inference server as a library (cvdeploy_server): `cvdeploy serve` fills ServerOptions
// and calls RunServer, which binds the listeners, loads the models in the background (live at
// once, ready after warm-up), serves until SIGINT/SIGTERM, then drains. Everything else of the
// server (transport, routes, scheduling, repository, metrics) is internal to src/server;
// docs/server.md describes the options' defaults and behaviour.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cvdeploy/status.h"

#include "cvdeploy/options.h"  // kDefaultMaxModelBytes

namespace cvdeploy::server {

// How the model repository changes after start: never, by polling its directory, or only on
// explicit load/unload requests.
enum class ModelControl { kNone, kPoll, kExplicit };

// The models to serve and how they are loaded.
struct RepositoryOptions {
  std::string dir;  // empty: no repository
  struct File {
    std::string name, path;
  };
  std::vector<File> files;  // --model PATH[:name]
  ModelControl control = ModelControl::kNone;
  double poll_interval_s = 0;
  std::vector<std::string> load_at_start;  // kExplicit: models loaded at start
  int instances = 0, threads = 0;          // server-wide defaults for configs that leave them 0
  // Rect letterbox on models with dynamic spatial axes, for configs without "rect" (--rect).
  bool rect = true;
  // Engine thread spinning of every version (--spin); kAuto: off (instances and the HTTP
  // threads share the cores; ResolveSpin).
  Spin spin = Spin::kAuto;
  // ONNX Runtime's graph optimization level of versions whose config leaves it out (--graph-opt).
  GraphOptimization graph_optimization = GraphOptimization::kAll;
  uint64_t max_model_bytes = kDefaultMaxModelBytes;  // larger model files are refused unread
  // Protected models (docs/security.md): model packages (model.cvdm) are opened with the data
  // key from a file or a command run at each load; signed packages must verify against the
  // *.pub keys in trusted_keys_dir; require_signed refuses everything else (plain .onnx too).
  std::string decrypt_key_file, decrypt_key_cmd, trusted_keys_dir;
  bool require_signed = false;
  // Run a version's golden set (package or golden/ beside model.onnx) before it may serve.
  bool golden_gate = true;
};

// Limits of the HTTP transport, per listener.
struct TransportLimits {
  size_t max_body_bytes = 32u << 20;              // larger bodies: 413 before they are read
  size_t max_header_bytes = 16u << 10;            // request line + headers; larger: 431
  std::chrono::milliseconds read_timeout{30000};  // a whole request, header included, from
                                                  // its first byte
  std::chrono::milliseconds idle_timeout{60000};  // keep-alive wait for the next request
  size_t max_connections = 1024;                  // more: 503 and close
  // Open connections from one remote address (port ignored); more: 503 and close, so that one
  // client cannot take every connection.
  size_t max_connections_per_client = 64;
};

// The routes' options.
struct ApiOptions {
  bool explicit_control = false;                     // repository load/unload allowed
  bool serve_metrics = true;                         // /metrics on this listener
  std::chrono::milliseconds default_timeout{60000};  // request deadline without a header
  uint64_t max_image_pixels = 40'000'000;
  // The dashboard's metric history (GET /v1/dashboard/history): one sample per interval,
  // the last `history_points` kept per model (bounded memory).
  double history_interval_s = 5;
  size_t history_points = 360;
};

// Whether and how the server asks TLS clients for a certificate (mTLS).
enum class ClientAuth {
  kNone,      // no certificate is requested
  kOptional,  // requested; a client without one is served, one that sends a certificate
              // the client CA did not sign fails the handshake
  kRequired,  // the handshake fails without a certificate the client CA signed
};

// HTTPS (docs/security.md, "Transport: TLS and mTLS"). TLS is on when `cert_file` is set:
// TLS 1.2 and 1.3 only, Mozilla "intermediate" ciphers, no compression, no renegotiation, ALPN
// http/1.1. Files are read at start (errors thrown as cvdeploy::Error before serving: a
// missing file kNotFound, an unreadable or mismatched certificate/key kBadInput, a key file
// readable by group/others kPermissionDenied) and again on each reload (SIGHUP, or a change
// seen by polling), where a failure is logged and the previous certificate kept.
struct TlsOptions {
  std::string cert_file;       // PEM certificate chain, leaf first; empty: plain HTTP
  std::string key_file;        // PEM private key of the leaf; mode at most 0600, own user
  std::string client_ca_file;  // PEM CA certificate(s) that sign client certificates
  ClientAuth client_auth = ClientAuth::kNone;  // kOptional/kRequired need client_ca_file
  bool metrics_tls = true;                     // the separate metrics listener is HTTPS too
  double reload_interval_s = 10;  // poll the files' mtime/size this often; 0: SIGHUP only
  bool enabled() const { return !cert_file.empty(); }
};

// Authentication and authorization (docs/security.md). Auth is configured when any
// authenticator is: keys_file, users_file or jwt.jwks_file (or an mTLS client CA). Without it
// the server refuses to bind anything but loopback unless insecure_no_auth is set.
struct AuthOptions {
  std::string policy_file;  // JSON policy (roles, public routes, bindings); "": built-in roles
  std::string keys_file;    // API keys (`cvdeploy keys`)
  std::string users_file;   // users for POST /v1/auth/login (`cvdeploy users`)
  struct Jwt {
    std::string jwks_file, issuer, audience;
    std::string roles_claim = "roles";
  } jwt;
  // Ed25519 private key (PEM, 0600) signing session tokens; "": a fresh key per start (the
  // tokens then end with the process).
  std::string session_key_file;
  int session_ttl_s = 900;
  double policy_check_interval_s = 1;  // how often the policy file is checked for changes
  bool insecure_no_auth = false;       // serve a non-loopback address without authentication
};

// The tamper-evident audit log (docs/security.md, "Audit log"). Empty path: no audit log.
struct AuditLogOptions {
  std::string path;
  std::string hmac_key_file;     // HMAC key of the chain
  std::string signing_key_file;  // Ed25519 key of the checkpoints
  bool fail_open = false;        // answer normally when an entry cannot be written
  // Durability of an entry before its response is sent: "none" (write(2): survives a crash of
  // the process, not of the machine), "batch" (one fdatasync per group-commit batch), "every"
  // (one fdatasync per entry).
  std::string sync = "batch";
  size_t checkpoint_every = 1000;       // entries between signed checkpoints
  uint64_t rotate_bytes = 64ull << 20;  // rotate the file past this size
};

// Sampled request logging (docs/operations.md "Sampling"): off unless rate > 0. Each
// successful predict/infer request is stored with probability `rate` under `dir` (layout:
// cvdeploy/samples.h) by a background writer; the store keeps at most `max_bytes`, deleting
// the oldest samples first. The writer's queue holds `queue` samples; a full queue drops the
// sample (counted), never blocks inference. With `redact`, detected persons are blurred in the
// stored image and no un-redacted copy is kept.
struct SamplingOptions {
  double rate = 0;  // 0..1
  std::string dir;
  uint64_t max_bytes = 1ull << 30;
  bool redact = false;
  size_t queue = 64;
  bool enabled() const { return rate > 0; }
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::optional<int> metrics_port;  // separate /metrics listener; default: the main port
  int io_threads = 2;
  RepositoryOptions repository;
  TransportLimits limits;
  ApiOptions api;
  std::chrono::milliseconds drain_timeout{30000};
  std::string access_log = "-";  // "-": stdout, "": off, else a file (appended)
  bool exit_on_error = true;     // stop (kBadInput) when a model fails its initial load
  AuthOptions auth;
  AuditLogOptions audit;
  TlsOptions tls;  // HTTPS when tls.enabled()
  SamplingOptions sampling;
};

// Whether `host` is a loopback address (127.0.0.0/8, ::1, "localhost").
bool IsLoopbackHost(const std::string& host);
// Whether `options` configure an authenticator (see AuthOptions).
bool AuthConfigured(const ServerOptions& options);

// The front end's table from how the server stopped (ok after a signal and a drain, or
// kBadInput when a model failed its initial load) to the process exit status: the server
// chooses no exit codes itself.
using ExitCodeOfStatus = std::function<int(const Status&)>;

// Runs the server until a signal or a failed initial load; returns exit_code_of(how it
// stopped). When the drain times out with requests in progress the process exits at once
// with that code instead of returning. Throws cvdeploy::Error (a non-loopback host without
// authentication and without auth.insecure_no_auth: kInvalidArgument; bad policy, keys or
// audit files: kBadInput / kPermissionDenied / kNotFound; bad repository:
// kBadInput; port in use: kUnavailable; unresolvable host: kInvalidArgument; a sample
// directory that cannot be created or written: kPermissionDenied) before serving
// starts; with TLS also a missing or bad certificate/key (kNotFound, kBadInput,
// kPermissionDenied).
int RunServer(const ServerOptions& options, const ExitCodeOfStatus& exit_code_of);

}  // namespace cvdeploy::server
