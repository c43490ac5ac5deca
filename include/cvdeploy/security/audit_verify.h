// SPDX-License-Identifier: Apache-2.0
// Verification of an audit log (audit_format.h): one or more files in chain order (oldest
// first, e.g. FILE.2 FILE.1 FILE). Checks every line's structure, the hmac (when the key is
// given), seq continuity, the prev hash chain (within and across files), checkpoint fields and
// signatures (when the public key is given) and that the log ends with a final checkpoint.
// Stops at the FIRST broken entry and names it: file, 1-based line, seq and a reason.
// The input is untrusted (anyone with write access to the disk may have edited it): nothing in
// it can make these functions throw, recurse deeply or read out of bounds. Thread-safe (no
// shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cvdeploy/security/crypto.h"

namespace cvdeploy::security {

enum class AuditProblem {
  kNone,
  kBadJson,        // not a well-formed, canonical audit entry (or a torn last line)
  kHmacMismatch,   // the entry's bytes were modified (or forged without the key)
  kSeqGap,         // seq jumps ahead and the missing seq appears nowhere later: deleted
  kSeqOrder,       // seq goes back, repeats, or jumps ahead to one that appears later:
                   // reordered, swapped or a copied line inserted
  kPrevMismatch,   // prev is not the hash of the previous line: inserted, deleted, reordered
                   // or the previous line modified
  kBadCheckpoint,  // a checkpoint's fields do not describe the chain (count, head, reason)
  kBadSignature,   // a checkpoint's signature is missing or does not verify
  kTruncated,      // the log ends with an interval checkpoint, or a rotated file does not
                   // end with its final checkpoint: entries after it were cut
  kNotClosed,      // entries after the last checkpoint and no final one: still open, or
                   // truncated between checkpoints (accepted with allow_open)
};

// "bad JSON", "HMAC mismatch (modified)", ...
const char* AuditProblemName(AuditProblem problem);

struct AuditVerifyOptions {
  std::string hmac_key;                  // empty: hmacs are not checked
  std::optional<Ed25519Key> public_key;  // absent: signatures are not checked
  bool allow_open = false;               // accept entries after the last checkpoint
};

struct AuditVerifyResult {
  AuditProblem problem = AuditProblem::kNone;
  std::string file;  // where the first problem is
  size_t line = 0;   // 1-based; one past the last line for kTruncated / kNotClosed
  uint64_t seq = 0;  // the entry's seq (the expected one for missing entries)
  std::string detail;
  uint64_t entries = 0, checkpoints = 0, first_seq = 0, last_seq = 0;
  uint64_t open_entries = 0;  // entries after the last checkpoint (allow_open)
  bool hmac_checked = false, signatures_checked = false;

  bool ok() const { return problem == AuditProblem::kNone; }
  // "FILE:LINE seq S: REASON: DETAIL", or "ok: N entries, M checkpoints, last seq S" plus
  // what was not checked and whether the log is open.
  std::string Describe() const;
};

// One file's name and bytes.
struct AuditSource {
  std::string name;
  std::string text;
};

AuditVerifyResult VerifyAuditSources(const std::vector<AuditSource>& sources,
                                     const AuditVerifyOptions& options);
// Reads the files, then VerifyAuditSources. Throws kNotFound / kBadInput naming a file that
// cannot be read.
AuditVerifyResult VerifyAuditFiles(const std::vector<std::string>& paths,
                                   const AuditVerifyOptions& options);

// The whole content of a log file (throws kNotFound / kBadInput naming it).
std::string ReadAuditFile(const std::string& path);

}  // namespace cvdeploy::security
