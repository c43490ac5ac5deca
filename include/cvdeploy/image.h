// SPDX-License-Identifier: Apache-2.0
// Image and video input with errors that name the input and the reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace cvdeploy {

// Largest image decoded from a file by default, in pixels (width x height): the server's
// default too (serve --max-image-mp 40). A 40-megapixel BGR image takes 120 MB decoded.
inline constexpr uint64_t kDefaultMaxPixels = 40'000'000;

// Decodes an image file to 8-bit BGR. Throws Error(kBadInput) "PATH: reason" for a missing,
// empty, unreadable, truncated, corrupt or non-image file, and for anything but a regular
// file (directory, FIFO, device). An image whose header says it has more than `max_pixels`
// pixels (0: no limit) is refused before decoding (CheckImagePixels).
cv::Mat ReadImage(const std::string& path, uint64_t max_pixels = kDefaultMaxPixels);
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
cv::Mat ReadImageForModel(const std::string& path, cv::Size model_input, cv::Size* original,
                          uint64_t max_pixels = kDefaultMaxPixels);

// Throws LimitError (setting "max_pixels", code kTooLarge) "NAME: image is WxH = N pixels,
// more than the limit M" when the header of the encoded image (ProbeImage) says it has more
// than `max_pixels` pixels; 0 means no limit. Errors of ProbeImage propagate; formats it does
// not know (TIFF) pass unchecked.
void CheckImagePixels(const uint8_t* data, size_t size, const std::string& name,
                      uint64_t max_pixels);

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
// Throws Error(kBadInput) for a missing path, an empty directory, a glob matching nothing,
// or a source that exists but is neither a directory nor a regular file (a FIFO, /dev/zero).
std::vector<std::string> ExpandSources(const std::vector<std::string>& sources);

}  // namespace cvdeploy
