// SPDX-License-Identifier: Apache-2.0
// Model packages (.cvdm): writing, parsing, signature check and payload opening. The byte
// layout is in docs/security.md "Model package format"; every length read from a file is
// checked against what is left before it is used (no addition can overflow: lengths are
// compared with the remaining size, never added to a position first).
#include "cvdeploy/security/model_package.h"

#include <chrono>
#include <set>

#include "cvdeploy/error.h"
#include "cvdeploy/json.h"
#include "cvdeploy/secure_memory.h"
#include "cvdeploy/security/store_file.h"

namespace cvdeploy::security {
namespace {

constexpr std::string_view kMagic = "CVDMPKG1";
constexpr size_t kHeaderBytes = 8 + 2 + 2 + 4;
constexpr uint32_t kMaxManifestBytes = 16u << 20;
constexpr uint16_t kFlagEncrypted = 1, kFlagSigned = 2;
constexpr size_t kSignatureBytes = 64, kSaltBytes = 32;
constexpr std::string_view kHkdfInfo = "cvdeploy model package v1";
constexpr char kAlg[] = "AES-256-GCM", kKdf[] = "HKDF-SHA256", kSignAlg[] = "Ed25519";

void PutLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

Error Fail(const std::string& name, const char* check, const std::string& reason) {
  return BadInput(name + ": " + check + ": " + reason);
}

// Sequential little-endian reads with bounds checks: "truncated: WHAT needs N bytes, M left".
class Reader {
 public:
  Reader(std::string_view bytes, const std::string& name) : bytes_(bytes), name_(name) {}
  size_t pos() const { return pos_; }
  size_t left() const { return bytes_.size() - pos_; }
  void Need(uint64_t n, const std::string& what) const {
    if (n > left()) {
      throw Fail(name_, "format",
                 "truncated: " + what + " needs " + std::to_string(n) + " bytes, " +
                     std::to_string(left()) + " left");
    }
  }
  std::string_view Take(uint64_t n, const std::string& what) {
    Need(n, what);
    const std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  uint64_t Le(int bytes, const std::string& what) {
    const std::string_view b = Take(bytes, what);
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[i]);
    return v;
  }

