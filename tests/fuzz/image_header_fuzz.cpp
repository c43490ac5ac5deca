// SPDX-License-Identifier: Apache-2.0
// Image header probing (ProbeImage, cvdeploy/image.h), which the server runs on every upload
// before deciding whether the pixel count is acceptable. Malformed headers must end in
// Error(kBadInput), and a successful probe must report positive dimensions.
#include <cstdint>
#include <cstdlib>

#include "cvdeploy/error.h"
#include "cvdeploy/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const cvdeploy::ImageHeader header = cvdeploy::ProbeImage(data, size, "fuzz");
    if (header.format == cvdeploy::ImageFormat::kUnknown) {
      if (header.width != 0 || header.height != 0) std::abort();
    } else if (header.width <= 0 || header.height <= 0) {
      std::abort();
    }
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
  }
  return 0;
}
