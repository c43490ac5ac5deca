// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/policy_store.h"

#include <sys/stat.h>

#include "cvdeploy/error.h"

namespace cvdeploy::security {
namespace {

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

PolicyStore::PolicyStore(std::string path, std::chrono::milliseconds check_interval,
                         ReloadCallback on_reload)
    : path_(std::move(path)), interval_(check_interval), on_reload_(std::move(on_reload)) {
  if (path_.empty()) {
    policy_ = std::make_shared<const Policy>(Policy::Default());
    return;
  }
  Stamp(path_, &stamp_);
  policy_ = std::make_shared<const Policy>(Policy::LoadFile(path_));
  next_check_ns_ = SteadyNowNs() + std::chrono::nanoseconds(interval_).count();
}

PolicyStore::PolicyStore(Policy policy)
    : policy_(std::make_shared<const Policy>(std::move(policy))) {}

bool PolicyStore::Stamp(const std::string& path, FileStamp* out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  out->inode = st.st_ino;
  out->size = static_cast<unsigned long long>(st.st_size);
  out->mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  return true;
}

std::shared_ptr<const Policy> PolicyStore::Current() {
  if (!path_.empty()) {
    const int64_t now = SteadyNowNs();
    int64_t next = next_check_ns_.load(std::memory_order_relaxed);
    // One thread wins the interval; the others read the current policy without waiting.
    if (now >= next && next_check_ns_.compare_exchange_strong(
                           next, now + std::chrono::nanoseconds(interval_).count())) {
      CheckNow();
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return policy_;
}

bool PolicyStore::Reload() {
  if (path_.empty()) return false;
  return CheckNow();
}

bool PolicyStore::CheckNow() {
  bool applied = false;
  std::string message;
  bool report = false;
  {
    std::lock_guard<std::mutex> reload_lock(reload_mutex_);
    FileStamp now;
    // A file that vanished (mid-rename, or deleted) is reported once as invalid below, by
    // trying to load it, when its stamp differs from the last one.
    if (!Stamp(path_, &now)) now = FileStamp{};
    if (now == stamp_) return false;
    stamp_ = now;
    report = true;
    try {
      auto fresh = std::make_shared<const Policy>(Policy::LoadFile(path_));
      {
        std::lock_guard<std::mutex> lock(mutex_);
        policy_ = std::move(fresh);
      }
      applied = true;
      message = path_ + ": policy reloaded";
    } catch (const std::exception& e) {
      message = std::string(e.what()) + "; keeping the previous policy";
    }
  }
  if (report && on_reload_) on_reload_(applied, message);
  return applied;
}

}  // namespace cvdeploy::security
