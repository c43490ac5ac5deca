// SPDX-License-Identifier: Apache-2.0
// The tamper-evident audit log writer (docs/security.md, "Audit log"; encoding in
// audit_format.h). Entries are appended as JSON Lines, chained by SHA-256 and authenticated
// by HMAC-SHA-256; a signed checkpoint is written every `checkpoint_every` entries, before
// each rotation and at Close(), so that cutting the tail is detectable.
//
// Threading: one dedicated writer thread owns the file. Submit() may be called from any
// thread; it queues the event (bounded queue) and returns at once. The writer takes every
// queued event at once and writes them with one write(2) (group commit), then syncs per
// `sync`, then calls each `done` on the writer thread. `done` must be quick and must not call
// Append() or Close() (they would wait on the writer itself); it may call Submit().
//
// Resume: an existing log is continued from its last line. When that line is not a final
// checkpoint (the previous run crashed, or the tail was cut while no writer ran) or the live
// file is missing and path.1 is continued, the first new entry is {"action":"audit_resume",
// "clean":false,"reason":...,"last_seq":S}, so that the gap in time is visible to an auditor.
//
// Errors: the constructor throws cvdeploy::Error for bad options, key files (missing, mode
// wider than 0600, too short) and a corrupt tail of an existing log (the chain cannot be
// continued: see docs). A log file that cannot be opened or written (no such directory, disk
// full, I/O error) does not throw: every entry it affects gets kUnavailable in `done`, is
// printed to stderr as one line (the event's fields only, never a key), healthy() turns
// false, and the next batch tries again (reopening the file), so the log recovers by itself
// once the disk is writable. A failed batch is rolled back (the file is truncated to its
// previous length), so the chain never includes entries that were reported as failed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cvdeploy/security/crypto.h"
#include "cvdeploy/status.h"

namespace cvdeploy::security {

struct AuditOptions {
  std::string path;                     // the live log; rotated files are path.1, path.2, ...
  std::string hmac_key_file;            // required: LoadAuditHmacKey
  std::string signing_key_file;         // required: Ed25519 private key PEM (checkpoint signatures)
  size_t checkpoint_every = 1000;       // entries between interval checkpoints (> 0)
  uint64_t rotate_bytes = 64ull << 20;  // rotate once the live file reaches this size (> 0)
  size_t keep_files = 0;                // rotated files kept (path.1 .. path.K); 0: all
  size_t queue_capacity = 4096;         // events waiting for the writer (> 0)
  // Not used by the writer: the server's policy when `done` reports an error (answer anyway
  // instead of 503). Here so that the one options struct carries the whole configuration.
  bool fail_open = false;
  // kNone: write(2) only (survives a crash of the process, not of the machine);
  // kBatch: fdatasync once per group-commit batch, before `done` (default);
  // kEvery: one write(2) and fdatasync per entry.
  enum class Sync { kNone, kBatch, kEvery };
  Sync sync = Sync::kBatch;
};

class AuditLog {
 public:
  // Loads the keys, reads the tail of an existing log to continue its seq and chain (path, or
  // path.1 when path is missing or empty), opens the file and starts the writer thread.
  explicit AuditLog(AuditOptions options);
  ~AuditLog();  // Close()
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Queues `event` (a JSON object of the caller's fields: action, identity, method, route,
  // model, version, status, bytes_in, bytes_out, request_id, client, reason, ...). `done`
  // (may be empty) gets ok once the entry is written (and synced per `sync`), or
  // kUnavailable when it could not be written. When the queue is full or the log is closed,
  // or kInvalidArgument when the event is not an object or uses the reserved action
  // "checkpoint", `done` is called at once on the calling thread.
  void Submit(nlohmann::json event, std::function<void(const Status&)> done);
  // Submit and wait for the result (CLI-side events, tests). Not from a `done` callback.
  Status Append(nlohmann::json event);

  // False after a failed write (or an unopenable file) until a write succeeds again.
  bool healthy() const { return healthy_.load(); }
  // Writes the final checkpoint (reason "shutdown"), flushes, fsyncs and stops the writer.
  // Events submitted afterwards get kUnavailable. Idempotent; the first call's status.
  Status Close();
  uint64_t written() const { return written_.load(); }    // entries written (no checkpoints)
  uint64_t failures() const { return failures_.load(); }  // entries reported as failed
  uint64_t last_seq() const { return committed_seq_.load(); }

 private:
  struct Item {
    nlohmann::ordered_json event;
    std::function<void(const Status&)> done;
  };
  // The chain as of the last line in the file (writer thread only, but for committed_seq_).
  struct Chain {
    uint64_t seq = 0;
    std::string prev;
    uint64_t since_checkpoint = 0;
  };
  struct Batch {
    std::string bytes;
    Chain chain;
    std::vector<Item*> items;
  };

  void Resume();
  void Run();
  void WriteItems(std::vector<Item>& items);
  void AddLine(Batch& batch, const nlohmann::ordered_json& event, bool sign);
  void AddCheckpoint(Batch& batch, const char* reason, bool final);
  bool Commit(Batch& batch, std::string* error, bool sync);
  bool OpenFile(std::string* error);
  void Rotate();
  void ShiftRotatedFiles();
  void Report(Batch& batch, bool ok, const std::string& error);
  void Reject(const nlohmann::ordered_json& event, const std::function<void(const Status&)>& done,
              const Status& status);

  const AuditOptions options_;
  std::string hmac_key_;
  Ed25519Key signer_;

  std::mutex close_mutex_;  // serializes Close()
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool closing_ = false;
  bool closed_ = false;
  Status close_status_;
  std::thread thread_;

  // Writer thread only.
  int fd_ = -1;
  uint64_t file_bytes_ = 0;
  Chain chain_;

  std::atomic<bool> healthy_{true};
  std::atomic<uint64_t> written_{0}, failures_{0}, committed_seq_{0};
};

// Creates the audit keys: a random 32-byte HMAC key written as hex (FormatAuditHmacKey) to
// `hmac_key_file`, an Ed25519 private key PEM to `signing_key_file` (both 0600, atomically)
// and its public key PEM to `signing_key_file + ".pub"` (0644). Refuses (kInvalidArgument) to
// overwrite an existing file unless `overwrite`. Returns the public key PEM.
std::string CreateAuditKeys(const std::string& hmac_key_file, const std::string& signing_key_file,
                            bool overwrite);

}  // namespace cvdeploy::security
