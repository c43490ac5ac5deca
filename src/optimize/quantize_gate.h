// SPDX-License-Identifier: Apache-2.0
// Accuracy gate of static quantization: validate the float and the quantized model on a
// labelled dataset; when the mAP50-95 drop exceeds the limit, rank the quantized layers by
// the error each adds and return the worst ones to float until the drop is within it.
#pragma once

#include <onnx/onnx_pb.h>

#include <functional>
#include <string>
#include <vector>

#include "cvdeploy/eval.h"
#include "optimize/quantize.h"

namespace cvdeploy::optimize {

struct GateOptions {
  double max_map_drop = 0.01;
  int max_float_layers = 16;   // bound of the loop: at most this many layers return to float
  int sensitivity_images = 8;  // first N dataset images for the per-layer error ranking
  int threads = 0;             // engine intra-op threads; 0: physical cores
  std::function<void(const std::string&)> log;  // progress lines (stderr in the CLI)
};

// Error one layer adds: noise-to-signal ratio (MSE / mean square of the float values) of
// its output in the fully quantized model, minus the largest ratio among its inputs.
struct LayerSensitivity {
  std::string layer;
  double output_nsr = 0;
  double added_nsr = 0;
};

struct GateResult {
  double map_float = 0;                   // mAP50-95 of the float model
  double map_initial = 0;                 // of the fully quantized model
  double map_final = 0;                   // of the returned model
  bool met = false;                       // final drop <= max_map_drop
  int validations = 0;                    // quantized models validated
  std::vector<std::string> float_layers;  // layers returned to float, in the order returned
  std::vector<LayerSensitivity> ranking;  // empty when the first quantized model passed
  onnx::ModelProto model;                 // the quantized model with the smallest drop seen
  QuantPlan plan;                         // its plan
};

// `options.keep_float` is extended with the nodes of returned layers. `quantized` is the
// model ApplyQuantization made from `prepared` with `options`.
GateResult RunAccuracyGate(const std::vector<uint8_t>& float_bytes, const std::string& name,
                           const onnx::ModelProto& prepared, const CalibrationTable& table,
                           QuantizeOptions options, const onnx::ModelProto& quantized,
                           const Dataset& dataset, const GateOptions& gate);

// mAP50-95 of serialized model bytes on `dataset` with validation settings (conf 0.001,
// IoU 0.7, multi-label), loaded in memory (no temporary file).
double ValidateBytes(const std::vector<uint8_t>& bytes, const std::string& name,
                     const Dataset& dataset, int threads);

}  // namespace cvdeploy::optimize
