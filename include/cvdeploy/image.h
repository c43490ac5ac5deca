// SPDX-License-Identifier: Apache-2.0
// Image and video input with errors that name the input and the reason.
#pragma once

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
cv::Mat ReadImageForModel(const std::string& path, cv::Size model_input, cv::Size* original);

bool HasImageExtension(const std::string& path);
bool HasVideoExtension(const std::string& path);

// Expands predict sources: files, directories (their images and videos, sorted), globs.
// Throws Error(kBadInput) for a missing path, an empty directory or a glob matching nothing.
std::vector<std::string> ExpandSources(const std::vector<std::string>& sources);

}  // namespace cvdeploy
