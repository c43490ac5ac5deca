// SPDX-License-Identifier: Apache-2.0
// Per-identity rate limiting: one token bucket per key (e.g. "api_key:ci-bot"), refilled at
// `rate` tokens per second up to `burst`; each request takes one token.
//
// Memory is bounded: at most `max_buckets` buckets are kept. When a shard is full, buckets
// that have refilled completely (idle long enough that forgetting them changes nothing: a
// new bucket starts full) are dropped first; if every bucket is active, the least recently
// used one is dropped (its key starts again with a full bucket, the only approximation).
// Thread-safe: keys are spread over shards, each with its own mutex. Times are steady-clock.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace cvdeploy::security {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  struct Result {
    bool allowed = true;
    double retry_after_s = 0;  // when refused: seconds until a token is available (> 0)
  };

  explicit RateLimiter(size_t max_buckets = 65536);

  // Takes one token from `key`'s bucket. `rate` > 0 tokens/s, `burst` >= 1 (smaller values
  // are raised to 1). A bucket's parameters follow the latest call (a policy reload applies
  // at once).
  Result Take(std::string_view key, double rate, double burst, Clock::time_point now);
  size_t size() const;  // buckets held, all shards

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last;
    double rate = 0, burst = 0;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;
  };
  static constexpr size_t kShards = 16;
  // Requires shard.mutex held: makes room for one more bucket.
  void Evict(Shard& shard, Clock::time_point now);

  const size_t max_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace cvdeploy::security
