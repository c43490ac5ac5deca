// SPDX-License-Identifier: Apache-2.0
// Option structs of the public API: how a model is read (ModelOptions), how an inference
// session is set up (SessionOptions) and how one prediction is decoded (PredictOptions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cvdeploy/types.h"

namespace cvdeploy {

// Default of ModelOptions::max_model_bytes: 2 GiB, the largest protobuf (ONNX) message.
inline constexpr uint64_t kDefaultMaxModelBytes = uint64_t{1} << 31;

// How a model is read and described (Model::FromFile / Model::FromMemory).
struct ModelOptions {
  // User overrides of what the model's metadata says (or what shapes imply).
  std::optional<Task> task;
  std::optional<std::vector<std::string>> names;
  std::optional<int> imgsz;  // square size; only for models with dynamic spatial axes
  // Largest model file read, in bytes; a larger file is refused before it is read.
  uint64_t max_model_bytes = kDefaultMaxModelBytes;
  // The bytes are protected plaintext (a decrypted model package): the Model locks them in
  // memory (best effort, LockMemory) and wipes them when the last copy of it is destroyed.
  bool sensitive = false;
};

// Whether the engine's threads spin (busy-wait) for work instead of sleeping: ONNX Runtime's
// session.intra_op.allow_spinning / session.inter_op.allow_spinning, and
// session.force_spinning_stop for kOff. Spinning cuts the hand-over latency between operators
// when one engine call owns every core; it steals cores from anything else that runs beside
// it (decode, letterbox, other engine calls). kAuto is resolved by the front end that knows
// the mode (ResolveSpin in cvdeploy/system.h); the library itself treats kAuto as kOff.
enum class Spin { kAuto, kOn, kOff };

// ONNX Runtime's graph optimization level (GraphOptimizationLevel): kAll (the default) adds the
// layout optimizations (NCHWc convolutions on x86) to kExtended's fusions (Conv+activation,
// QDQ groups, attention), which add to kBasic's constant folding and redundant-node removal;
// kDisabled runs the graph as written. Measured per model and mode in docs/performance.md
// ("Graph optimization levels"); the fastest on the sample models is kAll.
enum class GraphOptimization { kAll, kExtended, kBasic, kDisabled };

// How the engine runs a model. It extends ModelOptions so that the one-call convenience
// Predictor::Load(path, options) can read the model and set up the session from one struct.
struct SessionOptions : ModelOptions {
  // "cpu" (default), "cuda[:N]", "tensorrt[:N]". Unavailable providers raise kInvalidArgument.
  std::string device = "cpu";
  int intra_op_threads = 0;  // 0: one per physical core
  Spin spin = Spin::kAuto;   // engine thread spinning (kAuto: off unless a front end decides)
  GraphOptimization graph_optimization = GraphOptimization::kAll;
  // Non-empty: ONNX Runtime writes its per-operator profile to PREFIX_<date>.json; the
  // file is complete after Predictor::EndProfiling.
  std::string profile_prefix;
  // false: the Predictor keeps the model's description but not its bytes once the engine
  // session exists (model().bytes() is then empty), so that a protected model's plaintext is
  // wiped as soon as the caller drops its Model.
  bool keep_model_bytes = true;
};

struct PredictOptions {
  float conf = 0.25f;  // minimum confidence
  float iou = 0.7f;    // NMS IoU threshold
  int max_det = 300;
  std::vector<int> classes;   // keep only these class ids (empty: all)
  bool agnostic = false;      // class-agnostic NMS
  bool multi_label = false;   // one candidate per (box, class) above conf, as in validation
  bool all_contours = false;  // segment: Detection::polygons holds every contour, not the largest
  bool masks = true;          // segment: compute masks (polygons need them)
  // segment: the mask rule. false (Ultralytics' default predict, process_mask): cropped to the
  // box on the prototype grid (160x160 at 640), then upsampled to the input and scaled to the
  // image. true (Ultralytics' retina_masks): upsampled first, cropped at full resolution.
  bool retina_masks = false;
  // segment: keep a detection whose mask has no foreground pixel. Ultralytics' predict drops
  // them (false, the default); its val keeps them, and so does ValidateModel.
  bool keep_empty_masks = false;
  // Square input size for this call; 0: the model's. Only a model with dynamic spatial axes
  // accepts another size (a multiple of its stride); a fixed-size model accepts its own.
  int imgsz = 0;
  // Models with dynamic spatial axes: letterbox each image to the smallest stride multiple
  // that holds it at scale imgsz / long side (Ultralytics' auto letterbox, "rect"), e.g.
  // 810x1080 -> 480x640, instead of the full imgsz square. Fixed-size models ignore it.
  bool rect = true;
};

}  // namespace cvdeploy