 private:
  std::string_view bytes_;
  const std::string& name_;
  size_t pos_ = 0;
};

// The payload's layout: the model first ("model.onnx"), then golden inputs "golden/NAME" where
// NAME is a plain file name (no '/', '\\', control byte or leading '.'; not golden.json, at
// most 255 bytes), so that unpacking golden inputs can only create files directly in one
// directory. Empty string when `name` may stand at `index`, else the reason.
std::string UnsafeNameReason(const std::string& name, size_t index) {
  if (index == 0) return name == "model.onnx" ? "" : "the first entry must be model.onnx";
  constexpr std::string_view kGolden = "golden/";
  if (name.compare(0, kGolden.size(), kGolden) != 0) return "not golden/NAME";
  const std::string file = name.substr(kGolden.size());
  if (file.empty() || file.size() > 255) return "golden input name empty or over 255 bytes";
  if (file.front() == '.') return "golden input name starts with '.'";
  if (file == "golden.json") return "golden input named golden.json";
  for (unsigned char c : file) {
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) {
      return "golden input name has '/', a backslash or a control byte";
    }
  }
  return "";
}

// A printable, bounded rendering of a name from the file, for messages.
std::string Quote(const std::string& text) {
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < 64; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  return out + (text.size() > 64 ? "...'" : "'");
}

struct Entry {
  std::string name;
  uint64_t size = 0;
  std::string sha256;  // lower-case hex
};

bool IsLowerHex(const std::string& s, size_t size) {
  return s.size() == size && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The manifest's "entries", checked: safe unique names, sizes summing to `plain_size`.
std::vector<Entry> ParseEntries(const nlohmann::json& manifest, uint64_t plain_size,
                                const std::string& name) {
  const auto it = manifest.find("entries");
  if (it == manifest.end() || !it->is_array() || it->empty()) {
    throw Fail(name, "manifest", "'entries' must be a non-empty array");
  }
  std::vector<Entry> entries;
  std::set<std::string> seen;
  uint64_t total = 0;
  for (const nlohmann::json& e : *it) {
    const std::string at = "entry " + std::to_string(entries.size());
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("size") ||
        !e["size"].is_number_unsigned() || !e.contains("sha256") || !e["sha256"].is_string()) {
      throw Fail(name, "manifest", at + ": needs a string 'name', an unsigned 'size', 'sha256'");
    }
    Entry entry{e["name"].get<std::string>(), e["size"].get<uint64_t>(),
                e["sha256"].get<std::string>()};
    if (entries.size() >= kMaxPackageEntries) {
      throw Fail(name, "manifest", "more than " + std::to_string(kMaxPackageEntries) + " entries");
    }
    const std::string unsafe = UnsafeNameReason(entry.name, entries.size());
    if (!unsafe.empty()) throw Fail(name, "manifest", at + " " + Quote(entry.name) + ": " + unsafe);
    if (!seen.insert(entry.name).second) {
      throw Fail(name, "manifest", at + " " + Quote(entry.name) + ": duplicate name");
    }
    if (!IsLowerHex(entry.sha256, 64)) {
      throw Fail(name, "manifest", at + ": 'sha256' must be 64 lower-case hex digits");
    }
    if (entry.size > plain_size - total) {
      throw Fail(
          name, "manifest",
          "entries add up to more than the payload's " + std::to_string(plain_size) + " bytes");
    }
    total += entry.size;
    entries.push_back(std::move(entry));
  }
  if (total != plain_size) {
    throw Fail(name, "manifest",
               "entries add up to " + std::to_string(total) + " bytes, the payload holds " +
                   std::to_string(plain_size));
  }
  return entries;
}

std::string DecodedField(const nlohmann::json& obj, const char* key, size_t size,
                         const std::string& name) {
  const auto it = obj.find(key);
  std::optional<std::string> raw;
  if (it != obj.end() && it->is_string()) raw = Base64UrlDecode(it->get<std::string>());
  if (!raw || raw->size() != size) {
    throw Fail(name, "manifest",
               std::string("encryption.") + key + " must be " + std::to_string(size) +
                   " bytes in base64url");
  }
  return *raw;
}

bool StringIs(const nlohmann::json& obj, const char* key, std::string_view value) {
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() && it->get<std::string>() == value;
}

// "encryption" and "signer" must be objects exactly when the header's flags say so.
void CheckCryptoFields(ParsedPackage& p, const std::string& name) {
  const nlohmann::json& m = p.manifest;
  const auto enc = m.find("encryption");
  const auto signer = m.find("signer");
  if (enc == m.end() || signer == m.end()) {
    throw Fail(name, "manifest", "'encryption' and 'signer' are required (object or null)");
  }
  if (p.encrypted != enc->is_object() || (!p.encrypted && !enc->is_null())) {
    throw Fail(name, "manifest",
               p.encrypted ? "the header says encrypted but 'encryption' is not an object"
                           : "the header says not encrypted but 'encryption' is not null");
  }
  if (p.is_signed != signer->is_object() || (!p.is_signed && !signer->is_null())) {
    throw Fail(name, "manifest",
               p.is_signed ? "the header says signed but 'signer' is not an object"
                           : "the header says unsigned but 'signer' is not null");
  }
  if (p.encrypted) {
    if (!StringIs(*enc, "alg", kAlg) || !StringIs(*enc, "kdf", kKdf)) {
      throw Fail(name, "manifest", "encryption must be alg AES-256-GCM with kdf HKDF-SHA256");
    }
    DecodedField(*enc, "salt", kSaltBytes, name);
    DecodedField(*enc, "nonce", kAesGcmNonceBytes, name);
    const auto id = enc->find("key_id");
    if (id == enc->end() || !id->is_string() || !IsLowerHex(id->get<std::string>(), 16)) {
      throw Fail(name, "manifest", "encryption.key_id must be 16 lower-case hex digits");
    }
    p.data_key_id = id->get<std::string>();
  }
  if (p.is_signed) {
    const auto fp = signer->find("fingerprint");
    if (!StringIs(*signer, "alg", kSignAlg) || fp == signer->end() || !fp->is_string() ||
        fp->get<std::string>().rfind("ed25519:", 0) != 0 ||
        !IsLowerHex(fp->get<std::string>().substr(8), 32)) {
      throw Fail(name, "manifest", "signer must be alg Ed25519 with an ed25519:HEX fingerprint");
    }
    p.signer_fingerprint = fp->get<std::string>();
  }
}

void CheckManifest(ParsedPackage& p, const std::string& name) {
  const nlohmann::json& m = p.manifest;
  if (!m.is_object()) throw Fail(name, "manifest", "not a JSON object");
  const auto version = m.find("format_version");
  if (version == m.end() || !version->is_number_unsigned() ||
      version->get<uint64_t>() != static_cast<uint64_t>(p.format_version)) {
    throw Fail(name, "manifest", "'format_version' must be " + std::to_string(p.format_version));
  }
  const auto created = m.find("created");
  if (created == m.end() || !created->is_string()) {
    throw Fail(name, "manifest", "'created' must be a string");
  }
  CheckCryptoFields(p, name);
  const uint64_t plain_size =
      p.encrypted ? p.payload.size() - kAesGcmTagBytes : uint64_t{p.payload.size()};
  ParseEntries(m, plain_size, name);
}

// The per-package key: HKDF-SHA-256 of the data key with the manifest's salt.
std::string PackageKey(const DataKey& key, std::string_view salt) {
  return HkdfSha256(key.raw(), salt, kHkdfInfo, kAesGcmKeyBytes);
}

// Wipes a buffer (its whole capacity) when it goes out of scope.
struct WipeOnExit {
  std::vector<uint8_t>& bytes;
  ~WipeOnExit() {
    WipeMemory(bytes.data(), bytes.capacity());
    UnlockMemory(bytes.data(), bytes.capacity());
  }
};

}  // namespace

