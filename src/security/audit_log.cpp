// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <iterator>

#include "cvdeploy/error.h"
#include "cvdeploy/security/audit_format.h"
#include "cvdeploy/security/secret_file.h"

namespace cvdeploy::security {
namespace {

// A batch is written with one write(2) up to this size; more queued entries make more batches.
constexpr size_t kMaxBatchBytes = size_t{1} << 20;

bool IsNonEmptyRegularFile(const std::string& path, struct stat* st) {
  return ::stat(path.c_str(), st) == 0 && S_ISREG(st->st_mode) && st->st_size > 0;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

void PrintUnwritten(const nlohmann::ordered_json& event, const std::string& why) {
  const std::string text =
      event.dump(-1, ' ', true, nlohmann::ordered_json::error_handler_t::replace);
  std::fprintf(stderr, "cvdeploy: audit: entry not written (%s): %s\n", why.c_str(), text.c_str());
}

// The last line of `path` (size `size`), which must end with a newline.
std::string ReadLastLine(const std::string& path, uint64_t size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw BadInput(path + ": cannot read: " + std::strerror(errno));
  const uint64_t n = std::min<uint64_t>(size, kAuditMaxLineBytes + 1);
  std::string tail(n, '\0');
  const ssize_t got = ::pread(fd, tail.data(), n, static_cast<off_t>(size - n));
  ::close(fd);
  if (got != static_cast<ssize_t>(n)) throw BadInput(path + ": cannot read its last line");
  const std::string advice =
      "; the audit chain cannot be continued: check the log with 'cvdeploy audit verify' and "
      "move it aside to start a new one";
  if (tail.back() != '\n') {
    throw BadInput(path + ": the last line is incomplete (a torn write?)" + advice);
  }
  tail.pop_back();
  const size_t nl = tail.rfind('\n');
  if (nl == std::string::npos && n < size) {
    throw BadInput(path + ": the last line is too long" + advice);
  }
  return nl == std::string::npos ? tail : tail.substr(nl + 1);
}

}  // namespace

AuditLog::AuditLog(AuditOptions options) : options_(std::move(options)) {
  if (options_.path.empty()) throw InvalidArgument("audit log: no path", "audit_log");
  if (options_.checkpoint_every == 0 || options_.rotate_bytes == 0 ||
      options_.queue_capacity == 0) {
    throw InvalidArgument(
        "audit log: checkpoint_every, rotate_bytes and queue_capacity must be "
        "positive");
  }
  if (options_.hmac_key_file.empty()) {
    throw InvalidArgument("audit log: an HMAC key file is required", "audit_hmac_key_file");
  }
  if (options_.signing_key_file.empty()) {
    throw InvalidArgument("audit log: a signing key file is required", "audit_signing_key_file");
  }
  hmac_key_ = LoadAuditHmacKey(options_.hmac_key_file);
  signer_ = LoadAuditSigningKey(options_.signing_key_file);
  Resume();
  std::string error;
  if (!OpenFile(&error)) {
    healthy_ = false;
    std::fprintf(stderr, "cvdeploy: audit: %s\n", error.c_str());
  }
  thread_ = std::thread([this] { Run(); });
}

AuditLog::~AuditLog() { Close(); }

void AuditLog::Resume() {
  chain_.prev = kAuditGenesisHash;
  struct stat st {};
  std::string source = options_.path;
  if (!IsNonEmptyRegularFile(source, &st)) {
    source = options_.path + ".1";
    if (!IsNonEmptyRegularFile(source, &st)) return;
  }
  const std::string text = ReadLastLine(source, static_cast<uint64_t>(st.st_size));
  std::string error;
  const auto line = ParseAuditLine(text, &error);
  if (!line) {
    throw BadInput(source + ": the last line is not an audit entry (" + error +
                   "); the audit chain cannot be continued: check the log with 'cvdeploy audit "
                   "verify' and move it aside to start a new one");
  }
  if (!AuditHmacMatches(*line, hmac_key_)) {
    throw BadInput(source + ": the last entry (seq " + std::to_string(line->seq) +
                   ") fails its HMAC check: modified, or written with another key; check the "
                   "log with 'cvdeploy audit verify' and move it aside to start a new one");
  }
  chain_.seq = line->seq;
  chain_.prev = AuditLineHash(text);
  committed_seq_ = chain_.seq;
  // A log that was not closed (a crash, a kill, or a tail cut while the server was down), or
  // whose live file is missing, is continued, and the first entry says so for the auditor.
  const bool closed = line->is_checkpoint() && line->event.value("final", false);
  if (!closed || source != options_.path) {
    nlohmann::ordered_json note;
    note["action"] = "audit_resume";
    note["clean"] = false;
    note["reason"] = source != options_.path ? "live file missing; continuing " + source
                                             : "previous run did not close the log";
    note["last_seq"] = line->seq;
    queue_.push_back(Item{std::move(note), {}});
  }
}

bool AuditLog::OpenFile(std::string* error) {
  fd_ = ::open(options_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    *error = options_.path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  file_bytes_ =
      ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
  return true;
}

void AuditLog::Submit(nlohmann::json event, std::function<void(const Status&)> done) {
  nlohmann::ordered_json ordered = std::move(event);
  if (!ordered.is_object()) {
    Reject(ordered, done, InvalidArgument("audit event: must be a JSON object"));
    return;
  }
  const auto action = ordered.find("action");
  if (action != ordered.end() && *action == "checkpoint") {
    Reject(ordered, done, InvalidArgument("audit event: the action 'checkpoint' is reserved"));
    return;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  if (closing_) {
    lock.unlock();
    Reject(ordered, done, Unavailable("audit log " + options_.path + ": closed"));
    return;
  }
  if (queue_.size() >= options_.queue_capacity) {
    lock.unlock();
    Reject(ordered, done,
           Unavailable("audit log " + options_.path + ": queue full (" +
                       std::to_string(options_.queue_capacity) + " entries waiting)"));
    return;
  }
  queue_.push_back(Item{std::move(ordered), std::move(done)});
  lock.unlock();
  cv_.notify_one();
}

void AuditLog::Reject(const nlohmann::ordered_json& event,
                      const std::function<void(const Status&)>& done, const Status& status) {
  ++failures_;
  PrintUnwritten(event, status.message());
  if (done) done(status);
}

Status AuditLog::Append(nlohmann::json event) {
  std::promise<Status> promise;
  std::future<Status> result = promise.get_future();
  Submit(std::move(event), [&promise](const Status& status) { promise.set_value(status); });
  return result.get();
}

Status AuditLog::Close() {
  std::lock_guard<std::mutex> close_lock(close_mutex_);
  if (closed_) return close_status_;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closing_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  closed_ = true;
  return close_status_;
}

void AuditLog::Run() {
  for (;;) {
    std::vector<Item> items;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) break;  // closing, and everything queued is written
      items.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
    }
    WriteItems(items);
  }
  Batch batch{{}, chain_, {}};
  AddCheckpoint(batch, "shutdown", true);
  std::string error;
  if (!Commit(batch, &error, true)) {
    close_status_ = Unavailable("audit log: final checkpoint not written: " + error);
    std::fprintf(stderr, "cvdeploy: audit: final checkpoint not written: %s\n", error.c_str());
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void AuditLog::WriteItems(std::vector<Item>& items) {
  size_t i = 0;
  while (i < items.size()) {
    Batch batch{{}, chain_, {}};
    while (i < items.size()) {
      Item& item = items[i++];
      try {
        AddLine(batch, item.event, false);
      } catch (const Error& e) {  // too large or too deep: this entry only
        Reject(item.event, item.done, Status(e));
        continue;
      }
      batch.items.push_back(&item);
      if (batch.chain.since_checkpoint >= options_.checkpoint_every) {
        AddCheckpoint(batch, "interval", false);
      }
      if (options_.sync == AuditOptions::Sync::kEvery) break;
      if (file_bytes_ + batch.bytes.size() >= options_.rotate_bytes) break;
      if (batch.bytes.size() >= kMaxBatchBytes) break;
    }
    if (batch.items.empty()) continue;
    std::string error;
    const bool ok = Commit(batch, &error, options_.sync != AuditOptions::Sync::kNone);
    Report(batch, ok, error);
    if (ok && file_bytes_ >= options_.rotate_bytes) Rotate();
  }
}

void AuditLog::AddLine(Batch& batch, const nlohmann::ordered_json& event, bool sign) {
  const uint64_t seq = batch.chain.seq + 1;
  const std::string line = EncodeAuditLine(seq, AuditTimeNow(), batch.chain.prev, event, hmac_key_,
                                           sign ? &signer_ : nullptr);
  batch.chain.seq = seq;
  batch.chain.prev = AuditLineHash(line);
  batch.chain.since_checkpoint = sign ? 0 : batch.chain.since_checkpoint + 1;
  batch.bytes += line;
  batch.bytes += '\n';
}

void AuditLog::AddCheckpoint(Batch& batch, const char* reason, bool final) {
  nlohmann::ordered_json event;
  event["action"] = "checkpoint";
  event["final"] = final;
  event["reason"] = reason;
  event["count"] = batch.chain.seq;  // entries before this one
  event["head"] = batch.chain.prev;  // hash of the chain so far (the previous line)
  AddLine(batch, event, true);
}

// Writes the batch with one write(2). On a write failure the file is cut back to its length
// before the batch and closed (the next batch reopens it), and the chain stays where it was.
bool AuditLog::Commit(Batch& batch, std::string* error, bool sync) {
  if (fd_ < 0 && !OpenFile(error)) return false;
  const std::string& bytes = batch.bytes;
  size_t done = 0;
  int err = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : ENOSPC;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (done < bytes.size()) {
    *error = options_.path + ": write failed: " + std::strerror(err);
    if (done > 0 && ::ftruncate(fd_, static_cast<off_t>(file_bytes_)) != 0) {
      std::fprintf(stderr, "cvdeploy: audit: %s: a partial entry could not be removed: %s\n",
                   options_.path.c_str(), std::strerror(errno));
    }
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  file_bytes_ += bytes.size();
  chain_ = batch.chain;
  committed_seq_ = chain_.seq;
  if (sync && ::fdatasync(fd_) != 0) {
    *error = options_.path + ": fdatasync failed: " + std::strerror(errno) +
             " (written, durability unknown)";
    return false;
  }
  return true;
}

void AuditLog::Report(Batch& batch, bool ok, const std::string& error) {
  healthy_ = ok;
  const Status status =
      ok ? Status() : Status(ErrorCode::kUnavailable, "audit log unavailable: " + error);
  for (Item* item : batch.items) {
    if (ok) {
      ++written_;
    } else {
      ++failures_;
      PrintUnwritten(item->event, error);
    }
    if (!item->done) continue;
    try {
      item->done(status);
    } catch (...) {  // a callback's failure is not the log's
    }
  }
}

// Closes the live file with a final checkpoint, shifts path.N -> path.N+1 and path -> path.1
// and starts a new path whose first entry chains to that checkpoint.
void AuditLog::Rotate() {
  Batch batch{{}, chain_, {}};
  AddCheckpoint(batch, "rotation", true);
  std::string error;
  if (!Commit(batch, &error, true)) {
    healthy_ = false;
    if (chain_.seq != batch.chain.seq) {  // not written: try again after the next batch
      std::fprintf(stderr, "cvdeploy: audit: rotation postponed: %s\n", error.c_str());
      return;
    }
    std::fprintf(stderr, "cvdeploy: audit: %s\n", error.c_str());
  }
  ::close(fd_);
  fd_ = -1;
  ShiftRotatedFiles();
  if (!OpenFile(&error)) {
    healthy_ = false;
    std::fprintf(stderr, "cvdeploy: audit: %s\n", error.c_str());
  }
}

void AuditLog::ShiftRotatedFiles() {
  const std::string& path = options_.path;
  auto name = [&](size_t k) { return path + "." + std::to_string(k); };
  size_t n = 0;
  while (Exists(name(n + 1))) ++n;
  const size_t keep = options_.keep_files;
  if (keep > 0) {
    for (size_t k = n; k >= keep && k > 0; --k) ::unlink(name(k).c_str());
    n = std::min(n, keep - 1);
  }
  for (size_t k = n; k >= 1; --k) {
    if (::rename(name(k).c_str(), name(k + 1).c_str()) != 0) {
      std::fprintf(stderr, "cvdeploy: audit: cannot rename %s: %s\n", name(k).c_str(),
                   std::strerror(errno));
    }
  }
  if (::rename(path.c_str(), name(1).c_str()) != 0) {
    std::fprintf(stderr, "cvdeploy: audit: cannot rename %s: %s\n", path.c_str(),
                 std::strerror(errno));
  }
}

std::string CreateAuditKeys(const std::string& hmac_key_file, const std::string& signing_key_file,
                            bool overwrite) {
  const std::string public_file = signing_key_file + ".pub";
  if (!overwrite) {
    for (const std::string* p : {&hmac_key_file, &signing_key_file, &public_file}) {
      if (Exists(*p)) throw InvalidArgument(*p + ": exists; refusing to overwrite a key");
    }
  }
  WriteSecretFile(hmac_key_file, FormatAuditHmacKey(RandomBytes(32)));
  const Ed25519Key key = Ed25519Key::Generate();
  WriteSecretFile(signing_key_file, key.PrivatePem());
  const std::string pem = key.PublicPem();
  std::ofstream out(public_file, std::ios::binary | std::ios::trunc);
  out << pem;
  out.close();
  if (!out) throw BadInput(public_file + ": cannot write");
  return pem;
}

}  // namespace cvdeploy::security
