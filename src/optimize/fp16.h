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

#include "cvdeploy/tools.h"

// Declared only: front ends reach this module through the byte-level entry point.
namespace onnx {
class ModelProto;
}

namespace cvdeploy::optimize {

// The option and report types are public (cvdeploy/tools.h).
using cvdeploy::DefaultFloat32Ops;
using cvdeploy::Fp16Options;
using cvdeploy::Fp16Report;

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
