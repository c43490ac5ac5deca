// SPDX-License-Identifier: Apache-2.0
// cvdeploy serve: the inference server (KServe v2 + image endpoints). Flags map onto
// server::ServerOptions (cvdeploy/server.h); everything else lives in src/server/. Every flag
// is also read from the environment as CVDEPLOY_<FLAG> (AddEnvironmentNames); the command line
// wins.
#include <cctype>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/options.h"
#include "cvdeploy/error.h"
#include "cvdeploy/secure_memory.h"
#include "cvdeploy/server.h"
#include "cvdeploy/server_log.h"

namespace cvdeploy::cli {
namespace {

struct ServeArgs {
  std::vector<std::string> models, load_models;
  std::string repository, control = "", access_log = "-";
  double poll_interval = 0, read_timeout = 30, idle_timeout = 60, drain_timeout = 30;
  int metrics_port = -1;
  EngineArgs engine;  // --rect/--no-rect (config.json "rect" overrides), --spin
  int64_t request_timeout_ms = 60000;
  double max_image_mp = 40;
  size_t max_body_bytes = 32u << 20, max_header_bytes = 16u << 10, max_connections = 1024;
  size_t max_connections_per_client = 64;
  bool exit_on_error = true;
  uint64_t max_model_bytes = kDefaultMaxModelBytes;
  server::AuthOptions auth;
  server::AuditLogOptions audit;
  uint64_t audit_rotate_mb = 64;
  std::string tls_cert, tls_key, tls_client_ca, tls_client_auth, metrics_tls;
  double tls_reload_interval = 10;
  ProtectionArgs protection;
  bool golden_gate = true;
  double history_interval = 5;  // dashboard metric history (--history-*)
  size_t history_points = 360;
  std::string log_format = "text";
  server::SamplingOptions sampling;  // --sample-*
};

// CVDEPLOY_<FLAG>: "--max-body-bytes" reads CVDEPLOY_MAX_BODY_BYTES. Applied to every option of
// the command at once, so a flag added later gets its variable too. A flag given on the command
// line wins (CLI11 reads the variable only for options the command line left unset). Values are
// never printed; a value that fails its check is reported by CLI11 like a command-line value.
void AddEnvironmentNames(CLI::App* cmd) {
  for (CLI::Option* option : cmd->get_options()) {
    if (option == cmd->get_help_ptr() || option->get_lnames().empty()) continue;
    std::string name = "CVDEPLOY_";
    for (char c : option->get_lnames().front()) {
      name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    option->envname(name);
  }
}

// The --tls-* flags: TLS needs both files; mTLS needs a client CA (which alone means
// "required"); --metrics-tls on/off only with TLS.
server::TlsOptions ToTlsOptions(const ServeArgs& a) {
  server::TlsOptions t;
  const bool tls = !a.tls_cert.empty() || !a.tls_key.empty();
  if (tls && (a.tls_cert.empty() || a.tls_key.empty())) {
    throw InvalidArgument("serve: --tls-cert and --tls-key go together");
  }
  if (!tls && (!a.tls_client_ca.empty() || !a.tls_client_auth.empty() || !a.metrics_tls.empty())) {
    throw InvalidArgument(
        "serve: --tls-client-ca, --tls-client-auth and --metrics-tls need --tls-cert and "
        "--tls-key");
  }
  if (!tls) return t;
  t.cert_file = a.tls_cert;
  t.key_file = a.tls_key;
  t.client_ca_file = a.tls_client_ca;
  std::string auth = a.tls_client_auth;
  if (auth.empty()) auth = a.tls_client_ca.empty() ? "none" : "required";
  t.client_auth = auth == "required"   ? server::ClientAuth::kRequired
                  : auth == "optional" ? server::ClientAuth::kOptional
                                       : server::ClientAuth::kNone;
  if (t.client_auth != server::ClientAuth::kNone && a.tls_client_ca.empty()) {
    throw InvalidArgument("serve: --tls-client-auth " + auth + " needs --tls-client-ca FILE");
  }
  t.metrics_tls = a.metrics_tls != "off";
  t.reload_interval_s = a.tls_reload_interval;
  return t;
}

// PATH[:name]; the name defaults to the file name without its extension.
server::RepositoryOptions::File ParseModelArg(const std::string& arg) {
  std::string path = arg, name;
  const size_t colon = arg.rfind(':');
  if (colon != std::string::npos && arg.find('/', colon) == std::string::npos) {
    path = arg.substr(0, colon);
    name = arg.substr(colon + 1);
    if (name.empty()) throw InvalidArgument("--model " + arg + ": empty model name after ':'");
  }
  if (name.empty()) name = std::filesystem::path(path).stem().string();
  if (name.find_first_of("/ ?#%") != std::string::npos) {
    throw InvalidArgument("--model " + arg + ": model name '" + name +
                          "' may not contain '/', ' ', '?', '#' or '%'");
  }
  return {name, path};
}

server::ServerOptions ToOptions(const ServeArgs& a, const std::string& host, int port,
                                int io_threads, int instances, int threads) {
  server::ServerOptions o;
  o.host = host;
  o.port = port;
  if (a.metrics_port >= 0) o.metrics_port = a.metrics_port;
  o.io_threads = io_threads;
  auto& r = o.repository;
  r.dir = a.repository;
  for (const auto& m : a.models) r.files.push_back(ParseModelArg(m));
  if (r.dir.empty() && r.files.empty()) {
    throw InvalidArgument("serve: give --model PATH[:name] (repeatable) or --model-repository DIR");
  }
  std::string control = a.control;
  if (control.empty()) control = a.poll_interval > 0 ? "poll" : "none";
  if (control == "none") {
    r.control = server::ModelControl::kNone;
  } else if (control == "poll") {
    r.control = server::ModelControl::kPoll;
    if (a.poll_interval <= 0) {
      throw InvalidArgument("serve: --model-control poll needs --poll-interval SECONDS > 0");
    }
  } else {
    r.control = server::ModelControl::kExplicit;
  }
  if (r.control != server::ModelControl::kNone && r.dir.empty()) {
    throw InvalidArgument("serve: --model-control " + control + " needs --model-repository");
  }
  if (!a.load_models.empty() && r.control != server::ModelControl::kExplicit) {
    throw InvalidArgument("serve: --load-model needs --model-control explicit");
  }
  r.poll_interval_s = a.poll_interval;
  r.load_at_start = a.load_models;
  r.instances = instances;
  r.threads = threads;
  r.rect = a.engine.Rect();
  r.spin = a.engine.ParsedSpin();
  r.graph_optimization = a.engine.ParsedGraphOptimization();
  r.max_model_bytes = a.max_model_bytes;
  a.protection.protection.Check();
  r.decrypt_key_file = a.protection.protection.decrypt_key_file;
  r.decrypt_key_cmd = a.protection.protection.decrypt_key_cmd;
  r.trusted_keys_dir = a.protection.protection.trusted_keys_dir;
  r.require_signed = a.protection.protection.require_signed;
  r.golden_gate = a.golden_gate;
  auto ms = [](double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); };
  o.limits.max_body_bytes = a.max_body_bytes;
  o.limits.max_header_bytes = a.max_header_bytes;
  o.limits.read_timeout = ms(a.read_timeout);
  o.limits.idle_timeout = ms(a.idle_timeout);
  o.limits.max_connections = a.max_connections;
  o.limits.max_connections_per_client = a.max_connections_per_client;
  o.api.explicit_control = r.control == server::ModelControl::kExplicit;
  o.api.default_timeout = std::chrono::milliseconds(a.request_timeout_ms);
  o.api.max_image_pixels = static_cast<uint64_t>(a.max_image_mp * 1e6);
  o.api.history_interval_s = a.history_interval;
  o.api.history_points = a.history_points;
  o.drain_timeout = ms(a.drain_timeout);
  o.access_log = a.access_log;
  o.exit_on_error = a.exit_on_error;
  o.auth = a.auth;
  o.audit = a.audit;
  o.audit.rotate_bytes = a.audit_rotate_mb << 20;
  o.tls = ToTlsOptions(a);
  o.sampling = a.sampling;
  if (o.sampling.rate > 0 && o.sampling.dir.empty()) {
    throw InvalidArgument("serve: --sample-rate needs --sample-dir DIR");
  }
  return o;
}

// Authentication, authorization and audit flags (docs/security.md).
void AddSecurityOptions(CLI::App* cmd, ServeArgs* a) {
  const char* group = "Security";
  cmd->add_option("--auth-policy", a->auth.policy_file,
                  "RBAC policy (JSON): roles, public routes, certificate and JWT bindings; "
                  "reloaded when it changes (mode 0600)")
      ->group(group);
  cmd->add_option("--keys-file", a->auth.keys_file,
                  "API keys file (cvdeploy keys create); enables Bearer cvd_... keys")
      ->group(group);
  cmd->add_option("--users-file", a->auth.users_file,
                  "Users file (cvdeploy users add); enables POST /v1/auth/login")
      ->group(group);
  cmd->add_option("--jwt-jwks", a->auth.jwt.jwks_file,
                  "JWKS file of the OIDC identity provider; enables JWT bearer tokens")
      ->group(group);
  cmd->add_option("--jwt-issuer", a->auth.jwt.issuer, "Required JWT issuer (iss)")->group(group);
  cmd->add_option("--jwt-audience", a->auth.jwt.audience, "Required JWT audience (aud)")
      ->group(group);
  cmd->add_option("--jwt-roles-claim", a->auth.jwt.roles_claim,
                  "JWT claim holding roles or groups, mapped through the policy's jwt_claims")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--session-key", a->auth.session_key_file,
                  "Ed25519 PEM private key (0600) signing login session tokens (default: a fresh "
                  "key per start, so tokens end with the process)")
      ->group(group);
  cmd->add_flag("--insecure-no-auth", a->auth.insecure_no_auth,
                "Allow serving a non-loopback address without authentication (warns every 10 "
                "minutes)")
      ->group(group);
  cmd->add_option("--audit-log", a->audit.path,
                  "Tamper-evident audit log (JSON Lines, hash chain + HMAC + signed "
                  "checkpoints)")
      ->group(group);
  cmd->add_option("--audit-hmac-key-file", a->audit.hmac_key_file,
                  "HMAC key of the audit chain (mode 0600)")
      ->group(group);
  cmd->add_option("--audit-signing-key", a->audit.signing_key_file,
                  "Ed25519 PEM key signing audit checkpoints (mode 0600)")
      ->group(group);
  cmd->add_flag("--audit-fail-open", a->audit.fail_open,
                "Answer normally when an audit entry cannot be written (default: 503)")
      ->group(group);
  cmd->add_option("--audit-sync", a->audit.sync,
                  "Durability of each entry before its response: none (write only), batch "
                  "(fdatasync per group commit), every (fdatasync per entry)")
      ->check(CLI::IsMember({"none", "batch", "every"}))
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--audit-checkpoint-every", a->audit.checkpoint_every,
                  "Entries between Ed25519-signed checkpoints")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--audit-rotate-mb", a->audit_rotate_mb,
                  "Rotate the audit log past this size, keeping the chain across files")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str()
      ->group(group);
}

