// SPDX-License-Identifier: Apache-2.0
// What the two JSON credential stores (ApiKeyStore, UserStore) share about their files:
// a stamp that tells whether the file changed since it was read (inode, size, mtime), a
// writer lock so that two writers (the CLI and a running server, or two CLI runs) never
// clobber each other, the rule for key and user names, and the UTC timestamps they store.
// Stateless functions are thread-safe; a StoreLock belongs to one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cvdeploy::security {

// Identity of one version of a file. WriteSecretFile replaces the file by rename, so every
// write gives a new inode even when size and mtime happen to match; ctime catches chmod.
struct FileStamp {
  uint64_t device = 0, inode = 0, size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  bool exists = false;
  bool operator==(const FileStamp& o) const {
    return exists == o.exists && device == o.device && inode == o.inode && size == o.size &&
           mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns;
  }
  bool operator!=(const FileStamp& o) const { return !(*this == o); }
};
FileStamp StampOf(const std::string& path);  // exists=false when stat fails

// An exclusive advisory lock (flock) on the sidecar file `path + ".lock"` (created 0600),
// held for the object's lifetime. Every writer of a store file holds it across
// read-modify-write. Throws kBadInput naming the file when it cannot be created.
class StoreLock {
 public:
  // `wait` false: do not block when another process holds the lock; locked() tells.
  explicit StoreLock(const std::string& path, bool wait = true);
  ~StoreLock();
  bool locked() const { return locked_; }
  StoreLock(const StoreLock&) = delete;
  StoreLock& operator=(const StoreLock&) = delete;

 private:
  int fd_ = -1;
  bool locked_ = false;
};

// Key and user names: [A-Za-z0-9._-]{1,64}.
bool IsValidStoreName(std::string_view name);
// Throws kInvalidArgument "<what> name 'NAME': ..." when !IsValidStoreName(name). Names are
// not secrets, but an invalid one is not echoed either (it may be a pasted secret).
void CheckStoreName(std::string_view what, std::string_view name);

// RFC 3339 UTC with second precision: "2026-12-03T14:21:29Z".
std::string FormatUtc(std::chrono::system_clock::time_point t);
std::optional<std::chrono::system_clock::time_point> ParseUtc(std::string_view text);

// Fields of the store files; each throws kBadInput "<at>: '<key>' ..." for a wrong type.
// TimeJson/TimeField: a FormatUtc string or null for an absent time.
nlohmann::json TimeJson(const std::optional<std::chrono::system_clock::time_point>& t);
std::optional<std::chrono::system_clock::time_point> TimeField(const nlohmann::json& j,
                                                               const char* key,
                                                               const std::string& at);
std::vector<std::string> StringList(const nlohmann::json& j, const char* key,
                                    const std::string& at);
std::string StringField(const nlohmann::json& j, const char* key, const std::string& at);

}  // namespace cvdeploy::security
