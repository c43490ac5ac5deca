// SPDX-License-Identifier: Apache-2.0
#include "support/crafted_images.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

namespace cvdeploy::testing {
namespace {

void Put16(std::vector<uint8_t>* out, bool little, uint32_t v) {
  const uint8_t lo = static_cast<uint8_t>(v), hi = static_cast<uint8_t>(v >> 8);
  out->push_back(little ? lo : hi);
  out->push_back(little ? hi : lo);
}

void Put32(std::vector<uint8_t>* out, bool little, uint32_t v) {
  Put16(out, little, little ? v & 0xFFFF : v >> 16);
  Put16(out, little, little ? v >> 16 : v & 0xFFFF);
}

// Offset of the first SOFn marker's length field; throws when there is none.
size_t FrameHeaderOffset(const std::vector<uint8_t>& jpeg) {
  size_t i = 2;
  while (i + 4 <= jpeg.size() && jpeg[i] == 0xFF) {
    const uint8_t marker = jpeg[i + 1];
    const size_t length = (static_cast<size_t>(jpeg[i + 2]) << 8) | jpeg[i + 3];
    if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
      return i + 2;
    }
    i += 2 + length;
  }
  throw std::runtime_error("JPEG without a frame header");
}

}  // namespace

std::vector<uint8_t> ExifTiff(bool little, uint32_t ifd, const std::vector<uint8_t>& tail) {
  std::vector<uint8_t> tiff = {static_cast<uint8_t>(little ? 'I' : 'M'),
                               static_cast<uint8_t>(little ? 'I' : 'M')};
  Put16(&tiff, little, 42);
  Put32(&tiff, little, ifd);
  tiff.insert(tiff.end(), tail.begin(), tail.end());
  return tiff;
}

std::vector<uint8_t> ExifTiffWithOrientation(bool little, uint16_t value) {
  std::vector<uint8_t> tail;
  Put16(&tail, little, 1);       // one entry
  Put16(&tail, little, 0x0112);  // Orientation
  Put16(&tail, little, 3);       // SHORT
  Put32(&tail, little, 1);       // count 1
  Put16(&tail, little, value);   // value, left-justified in the 4-byte field
  Put16(&tail, little, 0);
  Put32(&tail, little, 0);  // no next IFD
  return ExifTiff(little, 8, tail);
}

std::vector<uint8_t> JpegWithExif(const std::vector<uint8_t>& jpeg,
                                  const std::vector<uint8_t>& tiff) {
  if (jpeg.size() < 2) throw std::runtime_error("not a JPEG");
  const size_t length = 2 + 6 + tiff.size();  // length field + "Exif\0\0" + TIFF
  if (length > 0xFFFF) throw std::runtime_error("Exif segment too long");
  std::vector<uint8_t> out(jpeg.begin(), jpeg.begin() + 2);  // SOI
  for (uint8_t b : {uint8_t{0xFF}, uint8_t{0xE1}, static_cast<uint8_t>(length >> 8),
                    static_cast<uint8_t>(length), uint8_t{'E'}, uint8_t{'x'}, uint8_t{'i'},
                    uint8_t{'f'}, uint8_t{0}, uint8_t{0}}) {
    out.push_back(b);
  }
  out.insert(out.end(), tiff.begin(), tiff.end());
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

std::vector<uint8_t> TruncatedJpegWithEoi(const std::vector<uint8_t>& jpeg, size_t keep) {
  std::vector<uint8_t> out(jpeg.begin(), jpeg.begin() + std::min(keep, jpeg.size()));
  out.push_back(0xFF);
  out.push_back(0xD9);
  return out;
}

std::vector<uint8_t> JpegWithFrameSize(const std::vector<uint8_t>& jpeg, int width, int height) {
  std::vector<uint8_t> out = jpeg;
  const size_t sof = FrameHeaderOffset(out);  // Lf(2) P(1) Y(2) X(2)
  out.at(sof + 3) = static_cast<uint8_t>(height >> 8);
  out.at(sof + 4) = static_cast<uint8_t>(height);
  out.at(sof + 5) = static_cast<uint8_t>(width >> 8);
  out.at(sof + 6) = static_cast<uint8_t>(width);
  return out;
}

std::vector<uint8_t> GradientPng(int width, int height) {
  cv::Mat image(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      image.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<uint8_t>((x + y) % 256), static_cast<uint8_t>(x % 256), 114);
    }
  }
  std::vector<uint8_t> png;
  if (!cv::imencode(".png", image, png)) throw std::runtime_error("cannot encode a PNG");
  return png;
}

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot read " + path);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

std::string WriteBytes(const std::string& dir, const std::string& name,
                       const std::vector<uint8_t>& bytes) {
  const std::string path = (std::filesystem::path(dir) / name).string();
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  file.close();
  if (!file) throw std::runtime_error("cannot write " + path);
  return path;
}

}  // namespace cvdeploy::testing
