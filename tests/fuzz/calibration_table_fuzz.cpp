// SPDX-License-Identifier: Apache-2.0
// Calibration tables (LoadCalibration, optimize/calibration.h), read from a path: the input
// goes through a scratch file. A malformed table must be Error(kBadInput); a loaded one must
// satisfy what the range computation relies on (names for every image, finite statistics).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cvdeploy/error.h"
#include "fuzz_util.h"
#include "optimize/calibration.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cvdeploy::fuzz::ScratchDir::Get().Write("table.json", data, size);
  try {
    const cvdeploy::optimize::CalibrationTable table = cvdeploy::optimize::LoadCalibration(path);
    if (table.images < 1 || table.image_names.size() != static_cast<size_t>(table.images)) {
      std::abort();
    }
    for (const auto& [name, stats] : table.stats) {
      if (!std::isfinite(stats.min) || !std::isfinite(stats.max)) std::abort();
    }
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
  }
  return 0;
}
