// SPDX-License-Identifier: Apache-2.0
// The ONNX side of training that needs no libtorch (cheap to compile): the training step of the
// model's `cvdeploy_optimizations` record and the model's fixed input size.
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

// The model's spatial input size (height, width) when its image input has fixed dims; (0, 0)
// when they are symbolic.
std::pair<int64_t, int64_t> FixedInputSize(const std::vector<uint8_t>& bytes,
                                           const std::string& name);

}  // namespace cvdeploy::train
