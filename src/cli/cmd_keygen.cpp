// SPDX-License-Identifier: Apache-2.0
// cvdeploy keygen --kind signing|data --out DIR [--force]: the keys of model packages
// (security/model_package.h). signing: an Ed25519 pair, DIR/signing.key (PEM, 0600) and
// DIR/signing.pub (what a --trusted-keys directory holds); data: DIR/data.key (64 hex digits,
// 0600), the key `pack --encrypt-key` encrypts with. Prints the fingerprint or key id, never
// the secret. Existing files are kept unless --force.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/secure_memory.h"
#include "cvdeploy/security/model_package.h"
#include "cvdeploy/security/secret_file.h"

namespace cvdeploy::cli {
namespace {

namespace fs = std::filesystem;

struct KeygenArgs {
  std::string kind, out;
  bool force = false;
};

void RefuseExisting(const std::vector<std::string>& paths, bool force) {
  for (const std::string& path : paths) {
    std::error_code ec;
    if (!force && fs::symlink_status(path, ec).type() != fs::file_type::not_found) {
      throw InvalidArgument("keygen: " + path + " exists (use --force to replace it)");
    }
  }
}

void RunKeygen(const KeygenArgs& a) {
  std::error_code ec;
  if (fs::exists(a.out, ec) && !fs::is_directory(a.out, ec)) {
    throw InvalidArgument("keygen: --out " + a.out + " is not a directory");
  }
  if (!fs::exists(a.out, ec) && !fs::create_directories(a.out, ec)) {
    throw InvalidArgument("keygen: --out " + a.out + ": cannot create: " + ec.message());
  }
  const fs::path dir(a.out);
  if (a.kind == "signing") {
    const std::string key_path = (dir / "signing.key").string();
    const std::string pub_path = (dir / "signing.pub").string();
    RefuseExisting({key_path, pub_path}, a.force);
    const security::Ed25519Key key = security::Ed25519Key::Generate();
    std::string pem = key.PrivatePem();
    security::WriteSecretFile(key_path, pem);
    WipeBytes(pem);
    const std::string pub = key.PublicPem();
    WriteFileAtomically(pub_path, std::vector<uint8_t>(pub.begin(), pub.end()));
    std::printf("wrote %s (private, mode 0600) and %s\nfingerprint %s\n", key_path.c_str(),
                pub_path.c_str(), security::SignerFingerprint(key).c_str());
    std::printf("Put %s (and only public keys) into the --trusted-keys directory of verifiers.\n",
                pub_path.c_str());
    return;
  }
  const std::string key_path = (dir / "data.key").string();
  RefuseExisting({key_path}, a.force);
  const security::DataKey key = security::DataKey::Generate();
  std::string text = key.Text();
  security::WriteSecretFile(key_path, text);
  WipeBytes(text);
  std::printf("wrote %s (mode 0600)\nkey id %s\n", key_path.c_str(), key.KeyId().c_str());
}

}  // namespace

void RegisterPackageKeygen(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "keygen", "Make a model-package key: an Ed25519 signing pair or a 256-bit data key");
  auto args = std::make_shared<KeygenArgs>();
  cmd->add_option("--kind", args->kind,
                  "signing: DIR/signing.key + DIR/signing.pub; data: DIR/data.key")
      ->required()
      ->check(CLI::IsMember({"signing", "data"}));
  cmd->add_option("--out", args->out, "Directory for the key files (created if missing)")
      ->required();
  cmd->add_flag("--force", args->force, "Replace existing key files");
  cmd->callback([args, exit_code] {
    RunKeygen(*args);
    *exit_code = 0;
  });
}

}  // namespace cvdeploy::cli
