// SPDX-License-Identifier: Apache-2.0
// The audit log's entry encoding, shared by the writer (audit_log.h), the verifier
// (audit_verify.h) and `cvdeploy audit show`. One entry is one line of JSON (JSON Lines):
//
//   {"seq":N,"time":"2026-12-03T14:00:00.123456Z","prev":"<hex sha256>","event":{...}
//    [,"sig":"<base64url Ed25519>"],"hmac":"<hex HMAC-SHA-256>"}
//
// Canonical form, exactly (docs/security.md, "Audit log"):
//  - B = ordered_json {seq, time, prev, event} dumped compact, ASCII only (ensure_ascii),
//    invalid UTF-8 replaced by U+FFFD;
//  - checkpoints only: sig = Ed25519(signing key, B); C = B without its final '}' +
//    `,"sig":"<sig>"}`; otherwise C = B;
//  - hmac = HMAC-SHA-256(key, C); the line = C without its final '}' + `,"hmac":"<hex>"}`.
//  - prev = hex SHA-256 of the previous entry's whole line (without its '\n'); the first entry
//    of a chain has 64 zeros; across rotation the chain simply continues into the next file.
// A parsed line must re-encode to exactly its own bytes (no other spelling is accepted).
// All functions are thread-safe; ParseAuditLine never throws (attacker-edited input).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "cvdeploy/security/crypto.h"

namespace cvdeploy::security {

// Longest line the writer produces and the verifier reads (1 MiB); nesting is limited to
// kAuditMaxDepth levels so that no recursive JSON operation can exhaust the stack.
constexpr size_t kAuditMaxLineBytes = size_t{1} << 20;
constexpr int kAuditMaxDepth = 32;
// prev of the first entry of a chain.
extern const char kAuditGenesisHash[];  // 64 '0'

// The HMAC key file: the key as lowercase or uppercase hex (what `audit keygen` writes: 64
// hex digits and a newline) or, when the content is not hex, the raw bytes. Surrounding
// whitespace is ignored for hex. At least 32 key bytes. The file must pass CheckSecretFile.
// Throws cvdeploy::Error naming the file (never its content).
std::string LoadAuditHmacKey(const std::string& path);
std::string FormatAuditHmacKey(std::string_view key);  // hex + "\n"
// An Ed25519 private key (PEM, a secret file). Throws naming the file.
Ed25519Key LoadAuditSigningKey(const std::string& path);
// An Ed25519 public (or private) key PEM from an ordinary file. Throws naming the file.
Ed25519Key LoadAuditPublicKey(const std::string& path);

// UTC now as "YYYY-MM-DDTHH:MM:SS.uuuuuuZ".
std::string AuditTimeNow();

// One decoded line. `event` keeps its key order.
struct AuditLine {
  uint64_t seq = 0;
  std::string time;
  std::string prev;  // 64 lowercase hex digits
  nlohmann::ordered_json event;
  std::string sig;          // base64url; empty unless the entry carries a signature
  std::string hmac;         // 64 lowercase hex digits
  std::string signed_part;  // B: what sig covers
  std::string mac_part;     // C: what hmac covers
  bool is_checkpoint() const;
};

// Encodes one entry (see the top of this file). `signer` non-null: the entry is signed
// (checkpoints). Throws kInvalidArgument when `event` is not an object, is nested deeper
// than kAuditMaxDepth or the line would exceed kAuditMaxLineBytes.
std::string EncodeAuditLine(uint64_t seq, const std::string& time, const std::string& prev,
                            const nlohmann::ordered_json& event, std::string_view hmac_key,
                            const Ed25519Key* signer);

// Decodes a line (without its '\n'). On failure returns nullopt and sets `*error` to a short
// reason ("not JSON", "field order", ...). Checks structure only, not hmac or signature.
std::optional<AuditLine> ParseAuditLine(std::string_view line, std::string* error);

std::string AuditLineHash(std::string_view line);  // hex SHA-256 of the line
// Constant-time comparison of the line's hmac with HMAC(key, C).
bool AuditHmacMatches(const AuditLine& line, std::string_view hmac_key);
bool AuditSignatureMatches(const AuditLine& line, const Ed25519Key& public_key);

// Nesting depth of a JSON text, without parsing (strings skipped); stops counting at
// `limit` + 1.
int AuditJsonDepth(std::string_view text, int limit);

}  // namespace cvdeploy::security
