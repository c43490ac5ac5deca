// SPDX-License-Identifier: Apache-2.0
// Login failure throttling, kept per user name and per client address (two independent
// tables). After each consecutive failure of a key, further attempts are refused for an
// exponentially growing delay (base_delay, 2x, 4x ... capped at max_delay); from the
// lockout_after-th consecutive failure on, each failure locks the key for `lockout`. A
// success resets the user's counter (not the address's: one valid account must not let an
// address go on guessing others). A key's counter is forgotten `forget_after` after its last
// failure. Memory is bounded: each table holds at most max_entries; when full, expired
// entries are dropped, then the entry with the oldest failure.
// Thread-safe. Nothing throws.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace cvdeploy::security {

struct LoginThrottleOptions {
  std::chrono::seconds base_delay{1};     // after the 1st failure; doubles with each one
  std::chrono::seconds max_delay{60};     // cap of the exponential delay
  int user_lockout_after = 5;             // consecutive failures of one user name
  int address_lockout_after = 20;         // of one client address (NAT: many users)
  std::chrono::seconds lockout{15 * 60};  // refusal after each failure at or past the limit
  std::chrono::seconds forget_after{60 * 60};
  size_t max_entries = 10000;  // per table
};

class LoginThrottle {
 public:
  using Clock = std::chrono::system_clock;
  explicit LoginThrottle(LoginThrottleOptions options = {});

  // 0 when an attempt for `user` from `client` may proceed now; otherwise the whole seconds
  // (>= 1, rounded up) until both keys allow it.
  int RetryAfter(const std::string& user, const std::string& client, Clock::time_point now);
  void RecordFailure(const std::string& user, const std::string& client, Clock::time_point now);
  void RecordSuccess(const std::string& user);
  size_t entries() const;  // both tables together (tests)
  const LoginThrottleOptions& options() const { return options_; }

 private:
  struct Entry {
    int failures = 0;
    Clock::time_point last_failure, blocked_until;
  };
  using Table = std::unordered_map<std::string, Entry>;
  int RetryAfterLocked(Table& table, const std::string& key, Clock::time_point now);
  void FailLocked(Table& table, const std::string& key, int lockout_after, Clock::time_point now);
  void MakeRoomLocked(Table& table, Clock::time_point now);

  const LoginThrottleOptions options_;
  mutable std::mutex mu_;
  Table users_, addresses_;
};

}  // namespace cvdeploy::security
