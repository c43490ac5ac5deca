// SPDX-License-Identifier: Apache-2.0
// The main entry point: load a YOLO ONNX model once, run it on images.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cvdeploy/model.h"
#include "cvdeploy/types.h"

namespace cvdeploy {

// Default of SessionOptions::max_model_bytes: 2 GiB, the largest protobuf (ONNX) message.
inline constexpr uint64_t kDefaultMaxModelBytes = uint64_t{1} << 31;

struct SessionOptions {
  // "cpu" (default), "cuda[:N]", "tensorrt[:N]". Unavailable providers raise kInvalidArgument.
  std::string device = "cpu";
  int intra_op_threads = 0;  // 0: one per physical core
  // User overrides of what the model's metadata says (or what shapes imply).
  std::optional<Task> task;
  std::optional<std::vector<std::string>> names;
  std::optional<int> imgsz;  // square size; only for models with dynamic spatial axes
  // Non-empty: ONNX Runtime writes its per-operator profile to PREFIX_<date>.json; the
  // file is complete after Predictor::EndProfiling.
  std::string profile_prefix;
  // Largest model file Load reads, in bytes; a larger file is refused before it is read.
  uint64_t max_model_bytes = kDefaultMaxModelBytes;
};

struct PredictOptions {
  float conf = 0.25f;  // minimum confidence
  float iou = 0.7f;    // NMS IoU threshold
  int max_det = 300;
  std::vector<int> classes;   // keep only these class ids (empty: all)
  bool agnostic = false;      // class-agnostic NMS
  bool multi_label = false;   // one candidate per (box, class) above conf, as in validation
  bool all_contours = false;  // segment: keep every contour, not only the largest
  bool masks = true;          // segment: compute masks (polygons need them)
  // Square input size for this call; 0: the model's. Only a model with dynamic spatial axes
  // accepts another size (a multiple of its stride); a fixed-size model accepts its own.
  int imgsz = 0;
};

// One engine output as float32, row-major (Predictor::Infer).
struct OutputTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// Benchmark support: the engine alone ("bare engine") on an input tensor letterboxed once
// up front; each Run is one session run and nothing else (no decode, letterbox,
// postprocess or result objects). Not thread-safe; one probe per thread.
class EngineProbe {
 public:
  virtual ~EngineProbe() = default;
  // One session run; returns its wall time in milliseconds.
  virtual double Run() = 0;
};

// A loaded model. Thread safety: Predict/PredictBatch are const and may be called from
// any number of threads at once on one Predictor; per-call scratch memory is drawn from
// an internal pool, so steady-state calls do not allocate input tensors.
class Predictor {
 public:
  // Loads from a file. Throws Error(kBadInput) naming the path for a missing, unreadable,
  // non-regular (directory, FIFO, device), invalid or non-YOLO model, and a LimitError
  // (setting "max_model_bytes") before reading a file larger than options.max_model_bytes;
  // Error(kInvalidArgument) for an unavailable device.
  static std::unique_ptr<Predictor> Load(const std::string& path,
                                         const SessionOptions& options = {});
  // Loads from memory (e.g. a decrypted package); `name` is used in messages and info.
  static std::unique_ptr<Predictor> LoadFromMemory(const std::vector<uint8_t>& bytes,
                                                   const std::string& name,
                                                   const SessionOptions& options = {});
  ~Predictor();
  Predictor(const Predictor&) = delete;
  Predictor& operator=(const Predictor&) = delete;

  const ModelInfo& info() const;
  const ModelMeta& meta() const { return info().meta; }
  // Execution provider actually in use ("CPUExecutionProvider", ...).
  const std::string& provider() const;
  // Engine version ("1.30.0") and the intra-op threads each session run uses.
  std::string engine_version() const;
  int threads() const;

  // `bgr` is an 8-bit BGR (3 channel) or gray image as OpenCV decodes it.
  Result Predict(const cv::Mat& bgr, const PredictOptions& options = {}) const;
  // Runs images together when the model's batch axis allows, else one by one.
  std::vector<Result> PredictBatch(const std::vector<cv::Mat>& images,
                                   const PredictOptions& options = {}) const;
  // Same with options per image (a server's batch of independent requests); every image
  // must use the same imgsz.
  std::vector<Result> PredictBatch(const std::vector<cv::Mat>& images,
                                   const std::vector<PredictOptions>& options) const;

  // The engine alone on an already preprocessed NCHW float32 input (KServe v2 tensors):
  // no letterbox, no postprocessing. The shape must be [B, 3, H, W] with H and W the
  // model's (any for dynamic spatial axes) and B within a fixed batch axis. Returns every
  // model output, named as in the model. Throws Error(kInvalidArgument) for a shape the
  // model cannot take, Error(kRuntime) when the engine fails. Thread-safe.
  std::vector<OutputTensor> Infer(const float* input, const std::vector<int64_t>& shape) const;

  // Ends profiling (SessionOptions::profile_prefix) and returns the profile's path.
  std::string EndProfiling() const;

  // A bare-engine probe whose input holds `images` (the batch filled as PredictBatch would).
  std::unique_ptr<EngineProbe> NewEngineProbe(const std::vector<cv::Mat>& images) const;

  struct Impl;

 private:
  explicit Predictor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Maps a result computed on a reduced-resolution decode (DecodeImageForModel) back to the
// `original` image size: boxes, rotated boxes, keypoints, polygons and masks.
void RescaleResult(Result& result, cv::Size original);

// Reads a model's description without creating an inference session. Model files larger
// than `max_model_bytes` are refused as by Predictor::Load.
ModelInfo ReadModelInfo(const std::string& path, uint64_t max_model_bytes = kDefaultMaxModelBytes);

}  // namespace cvdeploy
