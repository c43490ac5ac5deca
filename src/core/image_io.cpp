// SPDX-License-Identifier: Apache-2.0
// Image decoding with input validation. OpenCV's imdecode happily returns half-grey
// pictures for truncated JPEGs and prints libjpeg warnings, so container integrity is
// checked from the bytes before decoding, and every failure names the input.
#include <glob.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <limits>
#include <opencv2/imgcodecs.hpp>

#include "core/file_util.h"
#include "core/jpeg_decode.h"
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

// The encoded bytes being decoded: a view, so a caller's buffer is never copied.
struct Bytes {
  const uint8_t* ptr;
  size_t n;
  const uint8_t* data() const { return ptr; }
  size_t size() const { return n; }
  bool empty() const { return n == 0; }
  const uint8_t* begin() const { return ptr; }
  const uint8_t* end() const { return ptr + n; }
  uint8_t operator[](size_t i) const { return ptr[i]; }
};

bool StartsWith(const Bytes& b, std::initializer_list<uint8_t> magic) {
  if (b.size() < magic.size()) return false;
  return std::equal(magic.begin(), magic.end(), b.begin());
}

// Returns "" when the bytes look like a complete image of a known container, else the reason.
std::string CheckContainer(const Bytes& b) {
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

// Reads a baseline/progressive JPEG's frame size from its SOF marker; false if not found.
bool JpegSize(const Bytes& b, cv::Size* size) {
  size_t i = 2;  // after SOI
  while (i + 4 <= b.size()) {
    if (b[i] != 0xFF) return false;
    const uint8_t marker = b[i + 1];
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    const size_t length = (static_cast<size_t>(b[i + 2]) << 8) | b[i + 3];
    const bool sof =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (i + 9 > b.size()) return false;
      size->height = (b[i + 5] << 8) | b[i + 6];
      size->width = (b[i + 7] << 8) | b[i + 8];
      return size->width > 0 && size->height > 0;
    }
    if (marker == 0xDA || length < 2) return false;  // start of scan before any frame header
    i += 2 + length;
  }
  return false;
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

cv::Mat DecodeImageForModel(const std::vector<uint8_t>& bytes, const std::string& name,
                            cv::Size model_input, cv::Size* original) {
  return DecodeImageForModel(bytes.data(), bytes.size(), name, model_input, original);
}

cv::Mat DecodeImageForModel(const uint8_t* data, size_t size, const std::string& name,
                            cv::Size model_input, cv::Size* original) {
  const Bytes bytes{data, data == nullptr ? 0 : size};
  if (bytes.empty()) throw BadInput(name + ": file is empty (0 bytes)");
  if (std::string reason = CheckContainer(bytes); !reason.empty())
    throw BadInput(name + ": " + reason);
  int flags = cv::IMREAD_COLOR;
  cv::Size full;
  int factor = 1;
  if (model_input.area() > 0 && JpegSize(bytes, &full)) {
    // Checked in both orientations, since EXIF orientation may transpose the decoded image.
    factor = 8 / core::ChooseJpegScale(full, model_input);
    if (factor == 2) flags = cv::IMREAD_REDUCED_COLOR_2;
    if (factor == 4) flags = cv::IMREAD_REDUCED_COLOR_4;
    if (factor == 8) flags = cv::IMREAD_REDUCED_COLOR_8;
  }
  cv::Mat image;
  if (StartsWith(bytes, {0xFF, 0xD8, 0xFF})) {
    // The libjpeg-turbo path decodes or refuses; OpenCV only gets JPEGs it has checked (so
    // OpenCV's lenient fallback never turns corrupt data into a half-grey picture).
    std::string reason;
    if (core::DecodeJpegBgr(bytes.data(), bytes.size(), factor, &image, &reason) ==
        core::JpegDecodeStatus::kCorrupt) {
      throw BadInput(name + ": corrupt JPEG data: " + reason);
    }
  }
  if (image.empty()) {
    if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
      throw BadInput(name + ": image file is " + std::to_string(bytes.size()) +
                     " bytes, more than the decoder accepts (2147483647)");
    }
    try {
      image = cv::imdecode(
          cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, const_cast<uint8_t*>(bytes.data())),
          flags);
    } catch (const cv::Exception& e) {
      throw BadInput(name + ": cannot decode image: " + e.err);
    }
  }
  if (image.empty()) throw BadInput(name + ": corrupt or unsupported image data");
  if (original) {
    *original = image.size();
    if (factor > 1) {
      // libjpeg rounds scaled sizes up; EXIF orientation may have transposed the image.
      const int scaled_w = (full.width + factor - 1) / factor;
      const int scaled_h = (full.height + factor - 1) / factor;
      const bool transposed = image.cols != scaled_w && image.cols == scaled_h;
      *original = transposed ? cv::Size(full.height, full.width) : full;
    }
  }
  return image;
}

cv::Mat DecodeImage(const std::vector<uint8_t>& bytes, const std::string& name) {
  return DecodeImageForModel(bytes, name, cv::Size(), nullptr);
}

void CheckImagePixels(const uint8_t* data, size_t size, const std::string& name,
                      uint64_t max_pixels) {
  if (max_pixels == 0) return;
  const ImageHeader header = ProbeImage(data, size, name);
  const uint64_t pixels =
      static_cast<uint64_t>(header.width) * static_cast<uint64_t>(header.height);
  if (pixels > max_pixels) {
    throw LimitError("max_pixels", name + ": image is " + std::to_string(header.width) + "x" +
                                       std::to_string(header.height) + " = " +
                                       std::to_string(pixels) + " pixels, more than the limit " +
                                       std::to_string(max_pixels));
  }
}

cv::Mat ReadImage(const std::string& path, uint64_t max_pixels) {
  return ReadImageForModel(path, cv::Size(), nullptr, max_pixels);
}

cv::Mat ReadImageForModel(const std::string& path, cv::Size model_input, cv::Size* original,
                          uint64_t max_pixels) {
  const std::vector<uint8_t> bytes = core::ReadFileBytes(path);
  CheckImagePixels(bytes.data(), bytes.size(), path, max_pixels);
  return DecodeImageForModel(bytes, path, model_input, original);
}

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
      core::RefuseNonRegularFile(source);  // a FIFO or /dev/zero: refused, never read
      files.push_back(source);
    } else {
      throw BadInput(source + ": No such file or directory");
    }
  }
  return files;
}

}  // namespace cvdeploy
