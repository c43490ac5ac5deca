// SPDX-License-Identifier: Apache-2.0
// Static INT8 quantization (QDQ) as a library function: calibration, placement, rewrite,
// optional accuracy gate, verification. The CLI's `quantize` is a thin front end of it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cvdeploy {

// How an activation's real range is taken from its calibration statistics.
enum class CalibrationMethod { kMinMax, kPercentile, kEntropy };
// "minmax" | "percentile" | "entropy"; throws Error(kInvalidArgument) naming the value.
CalibrationMethod ParseCalibrationMethod(const std::string& text);
const char* ToString(CalibrationMethod method);

// "avx2,fma" -> {"avx2", "fma"}: flags of cvdeploy::kIsaFlags (cvdeploy/system.h) for
// QuantizeOptions::target_isa, duplicates dropped. Throws Error(kInvalidArgument) naming an
// unknown flag.
std::vector<std::string> ParseIsaFlags(const std::string& text);

// ---- Calibration -------------------------------------------------------------------------

struct CalibrateOptions {
  std::string image_dir;                   // JPEG/PNG/BMP/WebP files directly in it, sorted
  int max_images = 100;                    // the first N
  int threads = 0;                         // engine intra-op threads; 0: physical cores
  std::function<void(int, int)> progress;  // (done, total) after each image; optional
};

struct CalibrateReport {
  std::string model_sha256;  // of the model bytes the statistics belong to
  int images = 0;
  std::vector<std::string> image_names;  // in order
  size_t tensors = 0;                    // activations with statistics
};

struct CalibrateResult {
  // The calibration table file (JSON), as QuantizeOptions::save_calibration writes it and
  // QuantizeOptions::load_calibration reads it.
  std::vector<uint8_t> bytes;
  CalibrateReport report;
};

// Activation statistics of the float model `model_bytes` over calibration images, for every
// tensor any quantization of it may need (what Quantize calibrates), with the inference
// preprocessing (Predictor::Prepare). Throws Error(kBadInput) for a model that cannot be
// quantized, a directory without readable images or an undecodable image.
CalibrateResult Calibrate(const std::vector<uint8_t>& model_bytes, const std::string& name,
                          const CalibrateOptions& options);

// ---- Quantization ------------------------------------------------------------------------

struct QuantizeOptions {
  // Calibration: images of `calib_dir` (the first `calib_size`, sorted), or the statistics
  // saved earlier in `load_calibration` (exactly one of the two). `save_calibration`: where
  // to write the statistics used (empty: nowhere).
  std::string calib_dir;
  int calib_size = 100;
  std::string load_calibration;
  std::string save_calibration;
  CalibrationMethod method = CalibrationMethod::kPercentile;
  double percentile = 99.999;
  bool per_channel = true;           // weight scales per output channel (else per tensor)
  bool reduce_range = false;         // 7-bit weights (x86 without VNNI, see optimize/quantize.h)
  bool quantize_input_conv = false;  // also the Conv on the image
  bool unify_concat = true;          // Concat inputs share the Concat's scale
  std::vector<std::string> exclude;  // node names kept float
  // The CPU the model is quantized for, as flags of cvdeploy::kIsaFlags ("avx2",
  // "avx512_vnni", "amx_int8", "neon", ...): placement decisions that depend on its int8
  // arithmetic follow it. Empty: this host (DetectMachine().isa).
  std::vector<std::string> target_isa;
  // Accuracy gate: with a labelled dataset (images/, labels/), layers go back to float until
  // the mAP50-95 drop is at most max_map_drop, at most max_float_layers of them.
  std::string val_dir;
  double max_map_drop = 0.01;
  int max_float_layers = 16;
  int threads = 0;  // engine intra-op threads; 0: physical cores
  // Calibration progress (done, total), and the gate's progress lines. Optional.
  std::function<void(int, int)> calibration_progress;
  std::function<void(const std::string&)> log;
};

// Node names with a count per operator type, most frequent first ("Conv" 57, "Sigmoid" 51).
using OpCounts = std::vector<std::pair<std::string, int>>;

struct QuantizeGateReport {
  double map_float = 0;    // mAP50-95 of the float model
  double map_initial = 0;  // of the fully quantized model
  double map_final = 0;    // of the returned model
  // The final drop is within max_map_drop. When false, the result still holds the model with
  // the smallest drop seen; the caller decides whether to use it.
  bool met = false;
  int validations = 0;  // quantized models validated
  size_t validation_images = 0;
  std::vector<std::string> float_layers;  // layers returned to float, in the order returned
};

// Nodes left float for one reason ("decode", "--exclude", "accuracy gate", ...).
struct FloatNodes {
  std::string reason;
  std::vector<std::string> nodes;  // graph order
  OpCounts ops;
};

// The placement decisions taken for the target CPU (also in the optimization record).
struct QuantizeIsaReport {
  std::string target;                  // "avx512_vnni", "amx_int8", "avx2", "arm", "unknown", ...
  bool host = true;                    // the flags are this host's (no QuantizeOptions::target_isa)
  std::vector<std::string> isa;        // the flags the decisions were made from
  std::string arithmetic;              // "vnni", "amx_int8", "int16 pairs", "arm"
  std::vector<std::string> decisions;  // one sentence each, with its reason
};

struct QuantizeReport {
  int opset_before = 0, opset_after = 0;
  QuantizeIsaReport isa;
  int calibration_images = 0;
  size_t calibration_tensors = 0;
  bool calibration_loaded = false;           // from QuantizeOptions::load_calibration
  std::vector<std::string> quantized_nodes;  // graph order
  OpCounts quantized_ops;
  // Quantized nearest Resizes run as uint8 Transpose/Reshape/Expand (no Resize left).
  int uint8_upsampling = 0;
  std::vector<FloatNodes> float_nodes;     // by reason, sorted by reason
  std::optional<QuantizeGateReport> gate;  // with QuantizeOptions::val_dir
  size_t bytes_before = 0, bytes_after = 0;
};

struct QuantizeResult {
  std::vector<uint8_t> bytes;  // the quantized model, checked and run by ONNX Runtime
  QuantizeReport report;
};

// Quantizes the float model `model_bytes` (`name` stands for it in messages). The result
// passed the ONNX checker and strict shape inference and was loaded and run by ONNX Runtime;
// it carries a "quantize" step in its optimization record. Throws Error(kInvalidArgument)
// for an excluded name that is no node, Error(kBadInput) for a model that cannot be
// quantized, a calibration table of another model or unreadable images/datasets,
// Error(kRuntime) when the produced model fails verification.
QuantizeResult Quantize(const std::vector<uint8_t>& model_bytes, const std::string& name,
                        const QuantizeOptions& options);

}  // namespace cvdeploy
