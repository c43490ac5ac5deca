// SPDX-License-Identifier: Apache-2.0
// A served model's config.json (ReadModelConfig, server/model_config.h), which reads
// DIR/config.json: the input is written there in a scratch directory. Invalid documents
// must be Error(kBadInput); an accepted config must be within the documented ranges.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cvdeploy/error.h"
#include "fuzz_util.h"
#include "server/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& scratch = cvdeploy::fuzz::ScratchDir::Get();
  static const std::string dir = [&] {
    std::filesystem::create_directories(scratch.path() / "model");
    return (scratch.path() / "model").string();
  }();
  scratch.Write("model/config.json", data, size);
  try {
    const cvdeploy::server::ModelConfig config = cvdeploy::server::ReadModelConfig(dir);
    if (config.conf && !(*config.conf >= 0 && *config.conf <= 1)) std::abort();
    if (config.iou && !(*config.iou >= 0 && *config.iou <= 1)) std::abort();
    // Select must not fail on an accepted policy.
    (void)config.version_policy.Select({1, 2, 3});
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
  }
  return 0;
}
