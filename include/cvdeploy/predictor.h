// SPDX-License-Identifier: Apache-2.0
// The main entry point: create a predictor for a Model once, run it on images.
//
// A prediction is three public stages, which Predict/PredictBatch compose:
//   Prepare(images)  letterbox into the engine's input tensor           -> Batch
//   Run(batch)       one engine call (IO-bound buffers of the batch)     -> output views
//   Decode(outputs, batch, options)  per-task decoding, NMS, mapping back to the images
// Everything that feeds the engine (the CLI, the server, the model tools' calibration,
// accuracy gate, pruning and comparison, the benchmark's bare-engine timing) goes through
// Prepare, so there is exactly one preprocessing implementation.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cvdeploy/model.h"
#include "cvdeploy/options.h"
#include "cvdeploy/tensor.h"
#include "cvdeploy/types.h"

namespace cvdeploy {

class Predictor;

// An engine input ready to run: images letterboxed into one NCHW float32 tensor (or a
// caller's tensor copied in), with the geometry Decode needs, and the engine outputs of the
// last Run. It holds scratch memory borrowed from its predictor's pool (returned when the
// Batch is destroyed), so steady-state predictions do not allocate. Move-only; must not
// outlive the Predictor that prepared it; one thread at a time.
class Batch {
 public:
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;
  ~Batch();

  // Images (or tensor rows) in the batch; the engine input may have more rows (the zero
  // padding of a fixed batch axis), whose outputs are never decoded.
  size_t size() const;
  // The engine input, [slots, 3, H, W] float32. Valid while the Batch lives.
  TensorView input() const;
  // Per image: how it was letterboxed (empty for a batch made from a tensor).
  const std::vector<Letterbox>& letterboxes() const;
  // Wall time of Prepare and of the last Run, in milliseconds.
  double prepare_ms() const;
  double run_ms() const;

 private:
  friend class Predictor;
  struct State;
  explicit Batch(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// A model ready to run. Thread safety: every member is const and may be called from any
// number of threads at once on one Predictor; each call (or each Batch) borrows its own
// scratch memory from an internal pool.
class Predictor {
 public:
  // Sets up an inference session for `model`. Throws Error(kInvalidArgument) for an
  // unavailable device or negative thread count, Error(kBadInput) when the engine rejects
  // the model.
  static std::unique_ptr<Predictor> Create(const Model& model, const SessionOptions& options = {});
  // Conveniences: Create(Model::FromFile(path, options), options) and
  // Create(Model::FromMemory(bytes, name, options), options).
  static std::unique_ptr<Predictor> Load(const std::string& path,
                                         const SessionOptions& options = {});
  static std::unique_ptr<Predictor> LoadFromMemory(const std::vector<uint8_t>& bytes,
                                                   const std::string& name,
                                                   const SessionOptions& options = {});
  ~Predictor();
  Predictor(const Predictor&) = delete;
  Predictor& operator=(const Predictor&) = delete;

  const Model& model() const;
  const ModelInfo& info() const { return model().info(); }
  const ModelMeta& meta() const { return info().meta; }
  // Execution provider actually in use ("CPUExecutionProvider", ...).
  const std::string& provider() const;
  // Engine version ("1.30.0") and the intra-op threads each session run uses.
  std::string engine_version() const;
  int threads() const;
  // Images one engine call takes at most: the fixed batch axis, or 0 when it is dynamic.
  int max_batch() const;

  // ---- Stages ----
  // Letterboxes `images` (8-bit BGR, gray or BGRA, as OpenCV decodes them) into one engine
  // input at options.imgsz (0: the model's size; rectangular "rect" letterbox for a single
  // image on a model with dynamic spatial axes). At most max_batch() images when the batch
  // axis is fixed. Throws Error(kInvalidArgument) for an empty list, too many images, bad
  // options or an image that is not 8-bit with 1, 3 or 4 channels.
  Batch Prepare(const std::vector<cv::Mat>& images, const PredictOptions& options = {}) const;
  // A batch from already preprocessed NCHW float32 tensors (KServe v2), concatenated along
  // the batch axis: the only copy between the caller's bytes and the engine. Each must be
  // [B, 3, H, W] with H and W the model's (any, but equal, for dynamic spatial axes); the
  // total B must fit a fixed batch axis (a smaller total is zero-padded). Throws
  // Error(kInvalidArgument) for any other shape or type.
  Batch PrepareTensors(const std::vector<TensorView>& inputs) const;
  // One engine call on the batch's input. Returns every model output, named as in the
  // model, as float32 views into the batch's buffers: valid until the next Run on this
  // batch or its destruction. Throws Error(kRuntime) when the engine fails.
  std::vector<NamedTensorView> Run(Batch& batch) const;
  // Decodes rows [0, batch.size()) of `outputs` (from Run; they may come from another
  // predictor's run on the same input, as `compare` does) with the geometry of `batch`.
  std::vector<Result> Decode(const std::vector<NamedTensorView>& outputs, const Batch& batch,
                             const PredictOptions& options = {}) const;
  // Same with options per image (a server's batch of independent requests).
  std::vector<Result> Decode(const std::vector<NamedTensorView>& outputs, const Batch& batch,
                             const std::vector<PredictOptions>& options) const;

  // ---- Compositions ----
  Result Predict(const cv::Mat& bgr, const PredictOptions& options = {}) const;
  // Runs images together when the model's batch axis allows, else in chunks of its fixed
  // batch.
  std::vector<Result> PredictBatch(const std::vector<cv::Mat>& images,
                                   const PredictOptions& options = {}) const;
  // Same with options per image; every image must use the same imgsz.
  std::vector<Result> PredictBatch(const std::vector<cv::Mat>& images,
                                   const std::vector<PredictOptions>& options) const;
  // The engine alone on one preprocessed tensor (PrepareTensors + Run), outputs copied into
  // owning tensors.
  struct Output {
    std::string name;
    Tensor tensor;
  };
  std::vector<Output> Infer(const TensorView& input) const;

  // Ends profiling (SessionOptions::profile_prefix) and returns the profile's path.
  std::string EndProfiling() const;

 private:
  struct Impl;
  explicit Predictor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Maps a result computed on a reduced-resolution decode (DecodeImageForModel) back to the
// `original` image size: boxes, rotated boxes, keypoints, polygons and masks.
void RescaleResult(Result& result, cv::Size original);

// Reads a model's description without creating an inference session
// (Model::FromFile(path).info()).
ModelInfo ReadModelInfo(const std::string& path, uint64_t max_model_bytes = kDefaultMaxModelBytes);

}  // namespace cvdeploy