PackagePart& PackagePart::operator=(PackagePart&& other) noexcept {
  if (this != &other) {
    WipeBytes(bytes);
    UnlockMemory(bytes.data(), bytes.capacity());
    name = std::move(other.name);
    bytes = std::move(other.bytes);
  }
  return *this;
}

PackagePart::~PackagePart() {
  WipeBytes(bytes);
  UnlockMemory(bytes.data(), bytes.capacity());
}

std::string WritePackage(const PackageInput& input, const DataKey* encrypt_key,
                         const Ed25519Key* sign_key) {
  if (!input.manifest.is_object()) throw InvalidArgument("package manifest: not a JSON object");
  if (input.parts.empty()) throw InvalidArgument("package: no parts");
  if (sign_key && !sign_key->has_private()) {
    throw InvalidArgument("package signing needs a private key");
  }
  nlohmann::json manifest = input.manifest;
  manifest["format_version"] = kPackageFormatVersion;
  manifest["created"] = FormatUtc(std::chrono::system_clock::now());
  nlohmann::json entries = nlohmann::json::array();
  std::set<std::string> seen;
  size_t plain_size = 0;
  if (input.parts.size() > kMaxPackageEntries) {
    throw InvalidArgument("more than " + std::to_string(kMaxPackageEntries) + " package parts");
  }
  for (const PackagePart& part : input.parts) {
    const std::string unsafe = UnsafeNameReason(part.name, seen.size());
    if (!unsafe.empty()) throw InvalidArgument("package part " + Quote(part.name) + ": " + unsafe);
    if (!seen.insert(part.name).second) {
      throw InvalidArgument("package part " + Quote(part.name) + ": duplicate name");
    }
    const std::string_view bytes(reinterpret_cast<const char*>(part.bytes.data()),
                                 part.bytes.size());
    entries.push_back(
        {{"name", part.name}, {"size", part.bytes.size()}, {"sha256", HexEncode(Sha256(bytes))}});
    plain_size += part.bytes.size();
  }
  manifest["entries"] = std::move(entries);
  std::string salt, nonce;
  if (encrypt_key) {
    salt = RandomBytes(kSaltBytes);
    nonce = RandomBytes(kAesGcmNonceBytes);
    manifest["encryption"] = {{"alg", kAlg},
                              {"kdf", kKdf},
                              {"salt", Base64UrlEncode(salt)},
                              {"nonce", Base64UrlEncode(nonce)},
                              {"key_id", encrypt_key->KeyId()}};
  } else {
    manifest["encryption"] = nullptr;
  }
  manifest["signer"] =
      sign_key ? nlohmann::json{{"alg", kSignAlg}, {"fingerprint", SignerFingerprint(*sign_key)}}
               : nlohmann::json(nullptr);
  // Metadata copied from a model may hold invalid UTF-8: replaced, so the manifest is valid.
  const std::string text = manifest.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > kMaxManifestBytes) {
    throw InvalidArgument("package manifest: " + std::to_string(text.size()) +
                          " bytes, larger than the limit " + std::to_string(kMaxManifestBytes));
  }
  std::string out(kMagic);
  PutLe(out, kPackageFormatVersion, 2);
  PutLe(out, (encrypt_key ? kFlagEncrypted : 0) | (sign_key ? kFlagSigned : 0), 2);
  PutLe(out, text.size(), 4);
  out += text;
  std::string plain;
  plain.reserve(plain_size);
  for (const PackagePart& part : input.parts) {
    plain.append(reinterpret_cast<const char*>(part.bytes.data()), part.bytes.size());
  }
  std::string payload;
  if (encrypt_key) {
    std::string key = PackageKey(*encrypt_key, salt);
    // The header and the manifest are the associated data: changing either fails decryption.
    payload = Aes256GcmEncrypt(key, nonce, plain, out);
    WipeBytes(key);
    WipeBytes(plain);
  } else {
    payload = std::move(plain);
  }
  PutLe(out, payload.size(), 8);
  out += payload;
  if (sign_key) {
    const std::string signature = sign_key->Sign(out);
    PutLe(out, signature.size(), 2);
    out += signature;
  } else {
    PutLe(out, 0, 2);
  }
  return out;
}

