// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/pipeline.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

namespace cvdeploy::pipeline {
namespace {

using Clock = std::chrono::steady_clock;

// Shared state of one run. Invariant: every claimed index below `next_emit` has been
// delivered; `done` holds finished items not yet delivered; in flight = claimed - emitted.
struct State {
  std::mutex mutex;
  std::condition_variable space;  // workers wait for room in the window
  std::condition_variable ready;  // the emitter waits for the next item
  size_t next_claim = 0, next_emit = 0, window = 1;
  bool exhausted = false, stop = false;
  int running_workers = 0;
  std::map<size_t, Item> done;
  std::exception_ptr failure;
  size_t max_in_flight = 0;
};

void Work(const Predictor& predictor, Source& source, const PredictOptions& predict,
          const Options& options, State& st) {
  std::vector<std::pair<size_t, Loader>> claimed;
  std::vector<Item> items;
  std::vector<cv::Mat> images;
  std::vector<size_t> slots;
  while (true) {
    claimed.clear();
    {
      std::unique_lock<std::mutex> lock(st.mutex);
      st.space.wait(lock, [&] {
        return st.stop || st.exhausted || st.next_claim < st.next_emit + st.window;
      });
      try {
        while (!st.stop && !st.exhausted && claimed.size() < static_cast<size_t>(options.batch) &&
               st.next_claim < st.next_emit + st.window) {
          std::optional<Loader> loader = source.Claim();
          if (!loader) {
            st.exhausted = true;
            break;
          }
          claimed.emplace_back(st.next_claim++, std::move(*loader));
        }
      } catch (...) {
        if (!st.failure) st.failure = std::current_exception();
        st.stop = true;
      }
      st.max_in_flight = std::max(st.max_in_flight, st.next_claim - st.next_emit);
      if (claimed.empty() && (st.stop || st.exhausted)) break;
    }
    items.assign(claimed.size(), Item{});
    images.clear();
    slots.clear();
    for (size_t i = 0; i < claimed.size(); ++i) {
      items[i].index = claimed[i].first;
      try {
        items[i].frame = claimed[i].second();
        if (items[i].frame.end) continue;
        images.push_back(items[i].frame.image);
        slots.push_back(i);
      } catch (const Error& e) {
        // An input the run cannot use (corrupt, over a size limit) is that item's error.
        if (e.code() != ErrorCode::kBadInput && e.code() != ErrorCode::kTooLarge) throw;
        items[i].error = e;
      }
    }
    try {
      if (images.size() == 1) {
        items[slots[0]].result = predictor.Predict(images[0], predict);
      } else if (!images.empty()) {
        std::vector<Result> results = predictor.PredictBatch(images, predict);
        for (size_t k = 0; k < results.size(); ++k) items[slots[k]].result = std::move(results[k]);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(st.mutex);
      if (!st.failure) st.failure = std::current_exception();
      st.stop = true;
      st.ready.notify_all();
      st.space.notify_all();
      break;
    }
    for (size_t k : slots) {
      Item& item = items[k];
      RescaleResult(item.result, item.frame.original);
      item.result.speed_ms.decode = item.frame.decode_ms;
    }
    std::lock_guard<std::mutex> lock(st.mutex);
    for (Item& item : items) st.done.emplace(item.index, std::move(item));
    st.ready.notify_all();
  }
}

}  // namespace

Stats Run(const Predictor& predictor, Source& source, const PredictOptions& predict,
          const Options& options, const std::function<void(Item&)>& sink) {
  if (options.workers < 1) {
    throw InvalidArgument("workers must be >= 1, got " + std::to_string(options.workers));
  }
  if (options.batch < 1) {
    throw InvalidArgument("batch must be >= 1, got " + std::to_string(options.batch));
  }
  const int model_batch = predictor.meta().batch;
  if (options.batch > 1 && model_batch > 0 && options.batch > model_batch) {
    throw InvalidArgument("batch " + std::to_string(options.batch) +
                              " exceeds the model's fixed batch " + std::to_string(model_batch),
                          "batch");
  }
  const auto start = Clock::now();
  // Several workers are the parallelism: OpenCV's own pool (used by resize) would add
  // threads beyond the split, so it runs single-threaded for the duration of the run.
  struct RestoreOpenCvThreads {
    int saved;
    ~RestoreOpenCvThreads() { cv::setNumThreads(saved); }
  } restore{cv::getNumThreads()};
  if (options.workers > 1) cv::setNumThreads(1);
  State st;
  st.window = options.queue > 0 ? static_cast<size_t>(options.queue)
                                : static_cast<size_t>(2 * options.workers * options.batch);
  st.window = std::max(st.window, static_cast<size_t>(options.batch));
  st.running_workers = options.workers;
  std::vector<std::thread> workers;
  for (int w = 0; w < options.workers; ++w) {
    workers.emplace_back([&] {
      try {
        Work(predictor, source, predict, options, st);
      } catch (...) {
        std::lock_guard<std::mutex> lock(st.mutex);
        if (!st.failure) st.failure = std::current_exception();
        st.stop = true;
      }
      std::lock_guard<std::mutex> lock(st.mutex);
      --st.running_workers;
      st.ready.notify_all();
      st.space.notify_all();
    });
  }

  Stats stats;
  try {
    while (true) {
      Item item;
      {
        std::unique_lock<std::mutex> lock(st.mutex);
        st.ready.wait(lock, [&] {
          return st.stop || st.done.count(st.next_emit) || st.running_workers == 0;
        });
        if (st.stop) break;
        auto it = st.done.find(st.next_emit);
        if (it == st.done.end()) break;  // every worker finished and nothing is pending
        item = std::move(it->second);
        st.done.erase(it);
      }
      if (!item.frame.end) {
        ++stats.items;
        if (item.error) ++stats.errors;
        sink(item);
      }
      std::lock_guard<std::mutex> lock(st.mutex);
      ++st.next_emit;
      st.space.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(st.mutex);
    if (!st.failure) st.failure = std::current_exception();
    st.stop = true;
    st.space.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(st.mutex);
    st.stop = true;
    st.space.notify_all();
  }
  source.Cancel();  // a worker waiting inside a loader (a live stream) returns
  for (auto& t : workers) t.join();
  if (st.failure) std::rethrow_exception(st.failure);
  stats.max_in_flight = st.max_in_flight;
  stats.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return stats;
}

}  // namespace cvdeploy::pipeline
