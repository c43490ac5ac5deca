// SPDX-License-Identifier: Apache-2.0
// cvdeploy keys create|list|revoke --keys-file FILE: API keys for machines
// (security/api_keys.h). `keys create` prints the new key, and nothing else, on stdout (so
// KEY=$(cvdeploy keys create ...) works); what it created goes to stderr.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cvdeploy/error.h"
#include "cvdeploy/security/api_keys.h"
#include "cvdeploy/security/store_file.h"

namespace cvdeploy::cli {
namespace {

using security::ApiKeyRecord;
using security::ApiKeyStore;

struct KeysArgs {
  std::string keys_file, name, expires = "never";
  std::vector<std::string> roles, models;
  bool json = false;
};

std::string Join(const std::vector<std::string>& items, const char* sep = ",") {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

// "--models m1,m2 --models m3" -> m1, m2, m3; empty items are refused.
std::vector<std::string> SplitModels(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    size_t start = 0;
    while (start <= v.size()) {
      const size_t comma = std::min(v.find(',', start), v.size());
      const std::string item = v.substr(start, comma - start);
      if (item.empty()) throw InvalidArgument("--models '" + v + "': empty model name");
      out.push_back(item);
      start = comma + 1;
    }
  }
  return out;
}

std::string Status(const ApiKeyRecord& r) {
  if (r.revoked) return "revoked";
  if (r.expires && std::chrono::system_clock::now() >= *r.expires) return "expired";
  return "active";
}

std::string TimeOr(const std::optional<std::chrono::system_clock::time_point>& t,
                   const char* none) {
  return t ? security::FormatUtc(*t) : none;
}

void Create(const KeysArgs& args) {
  const auto ttl = security::ParseTtl(args.expires);
  ApiKeyStore::NewKey key{args.name, args.roles, SplitModels(args.models), ttl};
  security::ApiKeyStoreOptions options;
  options.create_if_missing = true;
  ApiKeyStore store(args.keys_file, options);
  const std::string presented = store.Create(key);
  std::cout << presented << "\n";
  std::cout.flush();
  std::fprintf(stderr,
               "created API key '%s' (roles %s, models %s, expires %s) in %s; the key is shown "
               "only this once\n",
               args.name.c_str(), Join(args.roles).c_str(),
               key.models.empty() ? "any" : Join(key.models).c_str(),
               ttl ? args.expires.c_str() : "never", args.keys_file.c_str());
}

void List(const KeysArgs& args) {
  ApiKeyStore store(args.keys_file);
  const auto records = store.List();
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : records) {
      out.push_back({{"name", r.name},
                     {"id", r.id},
                     {"roles", r.roles},
                     {"models", r.models},
                     {"created", security::FormatUtc(r.created)},
                     {"expires", security::TimeJson(r.expires)},
                     {"last_used", security::TimeJson(r.last_used)},
                     {"revoked", r.revoked},
                     {"revoked_at", security::TimeJson(r.revoked_at)},
                     {"status", Status(r)}});
    }
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::printf("%-24s %-16s %-20s %-16s %-20s %-20s %-20s %s\n", "NAME", "ID", "ROLES", "MODELS",
              "CREATED", "EXPIRES", "LAST_USED", "STATUS");
  for (const auto& r : records) {
    std::printf("%-24s %-16s %-20s %-16s %-20s %-20s %-20s %s\n", r.name.c_str(), r.id.c_str(),
                Join(r.roles).c_str(), r.models.empty() ? "*" : Join(r.models).c_str(),
                security::FormatUtc(r.created).c_str(), TimeOr(r.expires, "never").c_str(),
                TimeOr(r.last_used, "-").c_str(), Status(r).c_str());
  }
}

void Revoke(const KeysArgs& args) {
  ApiKeyStore store(args.keys_file);
  store.Revoke(args.name);
  std::fprintf(stderr, "revoked API key '%s' in %s\n", args.name.c_str(), args.keys_file.c_str());
}

}  // namespace

void RegisterKeys(CLI::App& app, int* exit_code) {
  auto* keys = app.add_subcommand("keys", "Manage API keys (Authorization: Bearer cvd_...)");
  keys->require_subcommand(1, 1);
  auto args = std::make_shared<KeysArgs>();
  auto add_file = [&](CLI::App* cmd) {
    cmd->add_option("--keys-file", args->keys_file, "Keys file (JSON, mode 0600)")->required();
  };

  auto* create = keys->add_subcommand("create", "Create a key; prints it once on stdout");
  create->add_option("--name", args->name, "Key name: [A-Za-z0-9._-]{1,64}, unique")->required();
  create->add_option("--role", args->roles, "Role of the key (repeatable)")->required();
  create->add_option("--models", args->models, "Model name patterns the key may use (m1,m2)");
  create->add_option("--expires", args->expires, "Lifetime: 90d, 12h, 30m, 2w or never")
      ->capture_default_str();
  add_file(create);
  create->callback([args, exit_code] {
    Create(*args);
    *exit_code = 0;
  });

  auto* list = keys->add_subcommand("list", "List keys (metadata only; keys are never stored)");
  list->add_flag("--json", args->json, "Print JSON instead of a table");
  add_file(list);
  list->callback([args, exit_code] {
    List(*args);
    *exit_code = 0;
  });

  auto* revoke =
      keys->add_subcommand("revoke", "Revoke a key; a running server refuses it at once");
  revoke->add_option("name", args->name, "Key name")->required();
  add_file(revoke);
  revoke->callback([args, exit_code] {
    Revoke(*args);
    *exit_code = 0;
  });
}

}  // namespace cvdeploy::cli
