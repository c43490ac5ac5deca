// SPDX-License-Identifier: Apache-2.0
// ONNX graph rewrites that change how a model can be run, each verified with ONNX Runtime
// before it is returned. The graph is edited through the ONNX protobuf classes; nothing is
// written to disk here (the caller decides where the bytes go).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cvdeploy/tools.h"  // DynamicBatchReport

namespace cvdeploy::optimize {

// Makes axis 0 of every graph input and output a symbolic dimension "batch" and rewrites the
// constant shape operands that hard-code a batch of 1 (Reshape targets [1, ...] -> [0, ...]).
// Returns the serialized model. Throws Error(kBadInput) "NAME: cannot make the batch axis
// dynamic: REASON" when the bytes are not an ONNX model, the batch is not a fixed 1 (e.g.
// already dynamic), an operator hard-codes the batch in a way this rewrite cannot change,
// or the converted model, run by ONNX Runtime at batch > 1, does not reproduce the original's
// batch-1 outputs. Thread-safe (no shared state besides ONNX Runtime's environment).
std::vector<uint8_t> MakeBatchDynamic(const std::vector<uint8_t>& model_bytes,
                                      const std::string& name,
                                      DynamicBatchReport* report = nullptr);

}  // namespace cvdeploy::optimize
