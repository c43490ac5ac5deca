// SPDX-License-Identifier: Apache-2.0
// cvdeploy verify M.cvdm [--trusted-keys DIR] [--decrypt-key K] [--json]: prints a model
// package's manifest summary and runs every check it can: format, signature (against the
// trusted keys), decryption and integrity (the entries' sha256). Exit 0 when every check that
// ran passed; a failed check is one stderr line "cvdeploy verify: NAME: CHECK: reason" and
// exit 3. With --trusted-keys an unsigned package fails the signature check.
// cvdeploy unpack M.cvdm --out M.onnx [--decrypt-key K] [--trusted-keys DIR]
// [--golden-out DIR]: the same checks, then the plaintext model (mode 0600) for its owners.
// A missing or bad key file is a usage error (exit 2) in both.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/output_path.h"
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/secure_memory.h"
#include "cvdeploy/security/model_package.h"
#include "cvdeploy/security/secret_file.h"

namespace cvdeploy::cli {
namespace {

namespace fs = std::filesystem;
using security::DataKey;
using security::ParsedPackage;
using security::TrustedKeys;

struct PackageArgs {
  std::string package, trusted_keys, decrypt_key, out, golden_out;
  bool json = false;
};

struct Keys {
  std::optional<TrustedKeys> trusted;
  std::optional<DataKey> data;
};

Keys LoadKeys(const PackageArgs& a) {
  Keys keys;
  if (!a.trusted_keys.empty()) keys.trusted = TrustedKeys::FromDir(a.trusted_keys);
  if (!a.decrypt_key.empty()) keys.data = DataKey::FromFile(a.decrypt_key);
  return keys;
}

// The file's bytes (kept alive by the caller: a ParsedPackage views into them).
std::vector<uint8_t> ReadPackage(const std::string& path) {
  return ReadFileBytes(path, false, security::MaxPackageBytes(kDefaultMaxModelBytes), "package");
}

std::string_view View(const std::vector<uint8_t>& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// A manifest value for the terminal: control bytes shown as '?', at most 200 bytes, so that a
// crafted name cannot forge lines of the report or hide them with escape sequences.
std::string Field(const nlohmann::json& m, const char* key) {
  const auto it = m.find(key);
  if (it == m.end() || it->is_null()) return "-";
  std::string text = it->is_string() ? it->get<std::string>() : it->dump();
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  for (char& c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return text;
}

void PrintSummary(const std::string& path, size_t size, const ParsedPackage& p) {
  const nlohmann::json& m = p.manifest;
  std::printf("package   %s (%zu bytes)\n", path.c_str(), size);
  std::printf("name      %s  version %s\n", Field(m, "name").c_str(), Field(m, "version").c_str());
  std::printf("format    %d  created %s\n", p.format_version, Field(m, "created").c_str());
  const nlohmann::json model = m.value("model", nlohmann::json());
  if (model.is_object()) {
    std::printf("model     %s  sha256 %s  %s bytes\n", Field(model, "file").c_str(),
                Field(model, "sha256").c_str(), Field(model, "size").c_str());
    if (model.contains("contract")) {
      std::printf("contract  %s\n", model["contract"].dump().c_str());
    }
  }
  std::printf("signer    %s\n", p.is_signed ? p.signer_fingerprint.c_str() : "none (unsigned)");
  std::printf("encrypted %s\n",
              p.encrypted ? ("AES-256-GCM, data key id " + p.data_key_id).c_str() : "no");
  for (const nlohmann::json& e : m["entries"]) {
    std::printf("entry     %s  %s bytes  sha256 %s\n", e["name"].get<std::string>().c_str(),
                e["size"].dump().c_str(), e["sha256"].get<std::string>().c_str());
  }
}

// The checks, in order; each records "OK", "skipped (...)" or the failure. Stops at the
// first failure (what follows it cannot be trusted to mean anything).
struct CheckRun {
  nlohmann::ordered_json checks = nlohmann::ordered_json::object();
  std::optional<Error> failure;
  std::vector<security::PackagePart> parts;
};

CheckRun RunChecks(std::string_view bytes, const std::string& name, const Keys& keys,
                   std::optional<ParsedPackage>* parsed) {
  CheckRun run;
  try {
    *parsed = security::ParsePackage(bytes, name);
    run.checks["format"] = "OK";
    const ParsedPackage& p = **parsed;
    if (keys.trusted) {
      security::VerifyPackageSignature(p, *keys.trusted, name);
      run.checks["signature"] = "OK (trusted signer " + p.signer_fingerprint + ")";
    } else {
      run.checks["signature"] = p.is_signed ? "not checked (no --trusted-keys)" : "not signed";
    }
    if (p.encrypted && !keys.data) {
      run.checks["decryption"] = "skipped (no --decrypt-key)";
      run.checks["integrity"] = "skipped (the payload is encrypted)";
      return run;
    }
    run.parts = security::OpenPackagePayload(p, keys.data ? &*keys.data : nullptr, name);
    run.checks["decryption"] = p.encrypted ? "OK" : "not encrypted";
    run.checks["integrity"] = "OK (" + std::to_string(run.parts.size()) + " entries)";
  } catch (const Error& e) {
    const std::string what = e.what();
    // "NAME: CHECK: reason"
    const size_t at = what.find(": ", name.size() + 2);
    const std::string check =
        at == std::string::npos ? "package" : what.substr(name.size() + 2, at - name.size() - 2);
    run.checks[check] = "FAILED";
    run.failure = e;
  }
  return run;
}

void RunVerify(const PackageArgs& a, int* exit_code) {
  const Keys keys = LoadKeys(a);
  const std::vector<uint8_t> bytes = ReadPackage(a.package);
  std::optional<ParsedPackage> parsed;
  const CheckRun run = RunChecks(View(bytes), a.package, keys, &parsed);
  if (a.json) {
    nlohmann::ordered_json out = {
        {"package", a.package},
        {"ok", !run.failure},
        {"checks", run.checks},
        {"manifest", parsed ? nlohmann::json(parsed->manifest) : nullptr}};
    if (run.failure) out["error"] = run.failure->what();
    std::cout << out.dump(2) << "\n";
  } else {
    if (parsed) PrintSummary(a.package, bytes.size(), *parsed);
    std::printf("checks\n");
    for (const auto& [check, result] : run.checks.items()) {
      std::printf("  %-10s %s\n", check.c_str(), result.get<std::string>().c_str());
    }
  }
  if (run.failure) {
    std::cout.flush();
    std::fflush(stdout);
    std::fprintf(stderr, "cvdeploy verify: %s\n", run.failure->what());
    *exit_code = ExitCodeOf(run.failure->code());
    return;
  }
  if (parsed && parsed->is_signed && !keys.trusted) {
    std::fprintf(stderr,
                 "cvdeploy verify: note: the signature was not checked (no --trusted-keys)\n");
  }
  *exit_code = ExitCodeOf(Outcome::kOk);
}

void WriteGolden(const std::string& dir, const ParsedPackage& p,
                 const std::vector<security::PackagePart>& parts) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec))
    throw InvalidArgument("unpack: --golden-out " + dir + ": not a directory");
  size_t written = 0;
  for (const security::PackagePart& part : parts) {
    if (part.name.rfind("golden/", 0) != 0) continue;
    // A plain file name (ParsePackage allows nothing else), written 0600 by rename, so a
    // symlink already in DIR is replaced, not followed.
    const fs::path target = fs::path(dir) / part.name.substr(7);
    security::WriteSecretFile(
        target.string(),
        std::string_view(reinterpret_cast<const char*>(part.bytes.data()), part.bytes.size()));
    ++written;
  }
  const auto golden = p.manifest.find("golden");
  if (golden != p.manifest.end() && !golden->is_null()) {
    const std::string text = golden->dump(2) + "\n";
    WriteFileAtomically((fs::path(dir) / "golden.json").string(),
                        std::vector<uint8_t>(text.begin(), text.end()));
  }
  std::printf("wrote %zu golden inputs%s to %s\n", written,
              golden != p.manifest.end() && !golden->is_null() ? " and golden.json" : "",
              dir.c_str());
}

void RunUnpack(const PackageArgs& a) {
  std::error_code ec;
  if (fs::exists(a.out, ec) && fs::equivalent(a.out, a.package, ec)) {
    throw InvalidArgument("unpack: --out " + a.out + " is the package itself");
  }
  const Keys keys = LoadKeys(a);
  const std::vector<uint8_t> bytes = ReadPackage(a.package);
  const ParsedPackage p = security::ParsePackage(View(bytes), a.package);
  if (keys.trusted) security::VerifyPackageSignature(p, *keys.trusted, a.package);
  const auto parts = security::OpenPackagePayload(p, keys.data ? &*keys.data : nullptr, a.package);
  if (!keys.trusted && p.is_signed) {
    std::fprintf(stderr, "warning: %s: the signature was not checked (no --trusted-keys)\n",
                 a.package.c_str());
  }
  const auto& model = parts.front().bytes;
  // The plaintext model is the owner's secret: 0600, like a key.
  security::WriteSecretFile(
      OutputPath("--out", a.out),
      std::string_view(reinterpret_cast<const char*>(model.data()), model.size()));
  std::printf("wrote %s (%zu bytes, mode 0600) from %s\n", a.out.c_str(), model.size(),
              a.package.c_str());
  if (!a.golden_out.empty()) WriteGolden(a.golden_out, p, parts);
}

void AddKeyOptions(CLI::App* cmd, PackageArgs* args) {
  cmd->add_option("package", args->package, "Package file (.cvdm)")->required();
  cmd->add_option("--trusted-keys", args->trusted_keys,
                  "Directory of trusted signers' public keys (*.pub): check the signature");
  cmd->add_option("--decrypt-key", args->decrypt_key,
                  "Data key file (keygen --kind data): decrypt and check the payload");
}

}  // namespace

void RegisterPackageVerify(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("verify",
                                 "Check a model package: format, signature, decryption, integrity");
  auto args = std::make_shared<PackageArgs>();
  AddKeyOptions(cmd, args.get());
  cmd->add_flag("--json", args->json, "Print the checks and the manifest as JSON");
  cmd->callback([args, exit_code] { RunVerify(*args, exit_code); });
}

void RegisterUnpack(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "unpack", "Check a model package and write its plaintext model (for its owners)");
  auto args = std::make_shared<PackageArgs>();
  AddKeyOptions(cmd, args.get());
  cmd->add_option("--out", args->out, "Model file to write (mode 0600)")->required();
  cmd->add_option("--golden-out", args->golden_out,
                  "Directory for the golden inputs and golden.json");
  cmd->callback([args, exit_code] {
    RunUnpack(*args);
    *exit_code = 0;
  });
}

}  // namespace cvdeploy::cli