// Sampled request logging (docs/operations.md "Sampling").
void AddSamplingOptions(CLI::App* cmd, ServeArgs* a) {
  const char* group = "Sampling";
  cmd->add_option("--sample-rate", a->sampling.rate,
                  "Share of successful predict/infer requests stored in --sample-dir (0: off)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--sample-dir", a->sampling.dir,
                  "Sample store: DIR/YYYYMMDD/<time>_<request id>/{meta.json, response.json, "
                  "input.*} (created 0700, files 0600)")
      ->group(group);
  cmd->add_option("--sample-max-bytes", a->sampling.max_bytes,
                  "Size bound of the sample store (oldest samples deleted first); units "
                  "KiB/MiB/GiB (or KB/MB/GB, also 1024-based)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(uint64_t{1024}, uint64_t{1} << 50))
      ->default_str("1GiB")
      ->group(group);
  cmd->add_flag("--sample-redact", a->sampling.redact,
                "Blur detected persons in stored images (no un-redacted copy is kept; tensor "
                "inputs are then not stored)")
      ->group(group);
  cmd->add_option("--sample-queue", a->sampling.queue,
                  "Samples waiting for the writer; more are dropped (never blocks inference)")
      ->check(CLI::Range(size_t{1}, size_t{100000}))
      ->capture_default_str()
      ->group(group);
}

}  // namespace

