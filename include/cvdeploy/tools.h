// SPDX-License-Identifier: Apache-2.0
// The model tools as library functions. Each takes serialized model bytes (`name` stands for
// the model in messages) and an options struct, and returns {bytes, report}: the rewritten
// model, already checked and run by ONNX Runtime, and a plain-data report for the caller to
// print or serialize. Nothing is written to disk here. Quantization: cvdeploy/quantize.h;
// parameter and FLOP counts: cvdeploy/cost.h; obfuscation: cvdeploy/obfuscate.h.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cvdeploy/cost.h"
#include "cvdeploy/obfuscate.h"
#include "cvdeploy/quantize.h"

namespace cvdeploy {

// ---- Dynamic batch axis ------------------------------------------------------------------

struct DynamicBatchReport {
  int reshapes_rewritten = 0;       // Reshape nodes whose constant target shape was [1, ...]
  int value_infos_cleared = 0;      // stale intermediate shapes dropped from graph.value_info
  std::vector<std::string> notes;   // one line each: what was changed, caveats
  std::vector<std::string> inputs;  // graph inputs after conversion: "images [batch, 3, 640, 640]"
  // Verification with ONNX Runtime on pseudo-random inputs a, b (uniform in [0, 1), the range
  // of a normalized image): the original runs a and b alone, the converted graph runs the
  // batch [a, b, a], and, for graphs with DynamicQuantizeLinear, also [a, a]. Differences are
  // maxima over every element of every output.
  int verify_batch = 0;
  double max_diff_within_batch = 0;  // |slot 0 - slot 2| of [a, b, a]: must be ~0
  // Exactness of the rewrite: converted at batch > 1 vs the original at batch 1 on the same
  // input ([a, b, a] for float graphs; [a, a] when quantization scales span the batch).
  double max_diff_vs_batch1 = 0;
  double tolerance_vs_batch1 = 0;  // what max_diff_vs_batch1 had to stay within
  double max_abs_output = 0;       // largest |value| of the original outputs (their scale)
  // DynamicQuantizeLinear computes ONE scale per tensor, i.e. over the whole batch, so an
  // item's outputs depend on its batch-mates. Measured, not bounded: [a, b, a] vs batch 1.
  bool batch_dependent = false;
  double max_diff_from_batch_mates = 0;
};

struct DynamicBatchResult {
  std::vector<uint8_t> bytes;
  DynamicBatchReport report;
};

// Makes axis 0 of every graph input and output a symbolic dimension "batch" and rewrites the
// constant shape operands that hard-code a batch of 1. Throws Error(kBadInput) "NAME: cannot
// make the batch axis dynamic: REASON" (see optimize/graph_edit.h).
DynamicBatchResult MakeBatchDynamic(const std::vector<uint8_t>& model_bytes,
                                    const std::string& name);

// ---- Dynamic height and width -------------------------------------------------------------

// One run of the converted model at a size other than the export's.
struct DynamicShapeRun {
  int64_t height = 0, width = 0;
  std::vector<std::string> outputs;  // "output0 [1, 84, 6300]"
};

struct DynamicShapeReport {
  std::string input;  // after conversion: "images [1, 3, height, width]"
  int64_t export_height = 0, export_width = 0;
  std::vector<int64_t> strides;    // detection levels, e.g. {8, 16, 32}
  int64_t export_anchors = 0;      // anchors at the export size (8400 at 640x640)
  int anchor_constants = 0;        // anchor-grid / stride constants now computed in the graph
  int reshapes_rewritten = 0;      // Reshape targets now -1 or derived from the input's shape
  std::vector<std::string> notes;  // one line each: what was changed
  // Verification with ONNX Runtime (batch 1, pseudo-random input uniform in [0, 1)): the
  // converted model at the export size vs the original, max |diff| over every output element.
  double max_diff_at_export = 0;
  double tolerance = 0;       // what max_diff_at_export had to stay within (absolute)
  double max_abs_output = 0;  // largest |value| of the original outputs (their scale)
  // Runs at other sizes: every output has the shape the new size implies.
  std::vector<DynamicShapeRun> other_sizes;
};

struct DynamicShapeResult {
  std::vector<uint8_t> bytes;
  DynamicShapeReport report;
};

// Makes the input's height and width symbolic ("height", "width") in a fixed-shape
// Ultralytics detect/segment/pose/OBB export: the anchor grid and strides are computed in the
// graph from the input's shape, Reshape sizes that bake the export size become -1 or
// shape-derived. Ultralytics metadata is kept and the conversion is recorded in
// "cvdeploy_optimizations". Throws Error(kBadInput) "NAME: cannot make height/width dynamic:
// REASON" (see optimize/spatial_edit.h).
DynamicShapeResult MakeShapeDynamic(const std::vector<uint8_t>& model_bytes,
                                    const std::string& name);

// ---- Float16 -----------------------------------------------------------------------------

// Operators kept in float32 by default (with Casts around them), and why: see fp16.cpp.
std::set<std::string> DefaultFloat32Ops();

struct Fp16Options {
  // Graph inputs and outputs stay float32 (Cast to float16 after each input, Cast to float32
  // before each output). false: they become float16 too, and callers pass half data.
  bool keep_io_types = true;
  // Operator types computed in float32 (their float16 inputs are cast up, outputs down).
  std::set<std::string> float32_ops = DefaultFloat32Ops();
  // Instead of a float16 model, write a float32 one that rounds every weight and every
  // float16 tensor of the float16 model to float16 precision (x*8193 - (x*8193 - x) keeps 11
  // significant bits). Measures float16 accuracy on a CPU; slower than the original and not
  // for deployment. Does not model float16's exponent range (overflow past 65504, subnormals).
  bool emulate = false;
};

// One output of the converted model against the original's on the same input.
struct OutputDifference {
  std::string name;
  double max_diff = 0;  // largest |converted - original|
  double max_abs = 0;   // largest |original|
};

struct Fp16Report {
  int nodes_total = 0;
  int nodes_fp16 = 0;  // nodes that compute in float16
  // Nodes with float tensors left in float32, by operator type, and each with its reason.
  std::map<std::string, int> float32_op_counts;
  std::vector<std::string> float32_nodes;  // "Resize '/model.10/Resize' (float32 op list)"
  int casts_inserted = 0;
  int constants_converted = 0;  // initializers and Constant-node tensors now float16
  int64_t values_converted = 0;
  // Values beyond float16's range (|v| > 65504), clamped to +-65504.
  int64_t overflow_clamped = 0;
  // Nonzero values below half the smallest float16 subnormal (2^-25), now zero.
  int64_t underflow_to_zero = 0;
  float max_abs_value = 0;                  // largest finite |value| among converted constants
  std::vector<std::string> boundary_casts;  // "input images float32 -> float16", ...
  // ConvertToFloat16's check: both models on one pseudo-random image-like input (CPU).
  std::vector<OutputDifference> verified;
};

struct Fp16Result {
  std::vector<uint8_t> bytes;
  Fp16Report report;
};

// Converts a float32 model and verifies it: the converted model must load, keep every
// output's shape, and stay within 5% of each output's scale of the original. Throws
// Error(kBadInput) "NAME: ..." for a model that cannot be converted (already float16,
// quantized, control flow, no float32 tensors), Error(kRuntime) when the converted model
// fails the check.
Fp16Result ConvertToFloat16(const std::vector<uint8_t>& model_bytes, const std::string& name,
                            const Fp16Options& options);

// ---- Structured channel pruning ----------------------------------------------------------

// How the channels of a group are ranked (the lowest go): kL1/kL2, norm of the producing
// Conv filters (data-free); kActivation, std(activation) x consumer weight norm (needs
// calibration images). See optimize/prune.h.
enum class PruneMethod { kL1, kL2, kActivation };
// "l1" | "l2" | "activation"; throws Error(kInvalidArgument) naming the value.
PruneMethod ParsePruneMethod(const std::string& text);
const char* ToString(PruneMethod method);

struct PruneOptions {
  double ratio = 0.3;  // fraction of the channels of each prunable group to remove, in (0, 1)
  PruneMethod method = PruneMethod::kL1;
  // Nodes left exactly as they are (names must exist in the graph).
  std::vector<std::string> exclude;
  // Kept channel counts of a group are rounded to the nearest multiple of this; 1 keeps the
  // exact ratio.
  int channel_multiple = 8;
  // Calibration images (the first `calib_size`, sorted) on which the original model's
  // activations are measured: for mean compensation, and for ranking with kActivation.
  // Empty: none.
  std::string calib_dir;
  int calib_size = 16;
};

// One group of channels pruned (or skipped) together.
struct PruneGroup {
  // Conv nodes whose output channels belong to the group, graph order. When the group is a
  // piece of a Split, `piece` says which: "channels 16..31 of '/model.2/cv1/conv/Conv'".
  std::vector<std::string> convs;
  std::string piece;
  int channels = 0;         // before
  int kept = 0;             // after (== channels when skipped)
  std::string skip_reason;  // empty when pruned
};

// Channels of one Conv before and after.
struct ConvChange {
  std::string name;
  int64_t in_before = 0, in_after = 0, out_before = 0, out_after = 0;
  std::vector<int64_t> removed;  // removed output channels (indices in the original)
};

// Output of the pruned model as ONNX Runtime computed it.
struct PruneVerification {
  std::vector<std::string> outputs;  // "output0 [1, 84, 8400]" (same as the original's)
  double max_abs_diff = 0;           // pruned vs original on the same random input
  double max_abs_output = 0;         // largest |value| of the original's outputs
};

struct PruneReport {
  ModelCost before, after;
  std::vector<PruneGroup> groups;  // pruned and skipped, in graph order of the first Conv
  std::vector<ConvChange> convs;   // every Conv whose weight changed
  int channels_removed = 0;        // sum over pruned groups
  int convs_compensated = 0;       // Convs whose bias absorbed the means of removed inputs
  int calib_images = 0;            // images the activations were measured on (0: none)
  PruneVerification verification;  // filled by Prune
};

struct PruneResult {
  std::vector<uint8_t> bytes;
  PruneReport report;
};

// Prunes, checks (ONNX checker), runs the original and the pruned model in ONNX Runtime on the
// same input (every output keeps its name and shape) and records a "prune" step. Throws
// Error(kInvalidArgument) for bad options or an excluded name that is no node,
// Error(kBadInput) for bytes that are not an ONNX model or a graph without a prunable Conv,
// Error(kRuntime) when the pruned model fails the checks (a tool bug).
PruneResult Prune(const std::vector<uint8_t>& model_bytes, const std::string& name,
                  const PruneOptions& options);

}  // namespace cvdeploy
