// SPDX-License-Identifier: Apache-2.0
// The doctor's view of the engine (cvdeploy/doctor.h): the loaded ONNX Runtime library's
// version, its providers and the highest opset it implements. Here because every ONNX Runtime
// call lives under src/backends/ort/.
#include <onnxruntime_cxx_api.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "cvdeploy/doctor.h"

namespace cvdeploy {

int OrtMaxOpset(const std::string& ort_version) {
  int major = 0, minor = 0;
  if (std::sscanf(ort_version.c_str(), "%d.%d", &major, &minor) != 2 || major < 1) return 0;
  // ONNX Runtime's version matrix (docs/reference/compatibility.md on onnxruntime.ai, "ONNX
  // opset support"): the first release of each row and the ai.onnx opset it implements. 1.23
  // integrated ONNX 1.18 (opset 23); later releases implement at least that.
  static const std::vector<std::pair<int, int>> kTable = {{10, 15}, {11, 15}, {12, 15}, {13, 17},
                                                          {14, 18}, {15, 19}, {17, 20}, {18, 21},
                                                          {21, 22}, {23, 23}};
  if (major > 1) return kTable.back().second;
  int opset = 0;
  for (const auto& [first_minor, max_opset] : kTable) {
    if (minor >= first_minor) opset = max_opset;
  }
  return opset;
}

EngineInfo DetectEngine() {
  EngineInfo engine;
  engine.header_api_version = ORT_API_VERSION;
  try {
    engine.version = Ort::GetVersionString();
    engine.providers = Ort::GetAvailableProviders();
  } catch (const std::exception&) {
    // Never throws: an engine that cannot answer is reported by the doctor as such.
  }
  engine.max_opset = OrtMaxOpset(engine.version);
  return engine;
}

}  // namespace cvdeploy
