// SPDX-License-Identifier: Apache-2.0
// cvdeploy audit keygen|verify|show: the audit log's keys, its integrity check and a readable
// view (docs/security.md, "Audit log"). verify exits 0 for an intact log and 3 (bad input)
// naming the first broken entry as "FILE:LINE seq S: reason: detail".
#include <cstdio>
#include <iostream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cvdeploy/error.h"
#include "cvdeploy/security/audit_format.h"
#include "cvdeploy/security/audit_log.h"
#include "cvdeploy/security/audit_verify.h"

namespace cvdeploy::cli {
namespace {

using security::AuditLine;

struct KeygenArgs {
  std::string hmac_key_file, signing_key;
  bool force = false;
};

struct VerifyArgs {
  std::vector<std::string> files;
  std::string hmac_key_file, public_key;
  bool allow_open = false;
};

struct ShowArgs {
  std::vector<std::string> files;
  std::string since, until, identity, action;
  bool json = false;
};

// A field of the event as table text: strings as they are, an object's "name", other values
// as JSON, "-" when absent.
std::string Field(const nlohmann::ordered_json& event, const char* key) {
  const auto it = event.find(key);
  if (it == event.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    const auto name = it->find("name");
    if (name != it->end() && name->is_string()) return name->get<std::string>();
  }
  return it->dump(-1, ' ', true, nlohmann::ordered_json::error_handler_t::replace);
}

// A --since/--until value: a UTC time as the log writes it, or any prefix of one
// ("2026-12-03", "2026-12-03T14:05"); a trailing Z is dropped.
std::string TimeBound(const std::string& flag, std::string value) {
  static const std::regex kFormat(R"(\d{4}-\d{2}-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d{1,6})?)?)?)?Z?)");
  if (!std::regex_match(value, kFormat)) {
    throw InvalidArgument(flag + " " + value +
                          ": expected a UTC time such as 2026-12-03 or 2026-12-03T14:05:00Z");
  }
  if (!value.empty() && value.back() == 'Z') value.pop_back();
  return value;
}

bool Selected(const AuditLine& line, const ShowArgs& a, const std::string& since,
              const std::string& until) {
  if (!since.empty() && line.time < since) return false;
  // Inclusive at the bound's precision: --until 2026-12-03 keeps the whole day.
  if (!until.empty() && line.time.substr(0, until.size()) > until) return false;
  if (!a.identity.empty() && Field(line.event, "identity") != a.identity) return false;
  if (!a.action.empty() && Field(line.event, "action") != a.action) return false;
  return true;
}

void Show(const ShowArgs& a) {
  const std::string since = a.since.empty() ? "" : TimeBound("--since", a.since);
  const std::string until = a.until.empty() ? "" : TimeBound("--until", a.until);
  if (!a.json) {
    std::printf("%-27s %8s %-16s %-14s %-20s %6s %-16s %s\n", "TIME", "SEQ", "IDENTITY", "ACTION",
                "MODEL", "STATUS", "CLIENT", "REQUEST_ID");
  }
  for (const auto& file : a.files) {
    const std::string text = security::ReadAuditFile(file);
    size_t start = 0, line_no = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      const std::string_view raw(text.data() + start, end - start);
      start = end + 1;
      ++line_no;
      std::string error;
      const auto line = security::ParseAuditLine(raw, &error);
      if (!line) {
        std::fprintf(stderr, "warning: %s:%zu: skipped, not an audit entry (%s)\n", file.c_str(),
                     line_no, error.c_str());
        continue;
      }
      if (!Selected(*line, a, since, until)) continue;
      if (a.json) {
        nlohmann::ordered_json j;
        j["file"] = file;
        j["line"] = line_no;
        j["seq"] = line->seq;
        j["time"] = line->time;
        j["event"] = line->event;
        std::cout << j.dump(-1, ' ', true, nlohmann::ordered_json::error_handler_t::replace)
                  << "\n";
        continue;
      }
      const auto& e = line->event;
      std::string model = Field(e, "model");
      if (e.contains("version")) model += ":" + Field(e, "version");
      std::printf("%-27s %8llu %-16s %-14s %-20s %6s %-16s %s\n", line->time.c_str(),
                  static_cast<unsigned long long>(line->seq), Field(e, "identity").c_str(),
                  Field(e, "action").c_str(), model.c_str(), Field(e, "status").c_str(),
                  Field(e, "client").c_str(), Field(e, "request_id").c_str());
    }
  }
}

void RegisterKeygen(CLI::App& audit, int* exit_code) {
  auto* cmd = audit.add_subcommand(
      "keygen",
      "Create the audit keys: a random 32-byte HMAC key (hex) and an Ed25519 signing "
      "key (PEM), both 0600, and the public key PEM next to it (SIGNING_KEY.pub)");
  auto a = std::make_shared<KeygenArgs>();
  cmd->add_option("--hmac-key-file", a->hmac_key_file, "HMAC key file to create")->required();
  cmd->add_option("--signing-key", a->signing_key, "Ed25519 private key file to create")
      ->required();
  cmd->add_flag("--force", a->force, "Overwrite existing key files");
  cmd->callback([=] {
    const std::string pem = security::CreateAuditKeys(a->hmac_key_file, a->signing_key, a->force);
    std::printf("wrote %s (HMAC key, hex), %s (Ed25519 private key) and %s.pub:\n%s",
                a->hmac_key_file.c_str(), a->signing_key.c_str(), a->signing_key.c_str(),
                pem.c_str());
    *exit_code = 0;
  });
}

void RegisterVerify(CLI::App& audit, int* exit_code) {
  auto* cmd = audit.add_subcommand(
      "verify",
      "Check an audit log's hash chain, HMACs, checkpoints and signatures; exit 3 "
      "naming the first broken entry");
  auto a = std::make_shared<VerifyArgs>();
  cmd->add_option("files", a->files, "Log files in chain order, oldest first (FILE.2 FILE.1 FILE)")
      ->required();
  cmd->add_option("--hmac-key-file", a->hmac_key_file,
                  "HMAC key file (without it only the hash chain and signatures are checked)");
  cmd->add_option("--public-key", a->public_key,
                  "Ed25519 public key PEM that checks the checkpoint signatures");
  cmd->add_flag("--allow-open", a->allow_open,
                "Accept a live log: entries after the last checkpoint, no final checkpoint");
  cmd->callback([=] {
    security::AuditVerifyOptions options;
    if (!a->hmac_key_file.empty()) options.hmac_key = security::LoadAuditHmacKey(a->hmac_key_file);
    if (!a->public_key.empty()) options.public_key = security::LoadAuditPublicKey(a->public_key);
    options.allow_open = a->allow_open;
    const auto result = security::VerifyAuditFiles(a->files, options);
    if (!result.ok()) throw BadInput(result.Describe());
    std::printf("%s\n", result.Describe().c_str());
    *exit_code = 0;
  });
}

void RegisterShow(CLI::App& audit, int* exit_code) {
  auto* cmd = audit.add_subcommand(
      "show", "Print audit entries as a table (not verified: use 'audit verify' for that)");
  auto a = std::make_shared<ShowArgs>();
  cmd->add_option("files", a->files, "Log files, oldest first")->required();
  cmd->add_option("--since", a->since, "Only entries at or after this UTC time");
  cmd->add_option("--until", a->until, "Only entries up to this UTC time (inclusive)");
  cmd->add_option("--identity", a->identity, "Only entries of this identity");
  cmd->add_option("--action", a->action, "Only entries with this action");
  cmd->add_flag("--json", a->json, "One JSON object per entry (file, line, seq, time, event)");
  cmd->callback([=] {
    Show(*a);
    *exit_code = 0;
  });
}

}  // namespace

void RegisterAudit(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("audit", "Tamper-evident audit log: keygen, verify, show");
  cmd->require_subcommand(1, 1);
  RegisterKeygen(*cmd, exit_code);
  RegisterVerify(*cmd, exit_code);
  RegisterShow(*cmd, exit_code);
}

}  // namespace cvdeploy::cli
