// SPDX-License-Identifier: Apache-2.0
// Small synthetic ONNX models built in C++ for tests. Every output is a KNOWN CONSTANT,
// whatever the input values: the graph only reads the input's batch size (Shape ->
// Gather) and broadcasts a stored tensor to it (Expand), so expectations in tests can be
// computed by hand and batch dims follow the input.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cvdeploy::testing {

struct SyntheticOutput {
  std::string name;
  // Full shape; the first dim is the batch and follows the input (its value here is ignored,
  // use 1). The remaining dims must be positive.
  std::vector<int64_t> shape;
  // Values of ONE batch item, row-major over shape[1:]; every batch item gets the same values.
  std::vector<float> values;
};

struct SyntheticModel {
  std::string input_name = "images";
  // float32 input; -1 marks a dynamic dim, named from `input_dim_names` when given there,
  // else "batch" for dim 0 and "dim<i>" for the others.
  std::vector<int64_t> input_shape = {1, 3, 64, 64};
  std::vector<std::string> input_dim_names;
  std::vector<SyntheticOutput> outputs;
  std::map<std::string, std::string> metadata;  // ModelProto.metadata_props
  int64_t opset = 17;                           // ai.onnx opset (>= 13)
  int64_t ir_version = 8;
  std::string producer_name = "cvdeploy-tests";
  std::string graph_name = "synthetic";
};

// Serialized ModelProto. Throws std::invalid_argument when an output's values do not match
// its shape or the model has no outputs.
std::vector<uint8_t> BuildModel(const SyntheticModel& model);
// Writes BuildModel(model) to `path`; throws std::runtime_error when it cannot be written.
void WriteModel(const SyntheticModel& model, const std::string& path);
void WriteBytes(const std::vector<uint8_t>& bytes, const std::string& path);

// A valid ONNX model that is not a YOLO model: input "x" float [1, 10] -> Relu -> "y" [1, 10].
std::vector<uint8_t> BuildNonYoloModel();
// A model whose input "images" has rank 3 ([1, 3, 640]); its output "output0" [1, 6, 84] is
// shaped like a detection head, so only the input rank makes it unusable.
std::vector<uint8_t> BuildWrongRankModel();

// Ultralytics metadata helpers. NamesDict({"person", "car"}) == "{0: 'person', 1: 'car'}".
std::string NamesDict(const std::vector<std::string>& names);
// task, names, imgsz "[h, w]", stride "32", batch "1" (plus whatever the caller adds).
std::map<std::string, std::string> UltralyticsMetadata(const std::string& task,
                                                       const std::vector<std::string>& names,
                                                       int imgsz_h = 64, int imgsz_w = 64);

}  // namespace cvdeploy::testing
