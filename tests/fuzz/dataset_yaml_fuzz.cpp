// SPDX-License-Identifier: Apache-2.0
// Ultralytics dataset YAML files (validate --data X.yaml, compare --data, quantize/prune --val):
// ParseDatasetYaml (model/yaml_names.h) reads `path`, `train`/`val`/`test` (scalars, block and
// flow lists), `nc` and `names` from untrusted text. Errors must be Error(kBadInput); every
// split holds at most 4096 entries and `nc` is in range.
#include <cstdint>
#include <cstdlib>

#include "cvdeploy/error.h"
#include "fuzz_util.h"
#include "model/yaml_names.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const cvdeploy::model::DatasetYaml yaml =
        cvdeploy::model::ParseDatasetYaml(cvdeploy::fuzz::AsText(data, size));
    for (const auto& [split, entries] : yaml.splits) {
      if (split != "train" && split != "val" && split != "test") std::abort();
      if (entries.empty() || entries.size() > 4096) std::abort();
    }
    if (yaml.nc && (*yaml.nc < 1 || *yaml.nc > (1 << 20))) std::abort();
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
  }
  return 0;
}
