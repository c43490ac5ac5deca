// SPDX-License-Identifier: Apache-2.0
// Float16 conversion of a float32 ONNX model: weights are stored as float16 and every node
// whose operator accepts float16 computes in float16; graph inputs and outputs stay float32
// by default (a Cast at each boundary). Meant for GPU execution providers (CUDA, TensorRT),
// where it halves weight and activation memory. On an x86 CPU without float16 arithmetic,
// ONNX Runtime (1.30) puts float32 kernels behind Casts of its own: measured 1.00-1.03x the
// float32 time and no memory saved (docs/optimization.md).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

// Declared only: front ends reach this module through the byte-level entry point.
namespace onnx {
class ModelProto;
}

namespace cvdeploy::optimize {

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
  // significant bits). Measures float16 accuracy on a CPU whose ONNX Runtime would otherwise
  // compute most float16 nodes in float32; it is slower than the original and not for
  // deployment. Does not model float16's exponent range (overflow past 65504, subnormals).
  bool emulate = false;
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
};

// Converts `model` (a float32 model; `name` prefixes messages). Throws Error(kBadInput)
// "NAME: ..." for a model already holding float16 tensors, a quantized model, one with
// control-flow subgraphs, or one without float32 tensors. The result keeps the input and
// output names, shapes and metadata and passes CheckModel; the caller adds the record.
onnx::ModelProto ConvertToFloat16(const onnx::ModelProto& model, const std::string& name,
                                  const Fp16Options& options, Fp16Report* report);

// The same on serialized bytes (Error(kBadInput) "NAME: not an ONNX model" when they do not
// parse); the returned model carries an fp16 step in its optimization record (options,
// counts, the source's SHA-256).
std::vector<uint8_t> ConvertToFloat16(const std::vector<uint8_t>& model_bytes,
                                      const std::string& name, const Fp16Options& options,
                                      Fp16Report* report);

}  // namespace cvdeploy::optimize
