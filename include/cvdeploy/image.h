// SPDX-License-Identifier: Apache-2.0
// Image and video input with errors that name the input and the reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace cvdeploy {

// Decodes an image file to 8-bit BGR. Throws Error(kBadInput) "PATH: reason" for a missing,
// empty, unreadable, truncated or non-image file.
cv::Mat ReadImage(const std::string& path);
// Same for bytes in memory; `name` appears in messages.
cv::Mat DecodeImage(const std::vector<uint8_t>& bytes, const std::string& name);

// Decodes for a model whose input is `model_input` pixels. A JPEG at least twice that size
// in both dimensions is decoded by libjpeg at 1/2, 1/4 or 1/8 scale (the largest factor that
// keeps both dimensions >= the model input), which is several times faster and still feeds
// the letterbox at full model resolution. `original` (optional) receives the full image
// size; RescaleResult (predictor.h) maps a result back to it. Errors as DecodeImage.
cv::Mat DecodeImageForModel(const std::vector<uint8_t>& bytes, const std::string& name,
                            cv::Size model_input, cv::Size* original);
// Same for bytes not owned by a vector (an HTTP request body): `data` is only read, and
// must stay valid for the duration of the call.
cv::Mat DecodeImageForModel(const uint8_t* data, size_t size, const std::string& name,
                            cv::Size model_input, cv::Size* original);
cv::Mat ReadImageForModel(const std::string& path, cv::Size model_input, cv::Size* original);

enum class ImageFormat { kUnknown, kJpeg, kPng, kWebp, kBmp };

struct ImageHeader {
  ImageFormat format = ImageFormat::kUnknown;
  int width = 0;
  int height = 0;
};

// Reads the format and pixel dimensions from an encoded image's header without decoding it
// (so a server can refuse a decompression bomb before allocating). Reads only the bytes it
// needs (for a JPEG, the segments before the frame header); never allocates for pixels.
// Returns format kUnknown (0x0) when the magic bytes match none of the formats, including
// inputs too short to hold the magic. Throws Error(kBadInput) "NAME: reason" for a
// recognised format whose header is truncated or malformed (e.g. a JPEG without a SOF
// marker before the data ends, zero or negative dimensions). A successful probe says the
// header is well formed, not that the rest of the file decodes. JPEG sizes are as stored,
// before EXIF orientation (which may swap them; the area is the same). TIFF, which
// DecodeImage accepts, probes as kUnknown.
ImageHeader ProbeImage(const uint8_t* data, size_t size, const std::string& name);
// "jpeg", "png", "webp", "bmp" or "unknown".
std::string ImageFormatName(ImageFormat format);

bool HasImageExtension(const std::string& path);
bool HasVideoExtension(const std::string& path);

// Expands predict sources: files, directories (their images and videos, sorted), globs.
// Throws Error(kBadInput) for a missing path, an empty directory or a glob matching nothing.
std::vector<std::string> ExpandSources(const std::vector<std::string>& sources);

}  // namespace cvdeploy
