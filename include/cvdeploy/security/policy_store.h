// SPDX-License-Identifier: Apache-2.0
// The live policy with hot reload. PolicyStore holds the current Policy as a
// shared_ptr<const Policy>; Current() rereads the file when its identity (inode, size,
// modification time in nanoseconds) changed, at most once per `check_interval` (so the cost
// on the request path is one clock read, and a stat now and then). A new file is validated in
// full before it replaces the old one (one atomic pointer swap, under a mutex); an invalid or
// unreadable file leaves the old policy in force. Every reload attempt that saw a change is
// reported through the callback (ok or invalid with the one-line reason), from the thread that
// noticed it, outside the store's locks.
//
// Thread-safe: Current/Reload may be called from any thread. Readers keep the shared_ptr they
// got, so a swap never invalidates a policy in use.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "cvdeploy/security/policy.h"

namespace cvdeploy::security {

class PolicyStore {
 public:
  // ok: the new policy is in force; !ok: `message` says why the file was refused.
  using ReloadCallback = std::function<void(bool ok, const std::string& message)>;

  // Loads `path` now (throws as Policy::LoadFile). An empty path serves Policy::Default() and
  // never reloads.
  PolicyStore(std::string path, std::chrono::milliseconds check_interval,
              ReloadCallback on_reload = {});
  // A fixed policy (tests, no file).
  explicit PolicyStore(Policy policy);

  std::shared_ptr<const Policy> Current();
  // Checks the file now, regardless of the interval (SIGHUP, tests). Returns true when a new
  // policy was applied.
  bool Reload();
  const std::string& path() const { return path_; }

 private:
  struct FileStamp {
    unsigned long long inode = 0, size = 0;
    long long mtime_ns = 0;
    bool operator==(const FileStamp& o) const {
      return inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
    }
  };
  static bool Stamp(const std::string& path, FileStamp* out);
  bool CheckNow();

  const std::string path_;
  const std::chrono::milliseconds interval_{1000};
  ReloadCallback on_reload_;
  std::mutex mutex_;  // guards policy_
  std::shared_ptr<const Policy> policy_;
  std::mutex reload_mutex_;  // one reloader at a time; guards stamp_
  FileStamp stamp_;
  std::atomic<int64_t> next_check_ns_{0};  // steady clock
};

}  // namespace cvdeploy::security
