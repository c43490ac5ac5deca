// SPDX-License-Identifier: Apache-2.0
// The token bucket: burst, refill, retry-after, independent keys, parameter changes, bounded
// memory with lossless eviction of idle buckets, and concurrent use. Time is passed in, so no
// test depends on the clock.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "cvdeploy/security/rate_limiter.h"

namespace cvdeploy::security {
namespace {

using Clock = RateLimiter::Clock;
using std::chrono::milliseconds;

TEST(RateLimiter, BurstThenRefusalWithRetryAfter) {
  RateLimiter limiter;
  const auto t0 = Clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Take("k", 2, 3, t0).allowed) << i;
  const auto refused = limiter.Take("k", 2, 3, t0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_DOUBLE_EQ(refused.retry_after_s, 0.5);  // one token at 2/s
  // 250 ms later: half a token, still refused, 0.25 s to go.
  const auto later = limiter.Take("k", 2, 3, t0 + milliseconds(250));
  EXPECT_FALSE(later.allowed);
  EXPECT_NEAR(later.retry_after_s, 0.25, 1e-9);
  EXPECT_TRUE(limiter.Take("k", 2, 3, t0 + milliseconds(500)).allowed);
  EXPECT_FALSE(limiter.Take("k", 2, 3, t0 + milliseconds(500)).allowed);
}

TEST(RateLimiter, RefillIsCappedAtBurst) {
  RateLimiter limiter;
  const auto t0 = Clock::time_point{} + std::chrono::hours(1);
  EXPECT_TRUE(limiter.Take("k", 10, 2, t0).allowed);
  const auto t1 = t0 + std::chrono::hours(1);
  EXPECT_TRUE(limiter.Take("k", 10, 2, t1).allowed);
  EXPECT_TRUE(limiter.Take("k", 10, 2, t1).allowed);
  EXPECT_FALSE(limiter.Take("k", 10, 2, t1).allowed);
}

TEST(RateLimiter, KeysAreIndependent) {
  RateLimiter limiter;
  const auto t0 = Clock::time_point{} + std::chrono::hours(1);
  EXPECT_TRUE(limiter.Take("a", 1, 1, t0).allowed);
  EXPECT_FALSE(limiter.Take("a", 1, 1, t0).allowed);
  EXPECT_TRUE(limiter.Take("b", 1, 1, t0).allowed);
}

TEST(RateLimiter, ClockGoingBackwardsGrantsNothingExtra) {
  RateLimiter limiter;
  const auto t0 = Clock::time_point{} + std::chrono::hours(1);
  EXPECT_TRUE(limiter.Take("k", 1, 1, t0).allowed);
  EXPECT_FALSE(limiter.Take("k", 1, 1, t0 - std::chrono::seconds(30)).allowed);
}

TEST(RateLimiter, MemoryIsBounded) {
  RateLimiter limiter(16 * 4);  // 4 per shard
  const auto t0 = Clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 1000; ++i) limiter.Take(std::to_string(i) + ".key", 1, 5, t0);
  EXPECT_LE(limiter.size(), 16u * 4u);
  EXPECT_GE(limiter.size(), 16u);
}

TEST(RateLimiter, RefilledBucketsAreEvictedBeforeAnExhaustedOne) {
  RateLimiter limiter(16 * 2);  // 2 per shard
  const auto t0 = Clock::time_point{} + std::chrono::hours(1);
  // The exhausted key is the least recently used one: plain LRU would drop it and forgive
  // its debt.
  EXPECT_TRUE(limiter.Take("busy", 1e-6, 1, t0).allowed);
  EXPECT_FALSE(limiter.Take("busy", 1e-6, 1, t0).allowed);
  // Each new key is full again (1 token/s, burst 1) by the time the next one arrives.
  for (int i = 0; i < 300; ++i) {
    limiter.Take(std::to_string(i) + ".k", 1, 1, t0 + std::chrono::seconds(2 * (i + 1)));
  }
  EXPECT_FALSE(limiter.Take("busy", 1e-6, 1, t0 + std::chrono::seconds(700)).allowed);
}

TEST(RateLimiter, ConcurrentTakesGrantExactlyTheBurst) {
  RateLimiter limiter;
  const auto t0 = Clock::time_point{} + std::chrono::hours(1);
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (limiter.Take("shared", 1e-6, 50, t0).allowed) ++granted;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(granted.load(), 50);
}

}  // namespace
}  // namespace cvdeploy::security
