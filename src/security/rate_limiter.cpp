// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/rate_limiter.h"

#include <algorithm>
#include <functional>

namespace cvdeploy::security {
namespace {

double Seconds(RateLimiter::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The bucket's level at `now` (refilled since its last use, capped at burst).
double Level(double tokens, double rate, double burst, RateLimiter::Clock::duration elapsed) {
  const double refilled = tokens + rate * std::max(0.0, Seconds(elapsed));
  return std::min(burst, refilled);
}

}  // namespace

RateLimiter::RateLimiter(size_t max_buckets)
    : max_per_shard_(std::max<size_t>(1, max_buckets / kShards)) {}

RateLimiter::Result RateLimiter::Take(std::string_view key, double rate, double burst,
                                      Clock::time_point now) {
  rate = std::max(rate, 1e-9);
  burst = std::max(burst, 1.0);
  Shard& shard = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard<std::mutex> lock(shard.mutex);
  auto it = shard.buckets.find(std::string(key));
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= max_per_shard_) Evict(shard, now);
    it = shard.buckets.emplace(std::string(key), Bucket{burst, now, rate, burst}).first;
  }
  Bucket& b = it->second;
  b.tokens = Level(b.tokens, rate, burst, now - b.last);
  b.rate = rate;
  b.burst = burst;
  if (now > b.last) b.last = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return {true, 0};
  }
  return {false, (1.0 - b.tokens) / rate};
}

void RateLimiter::Evict(Shard& shard, Clock::time_point now) {
  auto oldest = shard.buckets.end();
  for (auto it = shard.buckets.begin(); it != shard.buckets.end();) {
    const Bucket& b = it->second;
    if (Level(b.tokens, b.rate, b.burst, now - b.last) >= b.burst) {
      it = shard.buckets.erase(it);
      continue;
    }
    if (oldest == shard.buckets.end() || b.last < oldest->second.last) oldest = it;
    ++it;
  }
  if (shard.buckets.size() >= max_per_shard_ && oldest != shard.buckets.end()) {
    shard.buckets.erase(oldest);
  }
}

size_t RateLimiter::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mutex);
    n += s.buckets.size();
  }
  return n;
}

}  // namespace cvdeploy::security
