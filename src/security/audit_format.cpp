// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/audit_format.h"

#include <sys/time.h>

#include <cctype>
#include <ctime>
#include <fstream>
#include <sstream>

#include "cvdeploy/error.h"
#include "cvdeploy/security/secret_file.h"

namespace cvdeploy::security {

const char kAuditGenesisHash[] = "0000000000000000000000000000000000000000000000000000000000000000";

namespace {

constexpr std::string_view kHmacPrefix = ",\"hmac\":\"";
constexpr std::string_view kSigPrefix = ",\"sig\":\"";
constexpr size_t kHexHashChars = 64;
// `,"hmac":"` + 64 hex + `"}`
constexpr size_t kHmacSuffixChars = 9 + kHexHashChars + 2;

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsBase64Url(std::string_view s) {
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}

std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', true, nlohmann::ordered_json::error_handler_t::replace);
}

std::string WithoutClosingBrace(const std::string& object_text) {
  return object_text.substr(0, object_text.size() - 1);
}

}  // namespace

std::string LoadAuditHmacKey(const std::string& path) {
  const std::string content = ReadSecretFile(path);
  size_t b = 0, e = content.size();
  while (b < e && std::isspace(static_cast<unsigned char>(content[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(content[e - 1]))) --e;
  std::string key = content;
  if (auto hex = HexDecode(std::string_view(content).substr(b, e - b)); hex && e > b) {
    key = *hex;
  }
  if (key.size() < 32) {
    throw BadInput(path +
                   ": an audit HMAC key must hold at least 32 bytes (64 hex digits); "
                   "create one with 'cvdeploy audit keygen'");
  }
  return key;
}

std::string FormatAuditHmacKey(std::string_view key) { return HexEncode(key) + "\n"; }

Ed25519Key LoadAuditSigningKey(const std::string& path) {
  const std::string pem = ReadSecretFile(path);
  Ed25519Key key;
  try {
    key = Ed25519Key::FromPem(pem);
  } catch (const Error&) {
    throw BadInput(path + ": not an Ed25519 private key in PEM form");
  }
  if (!key.has_private()) throw BadInput(path + ": holds a public key; the signing key is needed");
  return key;
}

Ed25519Key LoadAuditPublicKey(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw NotFound(path + ": cannot open the public key");
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return Ed25519Key::FromPem(text.str());
  } catch (const Error&) {
    throw BadInput(path + ": not an Ed25519 public key in PEM form");
  }
}

std::string AuditTimeNow() {
  timeval tv{};
  ::gettimeofday(&tv, nullptr);
  std::tm tm{};
  ::gmtime_r(&tv.tv_sec, &tm);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long>(tv.tv_usec));
  return buf;
}

bool AuditLine::is_checkpoint() const {
  const auto it = event.find("action");
  return it != event.end() && it->is_string() && it->get_ref<const std::string&>() == "checkpoint";
}

std::string EncodeAuditLine(uint64_t seq, const std::string& time, const std::string& prev,
                            const nlohmann::ordered_json& event, std::string_view hmac_key,
                            const Ed25519Key* signer) {
  if (!event.is_object()) throw InvalidArgument("audit event: must be a JSON object");
  nlohmann::ordered_json b;
  b["seq"] = seq;
  b["time"] = time;
  b["prev"] = prev;
  b["event"] = event;
  std::string c = Dump(b);
  if (AuditJsonDepth(c, kAuditMaxDepth) > kAuditMaxDepth) {
    throw InvalidArgument("audit event: nested deeper than " + std::to_string(kAuditMaxDepth));
  }
  if (signer != nullptr) {
    c = WithoutClosingBrace(c) + std::string(kSigPrefix) + Base64UrlEncode(signer->Sign(c)) + "\"}";
  }
  std::string line = WithoutClosingBrace(c) + std::string(kHmacPrefix) +
                     HexEncode(HmacSha256(hmac_key, c)) + "\"}";
  if (line.size() > kAuditMaxLineBytes) {
    throw InvalidArgument("audit event: the entry would exceed " +
                          std::to_string(kAuditMaxLineBytes) + " bytes");
  }
  return line;
}

std::optional<AuditLine> ParseAuditLine(std::string_view line, std::string* error) {
  auto fail = [&](const char* why) -> std::optional<AuditLine> {
    if (error != nullptr) *error = why;
    return std::nullopt;
  };
  if (line.size() > kAuditMaxLineBytes) return fail("line too long");
  if (line.size() < kHmacSuffixChars + 2 ||
      line.substr(line.size() - kHmacSuffixChars, kHmacPrefix.size()) != kHmacPrefix ||
      line.substr(line.size() - 2) != "\"}") {
    return fail("not an audit entry (no trailing hmac field)");
  }
  AuditLine out;
  out.hmac = std::string(line.substr(line.size() - kHexHashChars - 2, kHexHashChars));
  if (!IsLowerHex(out.hmac)) return fail("hmac is not lowercase hex");
  out.mac_part = std::string(line.substr(0, line.size() - kHmacSuffixChars)) + "}";
  if (AuditJsonDepth(out.mac_part, kAuditMaxDepth) > kAuditMaxDepth) {
    return fail("nested too deep");
  }
  const auto j = nlohmann::ordered_json::parse(out.mac_part, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("not JSON");
  static const char* const kKeys[] = {"seq", "time", "prev", "event", "sig"};
  size_t i = 0;
  for (auto it = j.begin(); it != j.end(); ++it, ++i) {
    if (i >= 5 || it.key() != kKeys[i]) return fail("unexpected fields or field order");
  }
  if (i < 4) return fail("missing fields");
  if (!j["seq"].is_number_unsigned() || !j["time"].is_string() || !j["prev"].is_string() ||
      !j["event"].is_object() || (i == 5 && !j["sig"].is_string())) {
    return fail("a field has the wrong type");
  }
  out.seq = j["seq"].get<uint64_t>();
  out.time = j["time"].get<std::string>();
  out.prev = j["prev"].get<std::string>();
  out.event = j["event"];
  if (out.prev.size() != kHexHashChars || !IsLowerHex(out.prev)) {
    return fail("prev is not a hex SHA-256");
  }
  if (i == 5) {
    out.sig = j["sig"].get<std::string>();
    if (out.sig.empty() || !IsBase64Url(out.sig)) return fail("sig is not base64url");
  }
  // One spelling only: the bytes must be what the writer would have produced.
  if (Dump(j) != out.mac_part) return fail("not in canonical form");
  if (i == 5) {
    const size_t tail = kSigPrefix.size() + out.sig.size() + 2;
    out.signed_part = out.mac_part.substr(0, out.mac_part.size() - tail) + "}";
  } else {
    out.signed_part = out.mac_part;
  }
  return out;
}

std::string AuditLineHash(std::string_view line) { return HexEncode(Sha256(line)); }

bool AuditHmacMatches(const AuditLine& line, std::string_view hmac_key) {
  return ConstantTimeEqual(HexEncode(HmacSha256(hmac_key, line.mac_part)), line.hmac);
}

bool AuditSignatureMatches(const AuditLine& line, const Ed25519Key& public_key) {
  const auto sig = Base64UrlDecode(line.sig);
  return sig && sig->size() == 64 && public_key.Verify(line.signed_part, *sig);
}

int AuditJsonDepth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) return limit + 1;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

}  // namespace cvdeploy::security