void RegisterServe(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "serve", "Serve models over HTTP: KServe v2 (Open Inference Protocol) and image endpoints");
  auto args = std::make_shared<ServeArgs>();
  auto host = std::make_shared<std::string>("127.0.0.1");
  auto port = std::make_shared<int>(8080);
  auto io_threads = std::make_shared<int>(2);
  auto instances = std::make_shared<int>(0);
  auto threads = std::make_shared<int>(0);
  cmd->add_option("--model", args->models,
                  "Serve a model file as version 1: PATH[:name] (name defaults to the file "
                  "name without extension); repeatable");
  cmd->add_option(
      "--model-repository", args->repository,
      "Repository DIR/<name>/<version>/model.onnx or model.cvdm [+ DIR/<name>/config.json]");
  cmd->add_option("--model-control", args->control,
                  "none (default), poll (reload on change; needs --poll-interval) or explicit "
                  "(load/unload through the repository API)")
      ->check(CLI::IsMember({"none", "poll", "explicit"}));
  cmd->add_option("--load-model", args->load_models,
                  "With --model-control explicit: models to load at start; repeatable");
  cmd->add_option("--poll-interval", args->poll_interval,
                  "Seconds between repository scans (implies --model-control poll)")
      ->check(CLI::Range(0.0, 86400.0));
  cmd->add_option("--host", *host, "Address to bind")->capture_default_str();
  cmd->add_option("--port", *port, "Port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--metrics-port", args->metrics_port,
                  "Serve /metrics on this port instead of the main one")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--io-threads", *io_threads, "HTTP I/O threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--instances", *instances,
                  "Default concurrent engine calls per model (0: by cores); config.json overrides")
      ->check(CLI::Range(0, 64));
  cmd->add_option("--threads", *threads,
                  "Default engine threads per call (0: cores / instances); config.json overrides")
      ->check(CLI::Range(0, 256));
  cmd->add_option("--request-timeout-ms", args->request_timeout_ms,
                  "Deadline of a request without X-Request-Timeout-Ms; expired queued work is "
                  "answered 504 and not run")
      ->check(CLI::Range(int64_t{1}, int64_t{86400000}))
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", args->max_body_bytes, "Largest request body (413 above)")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 32))
      ->capture_default_str();
  cmd->add_option("--max-header-bytes", args->max_header_bytes,
                  "Largest request line + headers (431 above)")
      ->check(CLI::Range(size_t{512}, size_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--max-model-bytes", args->max_model_bytes,
                  "Largest model file to load, in bytes (larger files are refused unread)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-image-mp", args->max_image_mp,
                  "Largest image in megapixels, read from the image header before decoding")
      ->check(CLI::Range(0.001, 10000.0))
      ->capture_default_str();
  cmd->add_option("--read-timeout", args->read_timeout,
                  "Seconds a request, header included, may take to arrive from its first byte "
                  "(slow clients are dropped)")
      ->check(CLI::Range(0.05, 3600.0))
      ->capture_default_str();
  cmd->add_option("--idle-timeout", args->idle_timeout,
                  "Seconds a keep-alive connection may wait for its next request")
      ->check(CLI::Range(0.05, 86400.0))
      ->capture_default_str();
  cmd->add_option("--max-connections", args->max_connections, "Concurrent connections (503 above)")
      ->check(CLI::Range(size_t{1}, size_t{1000000}))
      ->capture_default_str();
  cmd->add_option("--max-connections-per-client", args->max_connections_per_client,
                  "Concurrent connections from one client address (503 and close above)")
      ->check(CLI::Range(size_t{1}, size_t{1000000}))
      ->capture_default_str();
  cmd->add_option("--drain-timeout", args->drain_timeout,
                  "Seconds to let in-flight requests finish after SIGTERM/SIGINT")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd->add_option("--access-log", args->access_log,
                  "JSON access log: - (stdout), a file to append to, or '' to disable")
      ->capture_default_str();
  cmd->add_option("--exit-on-error", args->exit_on_error,
                  "Exit (code 3) when a model fails its initial load")
      ->capture_default_str();
  AddSecurityOptions(cmd, args.get());
  args->protection.Add(*cmd);
  args->engine.Add(*cmd);
  cmd->add_option("--golden-gate", args->golden_gate,
                  "Check each version's golden set (package or golden/ beside model.onnx) "
                  "before it serves")
      ->capture_default_str();
  cmd->add_option("--history-interval", args->history_interval,
                  "Seconds between samples of the dashboard's metric history")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_option("--history-points", args->history_points,
                  "Samples of metric history kept per model (bounded memory)")
      ->check(CLI::Range(size_t{1}, size_t{100000}))
      ->capture_default_str();
  cmd->add_option("--tls-cert", args->tls_cert,
                  "Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key");
  cmd->add_option("--tls-key", args->tls_key,
                  "PEM private key of --tls-cert (mode 0600 or stricter, owned by this user)");
  cmd->add_option("--tls-client-ca", args->tls_client_ca,
                  "Verify client certificates (mTLS) against this PEM CA file");
  cmd->add_option("--tls-client-auth", args->tls_client_auth,
                  "none, optional or required (default: required with --tls-client-ca)")
      ->check(CLI::IsMember({"none", "optional", "required"}));
  cmd->add_option("--metrics-tls", args->metrics_tls,
                  "With TLS: on (default) or off for a plain-HTTP --metrics-port listener")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--tls-reload-interval", args->tls_reload_interval,
                  "Seconds between checks of the certificate/key files for changes (0: off; "
                  "SIGHUP always reloads)")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  cmd->add_option("--log-format", args->log_format,
                  "Server event lines on stderr: text (cvdeploy serve: LEVEL: message) or json "
                  "({\"time\",\"level\",\"msg\"} per line)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  AddSamplingOptions(cmd, args.get());
  AddEnvironmentNames(cmd);
  cmd->callback([=] {
    server::SetLogFormat(server::ParseLogFormat(args->log_format));
    try {
      server::ServerOptions options =
          ToOptions(*args, *host, *port, *io_threads, *instances, *threads);
      // A server given a data key serves encrypted models: no core dump, no ptrace by the same
      // user, from the start (docs/security.md "Protected models").
      if (args->protection.protection.HasKey()) MakeProcessNonDumpable();
      *exit_code = server::RunServer(std::move(options), [](const Status& s) {
        return s.ok() ? ExitCodeOf(Outcome::kOk) : ExitCodeOf(s.code());
      });
    } catch (const Error& e) {
      // In JSON mode a log collector reads stderr: the error is one more JSON line (main would
      // print it as text). Text mode keeps main's line and its flag hints.
      if (server::CurrentLogFormat() != server::LogFormat::kJson) throw;
      server::Log(server::LogLevel::kError, e.what());
      *exit_code = ExitCodeOf(e.code());
    }
  });
}

}  // namespace cvdeploy::cli
