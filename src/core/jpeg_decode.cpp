// SPDX-License-Identifier: Apache-2.0
#include "core/jpeg_decode.h"

#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE
#include <cstring>

#include <jpeglib.h>

namespace cvdeploy::core {
namespace {

struct ErrorManager {
  jpeg_error_mgr base;  // first member: libjpeg casts the pointer back
  std::jmp_buf jump;
};

[[noreturn]] void OnError(j_common_ptr info) {
  std::longjmp(reinterpret_cast<ErrorManager*>(info->err)->jump, 1);
}
// Counts warnings (corrupt or truncated data) without printing them.
void Silent(j_common_ptr info, int level) {
  if (level < 0) ++info->err->num_warnings;
}
void SilentOutput(j_common_ptr) {}

uint16_t Read16(const uint8_t* p, bool little) {
  return little ? static_cast<uint16_t>(p[0] | (p[1] << 8))
                : static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t Read32(const uint8_t* p, bool little) {
  return little ? (p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24))
                : ((static_cast<uint32_t>(p[0]) << 24) | (p[1] << 16) | (p[2] << 8) | p[3]);
}

// Orientation from a TIFF structure (the body of an Exif APP1 segment after "Exif\0\0").
int TiffOrientation(const uint8_t* t, size_t n) {
  if (n < 8) return 1;
  const bool little = t[0] == 'I' && t[1] == 'I';
  if (!little && !(t[0] == 'M' && t[1] == 'M')) return 1;
  const uint32_t ifd = Read32(t + 4, little);
  if (ifd + 2 > n) return 1;
  const uint16_t entries = Read16(t + ifd, little);
  for (uint32_t i = 0; i < entries; ++i) {
    const size_t e = ifd + 2 + 12 * static_cast<size_t>(i);
    if (e + 12 > n) return 1;
    if (Read16(t + e, little) == 0x0112) {
      const int v = Read16(t + e + 8, little);
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

// The decode proper. No C++ object with a destructor may live in this frame: a libjpeg
// error longjmps back to the setjmp below.
bool Decode(const uint8_t* data, size_t size, int denom, cv::Mat* out) {
  jpeg_decompress_struct info;
  ErrorManager errors;
  info.err = jpeg_std_error(&errors.base);
  errors.base.error_exit = OnError;
  errors.base.emit_message = Silent;
  errors.base.output_message = SilentOutput;
  jpeg_create_decompress(&info);
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&info);
    return false;
  }
  jpeg_mem_src(&info, data, static_cast<unsigned long>(size));
  jpeg_read_header(&info, TRUE);
  if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&info);
    return false;
  }
  info.scale_num = 1;
  info.scale_denom = static_cast<unsigned int>(denom);
  info.out_color_space = JCS_EXT_BGR;
  jpeg_start_decompress(&info);
  out->create(static_cast<int>(info.output_height), static_cast<int>(info.output_width), CV_8UC3);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = out->ptr<uint8_t>(static_cast<int>(info.output_scanline));
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  const bool clean = errors.base.num_warnings == 0;
  jpeg_destroy_decompress(&info);
  return clean;
}

}  // namespace

int JpegExifOrientation(const uint8_t* data, size_t size) {
  size_t i = 2;  // after SOI
  while (i + 4 <= size && data[i] == 0xFF) {
    const uint8_t marker = data[i + 1];
    const size_t length = (static_cast<size_t>(data[i + 2]) << 8) | data[i + 3];
    if (marker == 0xDA || length < 2) break;  // image data starts: no more metadata
    if (marker == 0xE1 && i + 4 + length - 2 <= size && length >= 8 &&
        std::memcmp(data + i + 4, "Exif\0\0", 6) == 0) {
      return TiffOrientation(data + i + 10, length - 8);
    }
    i += 2 + length;
  }
  return 1;
}

bool DecodeJpegBgr(const uint8_t* data, size_t size, int denom, cv::Mat* out) {
  if (denom != 1 && denom != 2 && denom != 4 && denom != 8) return false;
  if (JpegExifOrientation(data, size) != 1) return false;  // OpenCV applies the rotation
  cv::Mat image;
  if (!Decode(data, size, denom, &image)) return false;
  *out = image;
  return true;
}

}  // namespace cvdeploy::core
