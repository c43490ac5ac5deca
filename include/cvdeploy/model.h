// SPDX-License-Identifier: Apache-2.0
// What a model file says about itself: graph inputs/outputs and Ultralytics metadata.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <memory>

#include "cvdeploy/options.h"
#include "cvdeploy/types.h"

namespace cvdeploy {

struct TensorInfo {
  std::string name;
  std::string type;                    // ONNX element type name: "float32", "float16", "uint8", ...
  std::vector<int64_t> shape;          // -1 for a dynamic dimension
  std::vector<std::string> dim_names;  // symbolic names of dynamic dims ("" when fixed)
};

// Layout of the main output, recognised from shapes and metadata.
enum class OutputLayout {
  kChannelsFirst,  // YOLOv8/11: [B, 4+nc(+extra), N]
  kYoloV5,         // [B, N, 5+nc(+extra)]: objectness x class score
  kEndToEnd,       // YOLOv10/YOLO26 NMS-free: [B, N, 6(+extra)] = x1,y1,x2,y2,score,class
  kClassify,       // [B, nc]
};

// Ultralytics model description: parsed metadata, with values inferred from output
// shapes where metadata is absent, and user overrides applied last.
struct ModelMeta {
  Task task = Task::kDetect;
  OutputLayout layout = OutputLayout::kChannelsFirst;
  std::vector<std::string> names;  // index = class id
  int imgsz_h = 640, imgsz_w = 640;
  int stride = 32;
  int batch = 1;  // from metadata or the input's batch dim (-1: dynamic)
  std::optional<std::pair<int, int>> kpt_shape;  // pose: (keypoints, 2 or 3)
  bool dynamic = false;                          // spatial input axes are dynamic
  bool half = false;
  bool end2end = false;
  int mask_channels = 0;                   // segment: prototype channels (32)
  std::map<std::string, std::string> raw;  // every metadata_props entry as stored
  std::vector<std::string> inferred;       // human-readable notes on what was inferred
};

// Static description of a model file, as shown by `cvdeploy info`.
struct ModelInfo {
  std::string path;
  uint64_t file_size = 0;
  std::string sha256;
  std::string producer_name, producer_version, graph_name, description, domain;
  int64_t ir_version = 0, model_version = 0;
  std::map<std::string, int64_t> opsets;  // domain ("" = ai.onnx) -> version
  std::vector<TensorInfo> inputs, outputs;
  ModelMeta meta;
  std::vector<std::string> warnings;  // e.g. dynamic-quantization format
  // "" for a float model; "static" when the graph has QuantizeLinear/DequantizeLinear or
  // QLinear* nodes (QDQ or QOperator int8); "dynamic" for DynamicQuantizeLinear/ConvInteger.
  std::string quantization;
};

// A model: its bytes and its description, read, parsed and hashed once. Cheap to copy (the
// bytes and the description are shared and immutable), so one Model can feed several
// predictors (e.g. on different devices) and the tools without re-reading the file.
// Thread-safe: every member is const.
class Model {
 public:
  // Reads `path` (a regular file no larger than options.max_model_bytes; the size is
  // checked before reading) and describes it. Throws Error naming the path for a missing,
  // unreadable or non-regular file, a file over the limit (LimitError "max_model_bytes"),
  // data that is not an ONNX model or not a YOLO model.
  static Model FromFile(const std::string& path, const ModelOptions& options = {});
  // Describes model bytes held in memory (e.g. a decrypted package that must never touch
  // disk); `name` stands for the model in messages and in info().path.
  static Model FromMemory(std::vector<uint8_t> bytes, const std::string& name,
                          const ModelOptions& options = {});

  const ModelInfo& info() const;
  const ModelMeta& meta() const { return info().meta; }
  const std::vector<uint8_t>& bytes() const;
  // The same description without the bytes (bytes() empty): what a Predictor keeps when
  // SessionOptions::keep_model_bytes is false.
  Model WithoutBytes() const;

 private:
  struct State;
  explicit Model(std::shared_ptr<const State> state) : state_(std::move(state)) {}
  std::shared_ptr<const State> state_;
};

// Reads class names from a file: one per line, a YAML "names:" block, or a Python/JSON-like
// literal ("{0: 'a', 1: 'b'}" / "['a', 'b']"). Throws Error(kBadInput) naming the file.
std::vector<std::string> ReadNamesFile(const std::string& path);

}  // namespace cvdeploy
