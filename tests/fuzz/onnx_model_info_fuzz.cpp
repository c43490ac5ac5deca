// SPDX-License-Identifier: Apache-2.0
// ONNX model description from the file's bytes (ParseModelInfo, model/model_info.h): the
// protobuf parse, graph inputs/outputs, opsets, metadata_props and everything BuildMeta
// derives from them (task, names, imgsz, layouts) - what `cvdeploy info` and every model
// load run before ONNX Runtime sees the file. Anything wrong must be Error(kBadInput).
// (The protobuf library itself is not instrumented; coverage guides through our code.)
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "cvdeploy/error.h"
#include "cvdeploy/predictor.h"
#include "model/model_info.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  try {
    const cvdeploy::ModelInfo info =
        cvdeploy::model::ParseModelInfo(bytes, "fuzz.onnx", cvdeploy::SessionOptions{});
    if (info.inputs.empty() || info.outputs.empty()) std::abort();
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
  }
  return 0;
}
