// SPDX-License-Identifier: Apache-2.0
// Proof by execution that a graph whose batch axis was made dynamic still computes what the
// original computed, item by item (ONNX Runtime, CPU).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "optimize/graph_edit.h"

namespace cvdeploy::optimize {

// Runs `original` (batch 1) on pseudo-random inputs a and b and `converted` on the batch
// [a, b, a] and, with `scales_span_batch` (the graph has DynamicQuantizeLinear), also on
// [a, a]. Fills the verification fields of `report`. Throws Error(kBadInput) "NAME: cannot
// make the batch axis dynamic: REASON" when an output does not follow the batch, batch items
// mix, or the converted graph differs from the original beyond float rounding.
void VerifyDynamicBatch(const std::vector<uint8_t>& original, const std::vector<uint8_t>& converted,
                        bool scales_span_batch, const std::string& name,
                        DynamicBatchReport& report);

}  // namespace cvdeploy::optimize
