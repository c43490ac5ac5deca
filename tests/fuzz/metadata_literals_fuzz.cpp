// SPDX-License-Identifier: Apache-2.0
// The Python-literal parsers for Ultralytics metadata_props values (model/metadata.h):
// names dicts/lists, integer lists (imgsz, kpt_shape) and booleans. Any ONNX file's metadata
// reaches them, so a malformed value must be Error(kBadInput), never another exception
// (std::stol's out_of_range, for one).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cvdeploy/error.h"
#include "fuzz_util.h"
#include "model/metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(cvdeploy::fuzz::AsText(data, size));
  try {
    (void)cvdeploy::model::ParseNamesLiteral(text);
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
  }
  try {
    (void)cvdeploy::model::ParseIntList(text);
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
  }
  (void)cvdeploy::model::ParseBool(text);
  return 0;
}