ParsedPackage ParsePackage(std::string_view bytes, const std::string& name) {
  Reader r(bytes, name);
  if (bytes.size() >= kMagic.size() && bytes.substr(0, kMagic.size()) != kMagic) {
    throw Fail(name, "format", "not a cvdeploy model package (bad magic)");
  }
  r.Need(kHeaderBytes, "the header");
  r.Take(kMagic.size(), "magic");
  ParsedPackage p;
  const uint64_t version = r.Le(2, "format version");
  if (version != static_cast<uint64_t>(kPackageFormatVersion)) {
    throw Fail(name, "format",
               "format version " + std::to_string(version) +
                   " is not supported (this cvdeploy reads " +
                   std::to_string(kPackageFormatVersion) + ")");
  }
  p.format_version = static_cast<int>(version);
  const uint64_t flags = r.Le(2, "flags");
  if ((flags & ~uint64_t{kFlagEncrypted | kFlagSigned}) != 0) {
    throw Fail(name, "format", "unknown flag bits " + std::to_string(flags));
  }
  p.encrypted = (flags & kFlagEncrypted) != 0;
  p.is_signed = (flags & kFlagSigned) != 0;
  const uint64_t manifest_len = r.Le(4, "manifest length");
  if (manifest_len > kMaxManifestBytes) {
    throw Fail(name, "format",
               "manifest of " + std::to_string(manifest_len) + " bytes is larger than the limit " +
                   std::to_string(kMaxManifestBytes));
  }
  const std::string_view manifest_text = r.Take(manifest_len, "manifest");
  p.header_and_manifest = bytes.substr(0, r.pos());
  const uint64_t payload_len = r.Le(8, "payload length");
  p.payload = r.Take(payload_len, "payload");
  if (p.encrypted && p.payload.size() < kAesGcmTagBytes) {
    throw Fail(name, "format", "encrypted payload shorter than its 16-byte tag");
  }
  p.signed_bytes = bytes.substr(0, r.pos());
  const uint64_t sig_len = r.Le(2, "signature length");
  if (sig_len != (p.is_signed ? kSignatureBytes : 0)) {
    throw Fail(name, "format",
               "signature length " + std::to_string(sig_len) + " does not match the header (" +
                   (p.is_signed ? "signed: 64" : "unsigned: 0") + ")");
  }
  p.signature = r.Take(sig_len, "signature");
  if (r.left() != 0) {
    throw Fail(name, "format",
               std::to_string(r.left()) + " bytes of trailing data after the signature");
  }
  p.manifest = ParseJsonBounded(manifest_text, name + ": manifest");
  CheckManifest(p, name);
  return p;
}

