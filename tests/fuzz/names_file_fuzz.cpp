// SPDX-License-Identifier: Apache-2.0
// Class names files: ReadNamesFile (cvdeploy's --names: dict/list literal, a dataset YAML's
// "names:" entry, or one name per line; it only reads from a path, so the input goes through
// a scratch file) and the YAML reader behind it, ParseYamlNames (model/yaml_names.h), which
// also reads dataset YAMLs directly. Errors must be Error(kBadInput).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cvdeploy/error.h"
#include "fuzz_util.h"
#include "model/metadata.h"
#include "model/yaml_names.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)cvdeploy::model::ParseYamlNames(cvdeploy::fuzz::AsText(data, size));
  } catch (const cvdeploy::Error& e) {  // e.g. a class id out of range
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
  }
  const std::string path = cvdeploy::fuzz::ScratchDir::Get().Write("names.txt", data, size);
  try {
    (void)cvdeploy::model::ReadNamesFile(path);
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
  }
  return 0;
}
