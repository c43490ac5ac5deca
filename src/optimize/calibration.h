// SPDX-License-Identifier: Apache-2.0
// Calibration for static quantization: run the float model over calibration images with the
// inference preprocessing, collect per-tensor statistics (range and histogram) of the
// activations the quantizer asks for, and turn them into the real interval each tensor maps
// onto uint8 with MinMax, percentile or entropy (KL divergence) calibration. The statistics
// are kept in a table that can be saved and loaded, so trying another method or another
// placement does not rerun the model.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "cvdeploy/quantize.h"

namespace cvdeploy::optimize {

// Public (cvdeploy/quantize.h).
using cvdeploy::CalibrationMethod;
using cvdeploy::ParseCalibrationMethod;
using cvdeploy::ToString;

// Statistics of one tensor over every element of every calibration image.
struct TensorStats {
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  // Equal-width histogram of the values over [hist_min, hist_max] (bins.size() bins; the
  // range covers [min, max]).
  float hist_min = 0, hist_max = 0;
  std::vector<uint64_t> bins;
};

// The real interval [lo, hi] that an activation maps onto uint8 [0, 255]. Always contains 0
// (so zero is exactly representable, as ONNX Runtime's kernels and padding require) and has
// hi > lo.
struct TensorRange {
  float lo = 0, hi = 0;
};

// Range of `stats` by `method`:
//   minmax:     [min, max];
//   percentile: the `percentile` and (100 - `percentile`) quantiles of the histogram;
//   entropy:    the clipping interval whose 128-level quantized distribution has the smallest
//               KL divergence from the histogram (TensorRT-style search).
// Each result is then widened to contain 0. Throws Error(kInvalidArgument) for a percentile
// outside (50, 100], Error(kBadInput) for stats without data.
TensorRange ComputeRange(const TensorStats& stats, CalibrationMethod method,
                         double percentile = 99.99);

struct CalibrationOptions {
  int max_images = 100;  // first N images of the directory, in sorted path order
  int num_bins = 2048;
  int threads = 0;  // engine intra-op threads; 0: physical cores
  // Called after each image of each pass: (done, total).
  std::function<void(int, int)> progress;
};

struct CalibrationTable {
  std::string model_sha256;  // of the serialized float model the statistics belong to
  int images = 0;
  std::vector<std::string> image_names;      // file names of the calibration images, in order
  std::map<std::string, TensorStats> stats;  // by tensor name
};

// Runs `model` (float) over the images of `image_dir` (JPEG/PNG/BMP/WebP files directly in
// it, sorted; the first options.max_images) with exactly the inference preprocessing
// (Predictor::Prepare of a predictor for `model`: letterbox, pad 114, BGR->RGB, /255, NCHW) and
// collects statistics for every name in `tensors` (graph inputs or node outputs; each is exposed as
// an extra graph output of a private copy of the model). Throws Error(kBadInput) naming the
// directory when it holds no readable image, naming a tensor that is not in the graph, or
// naming an image that cannot be decoded.
CalibrationTable Calibrate(const onnx::ModelProto& model, const std::vector<std::string>& tensors,
                           const std::string& image_dir, const CalibrationOptions& options = {});

// JSON file with the statistics. Save throws Error(kRuntime) naming the path when it cannot
// be written; Load throws Error(kBadInput) naming the path for a missing, unreadable or
// malformed file.
void SaveCalibration(const CalibrationTable& table, const std::string& path);
// The file SaveCalibration writes, as text.
std::string CalibrationTableText(const CalibrationTable& table);
CalibrationTable LoadCalibration(const std::string& path);

// The hash Calibrate stores in CalibrationTable::model_sha256: SHA-256 (lower-case hex) of
// SerializeModel(model). A tool loading a table compares it with this of its own model.
std::string CalibrationModelSha256(const onnx::ModelProto& model);

}  // namespace cvdeploy::optimize
