// SPDX-License-Identifier: Apache-2.0
// What Backend::Run of the ONNX Runtime backend can run: one image input fed as float32 or
// float16, outputs read back as float32 or float16 (the conversions it implements). Other
// graphs run through RunNamed.
#include <string>

#include "backends/backend.h"

namespace cvdeploy::backends {
namespace {

bool FloatType(const std::string& type) { return type == "float32" || type == "float16"; }

}  // namespace

Support OrtSupports(const ModelInfo& info, const std::string& device) {
  Support s;
  const auto refuse = [&s](std::string reason) {
    s.ok = false;
    s.reason = std::move(reason);
    return s;
  };
  if (info.inputs.size() != 1) {
    return refuse("the backend feeds one image input; the model has " +
                  std::to_string(info.inputs.size()) + " inputs");
  }
  const TensorInfo& in = info.inputs[0];
  if (!FloatType(in.type)) {
    return refuse("input '" + in.name + "' has element type " + in.type +
                  "; the backend feeds float32 or float16");
  }
  if (info.outputs.empty()) return refuse("the model has no outputs");
  for (const TensorInfo& out : info.outputs) {
    // "type0": the graph leaves the type to inference; Run checks what the engine returns.
    if (!FloatType(out.type) && out.type != "type0") {
      return refuse("output '" + out.name + "' has element type " + out.type +
                    "; the backend reads float32 or float16 outputs");
    }
  }
  const std::string kind = device.substr(0, device.find(':'));
  if (in.type == "float16" && kind == "cpu") {
    // As `cvdeploy fp16` tells at conversion: the CPU provider has few float16 kernels.
    s.notes.push_back(
        "float16 model on the CPU provider: ONNX Runtime runs the nodes without float16 CPU "
        "kernels in float32 behind Casts, no faster than the float32 model");
  }
  return s;
}

}  // namespace cvdeploy::backends
