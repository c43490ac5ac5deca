// SPDX-License-Identifier: Apache-2.0
// The many-images path: decoding and preprocessing of the next inputs overlap the inference
// of the current ones, with a bounded number of inputs in flight and results delivered in
// input order as soon as they are ready (streamed, never accumulated). Used by `cvdeploy
// predict` and `bench`; implemented in src/pipeline.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "cvdeploy/error.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"

namespace cvdeploy::pipeline {

// One decoded input.
struct Frame {
  std::string name;   // source path
  long frame = -1;    // video frame index; -1 for a still image
  cv::Mat image;      // decoded BGR, possibly at reduced resolution
  cv::Size original;  // full-resolution size (results are mapped back to it)
  double decode_ms = 0;
  // Live sources (cvdeploy/live_source.h): the stream's index and when the frame was read.
  int stream = -1;
  std::chrono::steady_clock::time_point captured{};
  // Set by a loader that found no input (its live sources ended meanwhile): the slot is
  // dropped by Run, never delivered to the sink nor counted.
  bool end = false;
};

// Produces a Frame; runs on a worker thread. Throws Error(kBadInput) for a bad input.
using Loader = std::function<Frame()>;

// Hands out inputs in order. Claim runs under the pipeline's lock, so it must be quick or
// inherently sequential (reading the next video frame); the expensive part (decoding a
// file) belongs in the returned loader. nullopt: no more inputs.
class Source {
 public:
  virtual ~Source() = default;
  virtual std::optional<Loader> Claim() = 0;
  // Called once by Run when it stops (the end, a failure, an exception from the sink), before
  // it joins its workers: a source whose loaders wait (live streams) makes them return now.
  // Thread-safe; may run while loaders run.
  virtual void Cancel() {}
};

// Images and videos in the given order. Image files are decoded by the workers (reduced
// JPEG decoding for a model input of `model_input` when `reduced_decode`); videos are read
// frame by frame, every `vid_stride`'th frame. A file that cannot be read yields one item
// carrying the error; so does an image whose header says it has more than `max_pixels`
// pixels (0: no limit), checked before decoding.
std::unique_ptr<Source> MediaSource(std::vector<std::string> paths, cv::Size model_input,
                                    bool reduced_decode, int vid_stride = 1,
                                    uint64_t max_pixels = kDefaultMaxPixels);

// How many workers for how many engine threads each: PlanThreads (cvdeploy/system.h).
struct Options {
  int workers = 1;  // concurrent engine calls, each with predictor.threads() engine threads
  int batch = 1;    // images per engine call (> 1 needs a dynamic or larger batch axis)
  int queue = 0;    // inputs in flight (claimed, not yet delivered); 0: 2 x workers x batch
};

// One delivered input, in input order.
struct Item {
  size_t index = 0;
  Frame frame;
  Result result;               // coordinates of the original image; speed_ms.decode filled
  std::optional<Error> error;  // the input's failure (kBadInput, kTooLarge); result is then empty
};

struct Stats {
  size_t items = 0, errors = 0;
  double wall_ms = 0;
  size_t max_in_flight = 0;  // the most inputs held at once (bounded by Options::queue)
};

// Runs every input of `source` through `predictor` and calls `sink` for each item in input
// order, on the calling thread. A failing input becomes an item with `error`; an engine
// failure (kRuntime) or an exception from `sink` stops the run and is rethrown after the
// workers have stopped.
Stats Run(const Predictor& predictor, Source& source, const PredictOptions& predict,
          const Options& options, const std::function<void(Item&)>& sink);

}  // namespace cvdeploy::pipeline
