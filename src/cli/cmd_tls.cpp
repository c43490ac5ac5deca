// SPDX-License-Identifier: Apache-2.0
// cvdeploy tls selfsigned: a throw-away CA, server and client certificate for trying HTTPS
// and mTLS (security/x509_selfsigned.h), then the commands to try them.
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/output_path.h"
#include "cvdeploy/error.h"
#include "cvdeploy/security/x509_selfsigned.h"

namespace cvdeploy::cli {
namespace {

struct SelfSignedArgs {
  std::string out;
  std::string hosts = "localhost,127.0.0.1,::1";
  int days = 365;
  bool force = false;
};

std::vector<std::string> SplitHosts(const std::string& list) {
  std::vector<std::string> hosts;
  std::stringstream in(list);
  std::string host;
  while (std::getline(in, host, ',')) {
    if (!host.empty()) hosts.push_back(host);
  }
  if (hosts.empty()) throw InvalidArgument("tls selfsigned: --hosts lists no host");
  return hosts;
}

void RunSelfSigned(const SelfSignedArgs& a) {
  security::SelfSignedOptions options;
  options.hosts = SplitHosts(a.hosts);
  options.days = a.days;
  const auto set = security::MakeSelfSignedSet(options);
  const auto paths = security::WriteSelfSignedSet(OutputDirectory("--out", a.out), set, a.force);
  for (const std::string& path : paths) std::printf("wrote %s\n", path.c_str());
  const std::string& d = a.out;
  const std::string host = options.hosts.front().find(':') != std::string::npos
                               ? "[" + options.hosts.front() + "]"
                               : options.hosts.front();
  std::printf(
      "\nTry it (the server certificate is for %s):\n"
      "  cvdeploy serve --model MODEL.onnx --tls-cert %s/server.pem --tls-key %s/server.key "
      "--tls-client-ca %s/ca.pem\n"
      "  curl --cacert %s/ca.pem --cert %s/client.pem --key %s/client.key "
      "https://%s:8080/v2/health/ready\n"
      "  openssl s_client -connect %s:8080 -CAfile %s/ca.pem -cert %s/client.pem -key "
      "%s/client.key -brief </dev/null\n"
      "Without --tls-client-ca the server accepts any client: drop --cert/--key from curl.\n",
      a.hosts.c_str(), d.c_str(), d.c_str(), d.c_str(), d.c_str(), d.c_str(), d.c_str(),
      host.c_str(), host.c_str(), d.c_str(), d.c_str(), d.c_str());
}

}  // namespace

void RegisterTls(CLI::App& app, int* exit_code) {
  auto* tls = app.add_subcommand("tls", "TLS helpers");
  tls->require_subcommand(1, 1);
  auto* cmd = tls->add_subcommand(
      "selfsigned",
      "Make a CA, a server and a client certificate (ECDSA P-256) for trying HTTPS and mTLS");
  auto args = std::make_shared<SelfSignedArgs>();
  cmd->add_option("--out", args->out,
                  "Directory for ca.pem/ca.key, server.pem/server.key, client.pem/client.key")
      ->required();
  cmd->add_option("--hosts", args->hosts,
                  "Comma-separated DNS names and IP addresses for the server certificate")
      ->capture_default_str();
  cmd->add_option("--days", args->days, "Validity in days")
      ->check(CLI::Range(1, 3650))
      ->capture_default_str();
  cmd->add_flag("--force", args->force, "Overwrite existing files");
  cmd->callback([=] {
    RunSelfSigned(*args);
    *exit_code = ExitCodeOf(Outcome::kOk);
  });
}

}  // namespace cvdeploy::cli
