// SPDX-License-Identifier: Apache-2.0
// The audit log parser and verifier (security/audit_format.h, audit_verify.h), which
// `cvdeploy audit verify|show` run on files an attacker may have edited. The input is a log
// file's bytes; with 1 as its first byte it is split at the first 0x00 byte into two files
// (rotation). Checks, for any bytes:
//  - VerifyAuditSources never throws, and its result is consistent: ok means at least one
//    entry and last_seq >= first_seq; a problem names a file of the input and a line >= 1;
//  - ParseAuditLine never throws, and a line it accepts is in the one canonical form:
//    re-encoding its fields gives back exactly its bytes up to the hmac (and its signed part
//    for a signed line), so no two spellings of one entry exist;
//  - AuditJsonDepth bounds what the parser is given (kAuditMaxDepth).
// The HMAC key is 32 bytes of 'k' (hex 6b6b...): the seeds are written with it, so that
// mutations get past the hmac check to the chain and checkpoint logic.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cvdeploy/security/audit_format.h"
#include "cvdeploy/security/audit_verify.h"
#include "fuzz_util.h"

namespace {

namespace sec = cvdeploy::security;

void Check(bool condition) {
  if (!condition) std::abort();
}

void CheckLine(std::string_view text, const std::string& key) {
  std::string error;
  const auto line = sec::ParseAuditLine(text, &error);
  if (!line) {
    Check(!error.empty());
    return;
  }
  Check(sec::AuditJsonDepth(line->mac_part, sec::kAuditMaxDepth) <= sec::kAuditMaxDepth);
  const std::string again =
      sec::EncodeAuditLine(line->seq, line->time, line->prev, line->event, key, nullptr);
  const auto reparsed = sec::ParseAuditLine(again, &error);
  Check(reparsed.has_value());
  Check(reparsed->signed_part == line->signed_part);
  if (line->sig.empty()) {
    Check(reparsed->mac_part == line->mac_part);
    Check(sec::AuditHmacMatches(*line, key) == (again == text));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string key(32, 'k');
  static const sec::Ed25519Key public_key = sec::Ed25519Key::Generate();
  const std::string_view text = cvdeploy::fuzz::AsText(data, size);
  std::vector<sec::AuditSource> sources;
  if (!text.empty() && text[0] == 1 && text.find('\0') != std::string_view::npos) {
    const size_t cut = text.find('\0');
    sources.push_back({"a.log.1", std::string(text.substr(1, cut - 1))});
    sources.push_back({"a.log", std::string(text.substr(cut + 1))});
  } else {
    sources.push_back({"a.log", std::string(text)});
  }
  for (int mode = 0; mode < 3; ++mode) {
    sec::AuditVerifyOptions options;
    if (mode >= 1) options.hmac_key = key;
    if (mode == 2) options.public_key = public_key;
    options.allow_open = mode == 1;
    const auto result = sec::VerifyAuditSources(sources, options);
    if (result.ok()) {
      Check(result.entries > 0 && result.last_seq >= result.first_seq);
    } else {
      Check(result.line >= 1);
      Check(result.file == "a.log" || result.file == "a.log.1");
      Check(!result.Describe().empty());
    }
  }
  for (const auto& source : sources) {
    size_t start = 0;
    while (start < source.text.size()) {
      size_t end = source.text.find('\n', start);
      if (end == std::string::npos) end = source.text.size();
      CheckLine(std::string_view(source.text).substr(start, end - start), key);
      start = end + 1;
    }
  }
  return 0;
}
