// SPDX-License-Identifier: Apache-2.0
// The keys of model packages (cvdeploy/security/model_package.h): data keys, signer
// fingerprints and the trusted-keys directory. No message here ever contains key bytes, nor
// the text of a rejected key file.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/secure_memory.h"
#include "cvdeploy/security/model_package.h"
#include "cvdeploy/security/secret_file.h"

namespace cvdeploy::security {
namespace {

constexpr size_t kDataKeyBytes = 32;
// The label the key id is an HMAC of: the id names a key without revealing anything of it.
constexpr std::string_view kKeyIdLabel = "cvdeploy data key id v1";
// A public key PEM is ~113 bytes; anything far larger is not one.
constexpr uint64_t kMaxPublicKeyFileBytes = 64 * 1024;

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

DataKey DataKey::Generate() { return DataKey(RandomBytes(kDataKeyBytes)); }

DataKey DataKey::FromText(std::string_view text, const std::string& source) {
  const std::string_view hex = Trim(text);
  std::optional<std::string> raw;
  if (hex.size() == 2 * kDataKeyBytes) raw = HexDecode(hex);
  if (!raw || raw->size() != kDataKeyBytes) {
    if (raw) WipeBytes(*raw);
    // The rejected text is never echoed: it may be a secret pasted into the wrong place.
    throw InvalidArgument(source +
                          ": not a data key (expected 64 hex digits, as written by "
                          "'cvdeploy keygen --kind data')");
  }
  return DataKey(std::move(*raw));
}

DataKey DataKey::FromFile(const std::string& path) {
  std::string text;
  try {
    text = ReadSecretFile(path);
  } catch (const Error& e) {
    // A missing, unreadable or too open key file is a wrong invocation, not a bad package.
    throw InvalidArgument(std::string("data key ") + e.what());
  }
  try {
    DataKey key = FromText(text, path);
    WipeBytes(text);
    return key;
  } catch (...) {
    WipeBytes(text);
    throw;
  }
}

DataKey::~DataKey() { WipeBytes(raw_); }

std::string DataKey::Text() const {
  std::string text;
  text.reserve(2 * raw_.size() + 1);  // built in place: no reallocation leaves key hex behind
  static constexpr char kDigits[] = "0123456789abcdef";
  for (unsigned char c : raw_) {
    text.push_back(kDigits[c >> 4]);
    text.push_back(kDigits[c & 15]);
  }
  text.push_back('\n');
  return text;
}

std::string DataKey::KeyId() const {
  return HexEncode(HmacSha256(raw_, kKeyIdLabel)).substr(0, 16);
}

std::string SignerFingerprint(const Ed25519Key& key) {
  return "ed25519:" + HexEncode(Sha256(key.RawPublic()).substr(0, 16));
}

namespace {

// Anyone who can write to the trust store can add a signer: like a secret file, it must be
// writable only by its owner, and owned by this user or root.
void CheckTrustStorePath(const std::string& path, const char* what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw InvalidArgument(path + ": " + what + ": " + std::strerror(errno));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw InvalidArgument(path + ": " + what + " is writable by group or others (mode " + mode +
                          "); anyone who can write there could add a signer");
  }
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    throw InvalidArgument(path + ": " + what + " belongs to another user (uid " +
                          std::to_string(st.st_uid) + ")");
  }
}

}  // namespace

TrustedKeys TrustedKeys::FromDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw InvalidArgument(dir + ": trusted keys: not a directory");
  }
  CheckTrustStorePath(dir, "trusted keys directory");
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() == ".pub") files.push_back(p.string());
  }
  if (ec) throw InvalidArgument(dir + ": trusted keys: cannot list: " + ec.message());
  std::sort(files.begin(), files.end());
  TrustedKeys keys;
  keys.dir_ = dir;
  for (const std::string& file : files) {
    CheckTrustStorePath(file, "trusted key");
    std::string pem;
    try {
      pem = ReadFileText(file, kMaxPublicKeyFileBytes);
    } catch (const Error& e) {
      throw InvalidArgument(std::string("trusted key ") + e.what());
    }
    if (pem.find("PRIVATE KEY") != std::string::npos) {
      WipeBytes(pem);
      throw InvalidArgument(file + ": holds a private key; trusted keys are public keys only");
    }
    std::optional<Ed25519Key> key;
    try {
      key = Ed25519Key::FromPem(pem);
    } catch (const Error&) {
      throw InvalidArgument(file + ": not an Ed25519 public key (PEM)");
    }
    keys.Add(*key);
  }
  if (keys.keys_.empty()) {
    throw InvalidArgument(dir + ": trusted keys: no *.pub file in the directory");
  }
  return keys;
}

const Ed25519Key* TrustedKeys::Find(const std::string& fingerprint) const {
  for (const auto& [fp, key] : keys_) {
    if (fp == fingerprint) return &key;
  }
  return nullptr;
}

void TrustedKeys::Add(const Ed25519Key& key) {
  std::string fingerprint = SignerFingerprint(key);
  if (Find(fingerprint) == nullptr) keys_.emplace_back(std::move(fingerprint), key);
}

std::vector<std::string> TrustedKeys::Fingerprints() const {
  std::vector<std::string> out;
  for (const auto& entry : keys_) out.push_back(entry.first);
  return out;
}

bool IsPackagePath(const std::string& path) {
  return path.size() > kPackageExtension.size() &&
         path.compare(path.size() - kPackageExtension.size(), kPackageExtension.size(),
                      kPackageExtension) == 0;
}

}  // namespace cvdeploy::security
