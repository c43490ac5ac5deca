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

bool HasImageExtension(const std::string& path);
bool HasVideoExtension(const std::string& path);

// Expands predict sources: files, directories (their images and videos, sorted), globs.
// Throws Error(kBadInput) for a missing path, an empty directory or a glob matching nothing.
std::vector<std::string> ExpandSources(const std::vector<std::string>& sources);

}  // namespace cvdeploy
