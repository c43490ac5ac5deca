// SPDX-License-Identifier: Apache-2.0
// A pool of per-call scratch objects: a call borrows one, uses it alone, and returns it,
// so concurrent calls never share buffers and steady-state calls reuse memory.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace cvdeploy::core {

template <typename T>
class Pool {
 public:
  explicit Pool(std::function<std::unique_ptr<T>()> factory) : factory_(std::move(factory)) {}

  // RAII loan; returns the object to the pool on destruction.
  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<T> item) : pool_(pool), item_(std::move(item)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (item_) pool_->Return(std::move(item_));
    }
    T* operator->() { return item_.get(); }
    T& operator*() { return *item_; }

   private:
    Pool* pool_;
    std::unique_ptr<T> item_;
  };

  Lease Acquire() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!free_.empty()) {
        auto item = std::move(free_.back());
        free_.pop_back();
        return Lease(this, std::move(item));
      }
    }
    return Lease(this, factory_());
  }

 private:
  void Return(std::unique_ptr<T> item) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(std::move(item));
  }

  std::function<std::unique_ptr<T>()> factory_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<T>> free_;
};

}  // namespace cvdeploy::core
