// SPDX-License-Identifier: Apache-2.0
// Opening a model the way every tool and the server do: a plain ONNX file or a model package
// (.cvdm, cvdeploy/security/model_package.h), under the user's protection settings (the data
// key from a file or a command, the trusted signers, whether only signed models are accepted).
// A package's plaintext exists only in memory: decrypted into locked pages, handed to
// Model::FromMemory as sensitive bytes (wiped when the last Model copy goes), and the process
// is made non-dumpable before the first decryption. Errors: as model_package.h ("NAME:
// <check>: reason"), Error(kInvalidArgument) for inconsistent settings or an unusable key.
// Thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cvdeploy/golden.h"
#include "cvdeploy/model.h"
#include "cvdeploy/security/model_package.h"

namespace cvdeploy::security {

// --decrypt-key-file, --decrypt-key-cmd, --trusted-keys, --require-signed.
struct ModelProtection {
  std::string decrypt_key_file;
  std::string decrypt_key_cmd;   // run with /bin/sh -c; stdout: the key's text form
  std::string trusted_keys_dir;  // every *.pub in it
  bool require_signed = false;   // refuse unsigned packages, untrusted signers and plain .onnx
  std::chrono::seconds key_cmd_timeout{30};

  bool HasKey() const { return !decrypt_key_file.empty() || !decrypt_key_cmd.empty(); }
  // Throws kInvalidArgument for contradictions: both key sources, --require-signed without
  // --trusted-keys.
  void Check() const;
};

// The data key from the file or by running the command (at most 4 KiB of stdout, within
// key_cmd_timeout; a non-zero exit, a timeout or output that is not a key is an error naming
// the flag, never showing the output). nullopt when neither source is set.
std::optional<DataKey> ResolveDataKey(const ModelProtection& protection);

struct OpenedModel {
  OpenedModel(Model m, bool is_package, bool is_encrypted, std::string signer_fingerprint,
              bool checked, nlohmann::json package_manifest, std::optional<GoldenDir> golden_set)
      : model(std::move(m)),
        package(is_package),
        encrypted(is_encrypted),
        signer(std::move(signer_fingerprint)),
        signature_checked(checked),
        manifest(std::move(package_manifest)),
        golden(std::move(golden_set)) {}
  OpenedModel(OpenedModel&&) = default;
  OpenedModel& operator=(OpenedModel&&) = default;
  ~OpenedModel();  // wipes decrypted golden inputs (the model's bytes wipe themselves)
  // After the engine session exists: drops this copy of the model's bytes (a sensitive
  // Model wipes them when its last copy goes).
  void DropModelBytes() { model = model.WithoutBytes(); }

  Model model;
  bool package = false;
  bool encrypted = false;
  std::string signer;  // fingerprint of the trusted signer; "" when unsigned or not checked
  bool signature_checked = false;
  nlohmann::json manifest;          // packages: the manifest as stored; else null
  std::optional<GoldenDir> golden;  // the package's golden set, or DIR/golden/ beside a plain model
};

struct OpenModelOptions {
  bool load_golden = false;  // read the golden set (package "golden", or golden/ beside a .onnx)
};

// Opens `path` (.cvdm by extension, anything else as ONNX). The data key is resolved only when
// the package is encrypted. `options.max_model_bytes` bounds the file read.
OpenedModel OpenModel(const std::string& path, const ModelProtection& protection,
                      const ModelOptions& options, const OpenModelOptions& open = {});

}  // namespace cvdeploy::security
