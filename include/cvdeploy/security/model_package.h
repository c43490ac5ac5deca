// SPDX-License-Identifier: Apache-2.0
// Model packages (.cvdm): one file holding a JSON manifest and a payload (the ONNX model and
// any golden inputs), the payload optionally encrypted with AES-256-GCM under a per-package
// key derived from a data key (HKDF-SHA256, random salt; header + manifest authenticated as
// associated data), the whole optionally signed with Ed25519. The byte layout is versioned
// and documented in docs/security.md "Model package format". Crypto: OpenSSL 3 EVP only.
// Errors: Error(kBadInput, "NAME: <check>: reason") for a malformed, truncated, tampered or
// undecryptable package (the check is one of "format", "manifest", "signature", "decryption",
// "integrity"; a signer that is not trusted is a "signature" failure too);
// Error(kInvalidArgument, ...) for a bad or missing key (file).
// Messages never contain key material. Functions are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cvdeploy/security/crypto.h"

namespace cvdeploy::security {

inline constexpr int kPackageFormatVersion = 1;
inline constexpr std::string_view kPackageExtension = ".cvdm";
// model.onnx and at most 1000 golden inputs (the golden set's record limit).
inline constexpr size_t kMaxPackageEntries = 1001;

// A 256-bit data key (`cvdeploy keygen --kind data`). Its text form is 64 hex digits and a
// newline (what DIR/data.key holds and what a --decrypt-key-cmd prints). Wiped on destruction.
class DataKey {
 public:
  static DataKey Generate();
  // 64 hex digits, surrounding whitespace ignored. `source` names the origin in errors.
  static DataKey FromText(std::string_view text, const std::string& source);
  // A secret file (ReadSecretFile: mode 0600 or stricter, owned by this user).
  static DataKey FromFile(const std::string& path);
  DataKey(const DataKey&) = default;
  DataKey& operator=(const DataKey&) = default;
  ~DataKey();
  std::string Text() const;                      // hex + "\n"
  std::string_view raw() const { return raw_; }  // 32 bytes
  // 16 hex digits that name the key without revealing it (HMAC-SHA256(key, fixed label)).
  std::string KeyId() const;

 private:
  explicit DataKey(std::string raw) : raw_(std::move(raw)) {}
  std::string raw_;
};

// "ed25519:" + the first 16 bytes of SHA-256 of the raw public key, in hex.
std::string SignerFingerprint(const Ed25519Key& key);

// Trusted signers: every *.pub (Ed25519 public key PEM) in a directory. An unreadable or
// non-Ed25519 .pub file is an error naming it (a trust store must not be half-read).
class TrustedKeys {
 public:
  TrustedKeys() = default;
  static TrustedKeys FromDir(const std::string& dir);
  // nullptr when no trusted key has this fingerprint.
  const Ed25519Key* Find(const std::string& fingerprint) const;
  size_t size() const { return keys_.size(); }
  std::vector<std::string> Fingerprints() const;
  // Adds one public key (tests, fuzzing, callers with their own store); a duplicate is ignored.
  void Add(const Ed25519Key& key);
  // The directory FromDir read ("" otherwise), for messages.
  const std::string& dir() const { return dir_; }

 private:
  std::vector<std::pair<std::string, Ed25519Key>> keys_;
  std::string dir_;
};

// One part of the payload, in order: the model first ("model.onnx"), then golden inputs
// ("golden/NAME").
struct PackagePart {
  std::string name;
  std::vector<uint8_t> bytes;
  PackagePart() = default;
  PackagePart(std::string n, std::vector<uint8_t> b) : name(std::move(n)), bytes(std::move(b)) {}
  PackagePart(PackagePart&&) noexcept = default;
  PackagePart& operator=(PackagePart&&) noexcept;
  PackagePart(const PackagePart&) = delete;
  PackagePart& operator=(const PackagePart&) = delete;
  ~PackagePart();  // wipes `bytes` (it may hold decrypted plaintext)
};

// What `pack` writes. `manifest` holds the caller's fields ("name", "version", "model": {...},
// "golden": {...}, "optimizations": ...); WritePackage adds "format_version", "created",
// "entries" (name, size, sha256 of each part), "encryption" and "signer".
struct PackageInput {
  nlohmann::json manifest = nlohmann::json::object();
  std::vector<PackagePart> parts;
};
// The package file's bytes. `encrypt_key` null: the payload is stored in the clear (still
// covered by the signature and the entries' sha256); `sign_key` null: unsigned.
std::string WritePackage(const PackageInput& input, const DataKey* encrypt_key,
                         const Ed25519Key* sign_key);

// A package split into its sections; nothing is decrypted or trusted yet.
struct ParsedPackage {
  int format_version = 0;
  bool encrypted = false;
  bool is_signed = false;
  nlohmann::json manifest;         // the complete manifest as stored
  std::string signer_fingerprint;  // "" when unsigned
  std::string data_key_id;         // "" when not encrypted
  // Byte ranges of the file (views into the buffer given to ParsePackage: keep it alive).
  std::string_view header_and_manifest, payload, signature, signed_bytes;
};
// Structure only (magic, version, lengths, manifest JSON and its required fields); `name`
// names the package in errors.
ParsedPackage ParsePackage(std::string_view bytes, const std::string& name);

// The signature check: the signer's fingerprint must be in `trusted` and the Ed25519 signature
// must verify over signed_bytes. Throws as described above.
void VerifyPackageSignature(const ParsedPackage& package, const TrustedKeys& trusted,
                            const std::string& name);

// The payload's parts: decrypted with `key` when encrypted (null key for an encrypted package:
// kInvalidArgument "needs a decryption key"), each part's size and sha256 checked against the
// manifest's entries. The buffers are locked against swapping where permitted.
std::vector<PackagePart> OpenPackagePayload(const ParsedPackage& package, const DataKey* key,
                                            const std::string& name);

// The largest package file read for a model limit: the model plus 64 MiB for the manifest and
// golden inputs (saturating, so a huge limit stays huge).
uint64_t MaxPackageBytes(uint64_t max_model_bytes);

// Whether `path` names a package (by extension).
bool IsPackagePath(const std::string& path);

}  // namespace cvdeploy::security