void VerifyPackageSignature(const ParsedPackage& package, const TrustedKeys& trusted,
                            const std::string& name) {
  if (!package.is_signed) throw Fail(name, "signature", "the package is not signed");
  const Ed25519Key* key = trusted.Find(package.signer_fingerprint);
  if (key == nullptr) {
    const std::string where = trusted.dir().empty() ? "" : " in " + trusted.dir();
    throw Fail(name, "signature",
               "signed by " + package.signer_fingerprint + " which is not in the trusted keys (" +
                   std::to_string(trusted.size()) + (trusted.size() == 1 ? " key" : " keys") +
                   where + ")");
  }
  if (!key->Verify(package.signed_bytes, package.signature)) {
    throw Fail(name, "signature",
               "the Ed25519 signature of " + package.signer_fingerprint +
                   " does not verify (tampered package)");
  }
}

std::vector<PackagePart> OpenPackagePayload(const ParsedPackage& package, const DataKey* key,
                                            const std::string& name) {
  const std::string_view payload = package.payload;
  std::vector<uint8_t> plain;
  WipeOnExit wipe{plain};
  if (package.encrypted) {
    if (key == nullptr) {
      throw InvalidArgument(name + ": decryption: the package is encrypted and needs a data key");
    }
    if (key->KeyId() != package.data_key_id) {
      throw Fail(name, "decryption",
                 "wrong data key (the package needs key " + package.data_key_id + ", given key " +
                     key->KeyId() + ")");
    }
    if (payload.size() < kAesGcmTagBytes) throw Fail(name, "format", "payload shorter than a tag");
    const nlohmann::json& enc = package.manifest.at("encryption");
    const std::string salt = DecodedField(enc, "salt", kSaltBytes, name);
    const std::string nonce = DecodedField(enc, "nonce", kAesGcmNonceBytes, name);
    plain.resize(payload.size() - kAesGcmTagBytes);
    LockMemory(plain.data(), plain.size());
    std::string package_key = PackageKey(*key, salt);
    const bool ok = Aes256GcmDecryptInto(package_key, nonce, payload, package.header_and_manifest,
                                         plain.data());
    WipeBytes(package_key);
    if (!ok) {
      throw Fail(name, "decryption", "authentication failed (wrong data key or tampered package)");
    }
  } else {
    plain.assign(payload.begin(), payload.end());
    LockMemory(plain.data(), plain.size());
  }
  const std::vector<Entry> entries = ParseEntries(package.manifest, plain.size(), name);
  size_t at = 0;
  for (const Entry& e : entries) {
    const std::string digest = HexEncode(
        Sha256(std::string_view(reinterpret_cast<const char*>(plain.data()) + at, e.size)));
    if (!ConstantTimeEqual(digest, e.sha256)) {
      throw Fail(name, "integrity",
                 "entry " + Quote(e.name) + ": sha256 does not match the manifest");
    }
    at += e.size;
  }
  std::vector<PackagePart> parts;
  parts.reserve(entries.size());
  at = entries.front().size;
  for (size_t i = 1; i < entries.size(); ++i) {
    std::vector<uint8_t> bytes(plain.begin() + at, plain.begin() + at + entries[i].size);
    LockMemory(bytes.data(), bytes.size());
    parts.emplace_back(entries[i].name, std::move(bytes));
    at += entries[i].size;
  }
  // The first part (the model, by far the largest) keeps the locked buffer: no second copy.
  WipeMemory(plain.data() + entries.front().size, plain.size() - entries.front().size);
  plain.resize(entries.front().size);
  std::vector<uint8_t> first;
  first.swap(plain);
  parts.insert(parts.begin(), PackagePart(entries.front().name, std::move(first)));
  return parts;
}

uint64_t MaxPackageBytes(uint64_t max_model_bytes) {
  constexpr uint64_t kOverhead = uint64_t{64} << 20;
  return max_model_bytes > UINT64_MAX - kOverhead ? UINT64_MAX : max_model_bytes + kOverhead;
}

}  // namespace cvdeploy::security
