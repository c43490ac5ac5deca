// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/login_throttle.h"

#include <algorithm>

namespace cvdeploy::security {

LoginThrottle::LoginThrottle(LoginThrottleOptions options) : options_(options) {}

int LoginThrottle::RetryAfterLocked(Table& table, const std::string& key, Clock::time_point now) {
  auto it = table.find(key);
  if (it == table.end()) return 0;
  if (now - it->second.last_failure > options_.forget_after) {
    table.erase(it);
    return 0;
  }
  if (now >= it->second.blocked_until) return 0;
  const auto wait =
      std::chrono::duration_cast<std::chrono::milliseconds>(it->second.blocked_until - now);
  return static_cast<int>((wait.count() + 999) / 1000);
}

int LoginThrottle::RetryAfter(const std::string& user, const std::string& client,
                              Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  return std::max(RetryAfterLocked(users_, user, now), RetryAfterLocked(addresses_, client, now));
}

void LoginThrottle::MakeRoomLocked(Table& table, Clock::time_point now) {
  if (table.size() < options_.max_entries) return;
  for (auto it = table.begin(); it != table.end();) {
    const bool stale = now - it->second.last_failure > options_.forget_after;
    it = stale ? table.erase(it) : std::next(it);
  }
  if (table.size() < options_.max_entries || table.empty()) return;
  auto oldest = std::min_element(table.begin(), table.end(), [](const auto& a, const auto& b) {
    return a.second.last_failure < b.second.last_failure;
  });
  table.erase(oldest);
}

void LoginThrottle::FailLocked(Table& table, const std::string& key, int lockout_after,
                               Clock::time_point now) {
  auto it = table.find(key);
  if (it != table.end() && now - it->second.last_failure > options_.forget_after) {
    table.erase(it);
    it = table.end();
  }
  if (it == table.end()) {
    if (options_.max_entries == 0) return;
    MakeRoomLocked(table, now);
    it = table.emplace(key, Entry{}).first;
  }
  Entry& e = it->second;
  e.failures = std::min(e.failures + 1, 1 << 20);
  e.last_failure = now;
  std::chrono::seconds delay = options_.lockout;
  if (e.failures < lockout_after) {
    delay = options_.base_delay;
    for (int i = 1; i < e.failures && delay < options_.max_delay; ++i) delay *= 2;
    delay = std::min(delay, options_.max_delay);
  }
  e.blocked_until = now + delay;
}

void LoginThrottle::RecordFailure(const std::string& user, const std::string& client,
                                  Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  FailLocked(users_, user, options_.user_lockout_after, now);
  FailLocked(addresses_, client, options_.address_lockout_after, now);
}

void LoginThrottle::RecordSuccess(const std::string& user) {
  std::lock_guard<std::mutex> lock(mu_);
  users_.erase(user);
}

size_t LoginThrottle::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return users_.size() + addresses_.size();
}

}  // namespace cvdeploy::security
