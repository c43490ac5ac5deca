// SPDX-License-Identifier: Apache-2.0
// Image decoding with input validation. OpenCV's imdecode happily returns half-grey
// pictures for truncated JPEGs and prints libjpeg warnings, so container integrity is
// checked from the bytes before decoding, and every failure names the input.
#include <glob.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>

#include "core/file_util.h"
#include "cvdeploy/error.h"
#include "cvdeploy/image.h"

namespace cvdeploy {
namespace {

std::string LowerExtension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext;
}

bool StartsWith(const std::vector<uint8_t>& b, std::initializer_list<uint8_t> magic) {
  if (b.size() < magic.size()) return false;
  return std::equal(magic.begin(), magic.end(), b.begin());
}

// Returns "" when the bytes look like a complete image of a known container, else the reason.
std::string CheckContainer(const std::vector<uint8_t>& b) {
  if (StartsWith(b, {0xFF, 0xD8, 0xFF})) {
    // A complete JPEG ends with the EOI marker, possibly followed by padding bytes.
    size_t end = b.size();
    while (end > 2 && (b[end - 1] == 0x00 || b[end - 1] == 0x0A || b[end - 1] == 0x0D)) --end;
    if (end < 4 || b[end - 2] != 0xFF || b[end - 1] != 0xD9) {
      return "truncated JPEG (no end-of-image marker)";
    }
    return "";
  }
  if (StartsWith(b, {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A})) {
    static constexpr uint8_t kIend[] = {'I', 'E', 'N', 'D'};
    auto it = std::search(b.end() - std::min<size_t>(b.size(), 64), b.end(), kIend, kIend + 4);
    if (it == b.end()) return "truncated PNG (no IEND chunk)";
    return "";
  }
  if (StartsWith(b, {'B', 'M'}) || StartsWith(b, {'I', 'I', 0x2A, 0x00}) ||
      StartsWith(b, {'M', 'M', 0x00, 0x2A})) {
    return "";
  }
  if (b.size() >= 12 && StartsWith(b, {'R', 'I', 'F', 'F'}) && b[8] == 'W' && b[9] == 'E' &&
      b[10] == 'B' && b[11] == 'P') {
    return "";
  }
  return "not an image (unrecognized format; expected JPEG, PNG, BMP, WebP or TIFF)";
}

}  // namespace

bool HasImageExtension(const std::string& path) {
  static const char* kExts[] = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"};
  const std::string ext = LowerExtension(path);
  return std::any_of(std::begin(kExts), std::end(kExts), [&](const char* e) { return ext == e; });
}

bool HasVideoExtension(const std::string& path) {
  static const char* kExts[] = {".mp4", ".avi", ".mov",  ".mkv", ".webm",
                                ".m4v", ".mpg", ".mpeg", ".wmv"};
  const std::string ext = LowerExtension(path);
  return std::any_of(std::begin(kExts), std::end(kExts), [&](const char* e) { return ext == e; });
}

cv::Mat DecodeImage(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (bytes.empty()) throw BadInput(name + ": file is empty (0 bytes)");
  if (std::string reason = CheckContainer(bytes); !reason.empty())
    throw BadInput(name + ": " + reason);
  cv::Mat image;
  try {
    image = cv::imdecode(
        cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, const_cast<uint8_t*>(bytes.data())),
        cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    throw BadInput(name + ": cannot decode image: " + e.err);
  }
  if (image.empty()) throw BadInput(name + ": corrupt or unsupported image data");
  return image;
}

cv::Mat ReadImage(const std::string& path) { return DecodeImage(core::ReadFileBytes(path), path); }

std::vector<std::string> ExpandSources(const std::vector<std::string>& sources) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const std::string& source : sources) {
    std::error_code ec;
    if (source.find_first_of("*?[") != std::string::npos && !fs::exists(source, ec)) {
      glob_t g{};
      const int rc = ::glob(source.c_str(), 0, nullptr, &g);
      std::vector<std::string> matches;
      for (size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) {
        if (fs::is_regular_file(g.gl_pathv[i], ec)) matches.emplace_back(g.gl_pathv[i]);
      }
      globfree(&g);
      if (matches.empty()) throw BadInput(source + ": no files match this pattern");
      std::sort(matches.begin(), matches.end());
      files.insert(files.end(), matches.begin(), matches.end());
    } else if (fs::is_directory(source, ec)) {
      std::vector<std::string> entries;
      for (const auto& entry : fs::directory_iterator(source, ec)) {
        const std::string p = entry.path().string();
        if (entry.is_regular_file(ec) && (HasImageExtension(p) || HasVideoExtension(p))) {
          entries.push_back(p);
        }
      }
      if (ec) throw BadInput(source + ": cannot list directory: " + ec.message());
      if (entries.empty()) throw BadInput(source + ": directory contains no images or videos");
      std::sort(entries.begin(), entries.end());
      files.insert(files.end(), entries.begin(), entries.end());
    } else if (fs::exists(source, ec)) {
      files.push_back(source);
    } else {
      throw BadInput(source + ": No such file or directory");
    }
  }
  return files;
}

}  // namespace cvdeploy
