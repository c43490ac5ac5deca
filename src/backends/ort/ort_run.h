// SPDX-License-Identifier: Apache-2.0
// The generic run behind Backend::RunNamed, and the graph's inputs and outputs as the engine
// reads them. Internal to src/backends/ort/.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <string>
#include <vector>

#include "backends/backend.h"

namespace cvdeploy::backends::ort {

// Inputs and outputs of `session` (name, element type, shape with -1 for dynamic dims and
// their symbolic names).
std::vector<TensorInfo> SessionInputs(const Ort::Session& session);
std::vector<TensorInfo> SessionOutputs(const Ort::Session& session);

// Backend::RunNamed on `session`, whose graph has `graph_inputs` (float16 ones get converted
// input) and `graph_outputs` (all of them are computed when `output_names` is empty).
// `context` (the model's name) prefixes error messages. Thread-safe: ORT sessions are.
void RunNamed(Ort::Session& session, const std::vector<TensorInfo>& graph_inputs,
              const std::vector<TensorInfo>& graph_outputs, const std::string& context,
              const std::vector<NamedTensorView>& inputs,
              const std::vector<std::string>& output_names, const OutputsVisitor& visit);

}  // namespace cvdeploy::backends::ort
