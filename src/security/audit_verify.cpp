// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/audit_verify.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include "cvdeploy/error.h"
#include "cvdeploy/security/audit_format.h"

namespace cvdeploy::security {
namespace {

std::vector<std::string_view> SplitLines(std::string_view text, bool* torn) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.push_back(text.substr(start));
      *torn = true;
      return lines;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  *torn = false;
  return lines;
}

class Verifier {
 public:
  Verifier(const std::vector<AuditSource>& sources, const AuditVerifyOptions& options)
      : sources_(sources), options_(options) {
    result_.hmac_checked = !options.hmac_key.empty();
    result_.signatures_checked = options.public_key.has_value();
    for (const auto& s : sources) {
      bool torn = false;
      lines_.push_back(SplitLines(s.text, &torn));
      torn_.push_back(torn);
    }
  }

  AuditVerifyResult Run() {
    for (size_t f = 0; f < sources_.size(); ++f) {
      for (size_t i = 0; i < lines_[f].size(); ++i) {
        if (!CheckLine(f, i)) return result_;
      }
      if (!EndFile(f)) return result_;
    }
    if (result_.entries == 0) {
      Fail(AuditProblem::kNotClosed, sources_.empty() ? "" : sources_.back().name, 1, 1,
           "no entries");
    }
    return result_;
  }

 private:
  bool Fail(AuditProblem problem, const std::string& file, size_t line, uint64_t seq,
            std::string detail) {
    result_.problem = problem;
    result_.file = file;
    result_.line = line;
    result_.seq = seq;
    result_.detail = std::move(detail);
    return false;
  }

  // Whether an entry with `seq` appears after line i of file f (decides "deleted" against
  // "reordered" when seq jumps ahead).
  bool SeqAppearsLater(size_t f, size_t i, uint64_t seq) const {
    for (size_t g = f; g < lines_.size(); ++g) {
      for (size_t j = (g == f ? i + 1 : 0); j < lines_[g].size(); ++j) {
        std::string error;
        const auto parsed = ParseAuditLine(lines_[g][j], &error);
        if (parsed && parsed->seq == seq) return true;
      }
    }
    return false;
  }

  bool CheckLine(size_t f, size_t i) {
    const std::string& name = sources_[f].name;
    const std::string_view text = lines_[f][i];
    const uint64_t expected = have_prev_ ? last_seq_ + 1 : 0;
    std::string error;
    const auto line = ParseAuditLine(text, &error);
    if (torn_[f] && i + 1 == lines_[f].size()) {
      return Fail(AuditProblem::kBadJson, name, i + 1, line ? line->seq : expected,
                  "incomplete last line (no newline: torn write or cut)");
    }
    if (!line) return Fail(AuditProblem::kBadJson, name, i + 1, expected, error);
    const uint64_t seq = line->seq;
    if (result_.hmac_checked && !AuditHmacMatches(*line, options_.hmac_key)) {
      return Fail(AuditProblem::kHmacMismatch, name, i + 1, seq, "the entry was modified");
    }
    if (have_prev_) {
      if (seq > expected) {
        if (SeqAppearsLater(f, i, expected)) {
          return Fail(AuditProblem::kSeqOrder, name, i + 1, seq,
                      "expected seq " + std::to_string(expected) + ", which appears later");
        }
        return Fail(AuditProblem::kSeqGap, name, i + 1, seq,
                    "expected seq " + std::to_string(expected) + ": " +
                        std::to_string(seq - expected) + " entries missing");
      }
      if (seq < expected) {
        return Fail(AuditProblem::kSeqOrder, name, i + 1, seq,
                    "expected seq " + std::to_string(expected) +
                        " (a repeated or earlier entry: copied, swapped or reordered)");
      }
      if (line->prev != last_hash_) {
        return Fail(AuditProblem::kPrevMismatch, name, i + 1, seq,
                    "prev is not the hash of the previous line");
      }
    } else {
      if (line->prev == kAuditGenesisHash && seq != 1) {
        return Fail(AuditProblem::kSeqGap, name, i + 1, seq, "a chain's first entry has seq 1");
      }
      result_.first_seq = seq;
    }
    if (!CheckCheckpoint(name, i + 1, *line)) return false;
    have_prev_ = true;
    last_seq_ = seq;
    last_hash_ = AuditLineHash(text);
    ++result_.entries;
    result_.last_seq = seq;
    return true;
  }

