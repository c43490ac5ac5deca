// SPDX-License-Identifier: Apache-2.0
// The ONNX side of training that needs no libtorch (cheap to compile): the training step of the
// model's `cvdeploy_optimizations` record and the model's image input dims.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cvdeploy::train {

// Appends `step` ({"tool": "distill", ...}) to the model's optimization record, checks the
// model with the ONNX checker and returns its bytes.
std::vector<uint8_t> AddTrainingRecord(const std::vector<uint8_t>& bytes, const std::string& name,
                                       nlohmann::ordered_json step);

// The dims of the model's image input [B, 3, H, W]; 0 for a symbolic dimension.
struct ImageInputDims {
  int64_t batch = 0, height = 0, width = 0;
};
ImageInputDims ImageInput(const std::vector<uint8_t>& bytes, const std::string& name);

}  // namespace cvdeploy::train
