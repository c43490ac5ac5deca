// SPDX-License-Identifier: Apache-2.0
// A small pool for the authentication work that must not run on an I/O thread: argon2id
// (64 MiB, tens of milliseconds) runs for every login and for the first use of an API key
// (and, by design, for every unknown key, so that key ids cannot be probed by timing). On an
// I/O thread that would let a few bogus requests stall every connection. The queue is
// bounded: when it is full, Post refuses and the caller answers 503.
//
// Thread-safe. Stop() (also run by the destructor; the first call joins) joins the threads; tasks
// still queued are destroyed without running (their Respond copies then answer 503).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cvdeploy::server {

class AuthWorkers {
 public:
  AuthWorkers(int threads, size_t max_queue);
  ~AuthWorkers();
  AuthWorkers(const AuthWorkers&) = delete;
  AuthWorkers& operator=(const AuthWorkers&) = delete;

  // False when the queue is full or the pool stopped (the task is not run).
  bool Post(std::function<void()> task);
  void Stop();

 private:
  void Run();

  const size_t max_queue_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace cvdeploy::server
