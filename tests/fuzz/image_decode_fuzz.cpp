// SPDX-License-Identifier: Apache-2.0
// Image decoding through the project's decode path (cvdeploy/image.h: container checks, the
// libjpeg-turbo fast path with EXIF orientation and scaled decoding, OpenCV's imdecode for
// PNG/WebP/BMP and as JPEG fallback). Like the server's image endpoint, the header is probed
// first and images above the server's pixel limit (ApiOptions::max_image_pixels) or of an
// unknown format are not decoded, so a decompression bomb costs the fuzzer no more than it
// costs the server. Inputs of even length decode for a 640x640 model (scaled JPEG decoding,
// the server and `predict` path), odd ones at full size (the `validate` path).
#include <cstdint>
#include <cstdlib>
#include <vector>

#include <opencv2/core.hpp>

#include "cvdeploy/error.h"
#include "cvdeploy/image.h"
#include "server/api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const uint64_t kMaxPixels = cvdeploy::server::ApiOptions{}.max_image_pixels;
  cvdeploy::ImageHeader header;
  try {
    header = cvdeploy::ProbeImage(data, size, "fuzz");
  } catch (const cvdeploy::Error&) {
    return 0;  // the server answers 400 here
  }
  if (header.format == cvdeploy::ImageFormat::kUnknown) return 0;  // 415
  if (static_cast<uint64_t>(header.width) * static_cast<uint64_t>(header.height) > kMaxPixels) {
    return 0;  // 413
  }
  try {
    cv::Size original;
    const bool for_model = size % 2 == 0;
    const cv::Mat image = cvdeploy::DecodeImageForModel(data, size, "fuzz",
                                                        for_model ? cv::Size(640, 640) : cv::Size(),
                                                        for_model ? &original : nullptr);
    // A decoded image is 8-bit BGR and never larger than the header said (EXIF orientation
    // may transpose it, scaled decoding shrinks it).
    if (image.empty() || image.type() != CV_8UC3) std::abort();
    if (static_cast<uint64_t>(image.total()) > kMaxPixels) std::abort();
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
  }
  return 0;
}
