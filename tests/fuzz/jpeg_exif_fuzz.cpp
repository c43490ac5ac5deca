// SPDX-License-Identifier: Apache-2.0
// EXIF orientation reading (core::JpegExifOrientation): APP1 segment, TIFF header, IFD
// entries, in both byte orders. The input is the whole JPEG prefix; the reader must stay
// inside it and answer 1..8.
#include <cstdint>
#include <cstdlib>

#include "core/jpeg_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int orientation = cvdeploy::core::JpegExifOrientation(data, size);
  if (orientation < 1 || orientation > 8) std::abort();
  return 0;
}