  bool CheckCheckpoint(const std::string& name, size_t line_no, const AuditLine& line) {
    last_checkpoint_ = line.is_checkpoint();
    if (!last_checkpoint_) {
      if (!line.sig.empty()) {
        return Fail(AuditProblem::kBadCheckpoint, name, line_no, line.seq,
                    "a signature on an entry that is not a checkpoint");
      }
      ++since_checkpoint_;
      return true;
    }
    const auto& e = line.event;
    const auto final_it = e.find("final");
    const auto reason_it = e.find("reason");
    const auto count_it = e.find("count");
    const auto head_it = e.find("head");
    if (final_it == e.end() || !final_it->is_boolean() || reason_it == e.end() ||
        !reason_it->is_string() || count_it == e.end() || !count_it->is_number_unsigned() ||
        head_it == e.end() || !head_it->is_string()) {
      return Fail(AuditProblem::kBadCheckpoint, name, line_no, line.seq,
                  "a checkpoint needs final, reason, count and head");
    }
    const std::string reason = reason_it->get<std::string>();
    last_final_ = final_it->get<bool>();
    if (reason != (last_final_ ? (reason == "rotation" ? "rotation" : "shutdown") : "interval")) {
      return Fail(AuditProblem::kBadCheckpoint, name, line_no, line.seq,
                  "reason '" + reason + "' does not match final");
    }
    if (count_it->get<uint64_t>() + 1 != line.seq || head_it->get<std::string>() != line.prev) {
      return Fail(AuditProblem::kBadCheckpoint, name, line_no, line.seq,
                  "count or head does not describe the chain before it");
    }
    if (line.sig.empty()) {
      return Fail(AuditProblem::kBadSignature, name, line_no, line.seq, "checkpoint not signed");
    }
    if (result_.signatures_checked && !AuditSignatureMatches(line, *options_.public_key)) {
      return Fail(AuditProblem::kBadSignature, name, line_no, line.seq,
                  "the signature does not verify with the public key");
    }
    ++result_.checkpoints;
    since_checkpoint_ = 0;
    return true;
  }

  bool EndFile(size_t f) {
    const bool last_file = f + 1 == sources_.size();
    const std::string& name = sources_[f].name;
    const size_t past = lines_[f].size() + 1;
    if (lines_[f].empty() || (last_checkpoint_ && last_final_)) return true;
    if (!last_file) {
      return Fail(AuditProblem::kTruncated, name, past, last_seq_ + 1,
                  "a rotated file must end with its final checkpoint");
    }
    if (options_.allow_open) {
      result_.open_entries = since_checkpoint_;
      return true;
    }
    if (last_checkpoint_) {
      return Fail(AuditProblem::kTruncated, name, past, last_seq_ + 1,
                  "ends with an interval checkpoint: entries after it were cut");
    }
    return Fail(AuditProblem::kNotClosed, name, past, last_seq_ + 1,
                std::to_string(since_checkpoint_) +
                    " entries after the last checkpoint and no final checkpoint (still open, "
                    "or truncated; --allow-open accepts a live log)");
  }

  const std::vector<AuditSource>& sources_;
  const AuditVerifyOptions& options_;
  std::vector<std::vector<std::string_view>> lines_;
  std::vector<bool> torn_;
  AuditVerifyResult result_;
  bool have_prev_ = false, last_checkpoint_ = false, last_final_ = false;
  uint64_t last_seq_ = 0, since_checkpoint_ = 0;
  std::string last_hash_;
};

}  // namespace

const char* AuditProblemName(AuditProblem problem) {
  switch (problem) {
    case AuditProblem::kNone:
      return "ok";
    case AuditProblem::kBadJson:
      return "bad JSON";
    case AuditProblem::kHmacMismatch:
      return "HMAC mismatch (modified)";
    case AuditProblem::kSeqGap:
      return "seq gap (deleted)";
    case AuditProblem::kSeqOrder:
      return "seq out of order (reordered, swapped or inserted)";
    case AuditProblem::kPrevMismatch:
      return "prev-hash mismatch (inserted, deleted or reordered)";
    case AuditProblem::kBadCheckpoint:
      return "bad checkpoint";
    case AuditProblem::kBadSignature:
      return "bad checkpoint signature";
    case AuditProblem::kTruncated:
      return "truncated after checkpoint";
    case AuditProblem::kNotClosed:
      return "missing final checkpoint";
  }
  return "unknown";
}

std::string AuditVerifyResult::Describe() const {
  if (!ok()) {
    return file + ":" + std::to_string(line) + " seq " + std::to_string(seq) + ": " +
           AuditProblemName(problem) + ": " + detail;
  }
  std::string s = "ok: " + std::to_string(entries) + " entries, " + std::to_string(checkpoints) +
                  " checkpoints, last seq " + std::to_string(last_seq);
  if (first_seq > 1) s += " (chain starts at seq " + std::to_string(first_seq) + ")";
  if (open_entries > 0) {
    s += "; open: " + std::to_string(open_entries) + " entries after last checkpoint";
  }
  if (!hmac_checked) s += "; HMACs not checked (no HMAC key): hash chain only";
  if (!signatures_checked) s += "; checkpoint signatures not checked (no public key)";
  return s;
}

AuditVerifyResult VerifyAuditSources(const std::vector<AuditSource>& sources,
                                     const AuditVerifyOptions& options) {
  return Verifier(sources, options).Run();
}

std::string ReadAuditFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) throw NotFound(path + ": no such file");
    throw BadInput(path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) throw BadInput(path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) throw BadInput(path + ": cannot read");
  return text.str();
}

AuditVerifyResult VerifyAuditFiles(const std::vector<std::string>& paths,
                                   const AuditVerifyOptions& options) {
  std::vector<AuditSource> sources;
  for (const auto& path : paths) sources.push_back({path, ReadAuditFile(path)});
  return VerifyAuditSources(sources, options);
}

}  // namespace cvdeploy::security
