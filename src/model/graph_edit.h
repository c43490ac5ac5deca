// SPDX-License-Identifier: Apache-2.0
// ONNX graph rewrites that change how a model can be run, each verified with ONNX Runtime
// before it is returned. The graph is edited through the ONNX protobuf classes; nothing is
// written to disk here (the caller decides where the bytes go).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cvdeploy::model {

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

}  // namespace cvdeploy::model
