// SPDX-License-Identifier: Apache-2.0
// Parameters and FLOPs of a model, computed from its graph (weights and the shapes ONNX shape
// inference derives), so `info`, the model tools and the benchmark report the same figures.
// FLOPs = 2 x multiply-accumulates of Conv, ConvTranspose, MatMul and Gemm (what Ultralytics
// prints as GFLOPs); parameters = constant weights and biases of those ops plus BatchNorm's.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "cvdeploy/model.h"

namespace cvdeploy {

struct ModelCost {
  int64_t params = 0;
  double flops = 0;  // 2 x MACs
  // False when some nodes' FLOPs could not be counted (a shape unknown or dynamic); their
  // parameters are counted.
  bool complete = true;
  // For a model with symbolic input dims: the input shape the figures are for (batch 1, the
  // metadata's imgsz); empty for fixed-size models.
  std::vector<int64_t> assumed_input;
  double gflops() const { return flops / 1e9; }
};

// Counts `model`'s graph (its bytes, already read and parsed once by Model). nullopt when the
// graph cannot be counted (shape inference fails), which must not stop a caller describing
// the model.
std::optional<ModelCost> ComputeCost(const Model& model);

// {"params", "flops", "gflops", "complete"[, "assumed_input"]}, as `cvdeploy info --json`.
nlohmann::ordered_json ModelCostToJson(const ModelCost& cost);

}  // namespace cvdeploy
