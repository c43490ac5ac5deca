// SPDX-License-Identifier: Apache-2.0
#include "core/jpeg_decode.h"

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE
#include <cstring>
#include <string>

#include <jpeglib.h>
// jerror.h after jpeglib.h: the message codes (J_MESSAGE_CODE).
#include <jerror.h>

namespace cvdeploy::core {
namespace {

struct ErrorManager {
  jpeg_error_mgr base;  // first member: libjpeg casts the pointer back
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];  // the libjpeg message that ended the decode
};

// Any libjpeg error ends the decode: format its message, never print it (libjpeg's default
// writes to stderr, which any client could then fill).
[[noreturn]] void OnError(j_common_ptr info) {
  auto* errors = reinterpret_cast<ErrorManager*>(info->err);
  (*info->err->format_message)(info, errors->message);
  std::longjmp(errors->jump, 1);
}

// Warnings (level -1) mean corrupt or missing data ("Premature end of JPEG file", "Corrupt
// JPEG data: bad Huffman code", ...): libjpeg would go on and fill the rest with grey, so a
// warning is an error here. Trace messages (level >= 0) are ignored.
void OnMessage(j_common_ptr info, int level) {
  if (level < 0) OnError(info);
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

}  // namespace

// Every offset and count below comes from the file, so each is widened to uint64_t before
// any addition and compared against the bytes that remain: no sum can wrap (a 32-bit
// "ifd + 2 > n" wrapped for ifd 0xFFFFFFFE and read 4 GB past the buffer).
int TiffOrientation(const uint8_t* t, size_t n) {
  if (t == nullptr || n < 8) return 1;
  const bool little = t[0] == 'I' && t[1] == 'I';
  if (!little && !(t[0] == 'M' && t[1] == 'M')) return 1;
  if (Read16(t + 2, little) != 42) return 1;  // TIFF magic
  const uint64_t size = n;
  const uint64_t ifd = Read32(t + 4, little);
  if (ifd > size || size - ifd < 2) return 1;  // no room for the entry count
  const uint64_t entries = Read16(t + ifd, little);
  const uint64_t table = ifd + 2;  // <= size, checked above
  for (uint64_t i = 0; i < entries; ++i) {
    const uint64_t e = table + 12 * i;        // at most 2^32 + 2 + 12 * 65535: no wrap
    if (e > size || size - e < 12) return 1;  // entry table truncated
    if (Read16(t + e, little) == 0x0112) {
      const int v = Read16(t + e + 8, little);  // SHORT value, left-justified in 4 bytes
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

namespace {

enum class Outcome { kDecoded, kCmyk, kCorrupt };

// The decode proper, into `out` (keep_pixels) or into one scratch row from libjpeg's pool,
// only to check the data. No C++ object with a destructor may live in this frame: a libjpeg
// error or warning longjmps back to the setjmp below. `errors` outlives the call.
Outcome Decode(const uint8_t* data, size_t size, unsigned int denom, bool keep_pixels, cv::Mat* out,
               ErrorManager* errors) {
  jpeg_decompress_struct info;
  info.err = jpeg_std_error(&errors->base);
  errors->base.error_exit = OnError;
  errors->base.emit_message = OnMessage;
  errors->base.output_message = SilentOutput;
  errors->message[0] = '\0';
  jpeg_create_decompress(&info);
  if (setjmp(errors->jump)) {
    jpeg_destroy_decompress(&info);
    return Outcome::kCorrupt;
  }
  jpeg_mem_src(&info, data, static_cast<unsigned long>(size));
  jpeg_read_header(&info, TRUE);
  const bool cmyk = info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK;
  if (cmyk && keep_pixels) {
    jpeg_destroy_decompress(&info);
    return Outcome::kCmyk;
  }
  info.scale_num = 1;
  info.scale_denom = denom;
  info.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_BGR;
  jpeg_start_decompress(&info);
  if (keep_pixels) {
    out->create(static_cast<int>(info.output_height), static_cast<int>(info.output_width), CV_8UC3);
    while (info.output_scanline < info.output_height) {
      JSAMPROW row = out->ptr<uint8_t>(static_cast<int>(info.output_scanline));
      jpeg_read_scanlines(&info, &row, 1);
    }
  } else {
    JSAMPARRAY row = (*info.mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(&info), JPOOL_IMAGE,
                                               info.output_width * info.output_components, 1);
    while (info.output_scanline < info.output_height) jpeg_read_scanlines(&info, row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return Outcome::kDecoded;
}

// libjpeg's text without its own "Corrupt JPEG data: " prefix (the caller adds one).
std::string Reason(const char* message) {
  static constexpr char kPrefix[] = "Corrupt JPEG data: ";
  std::string text = message[0] != '\0' ? message : "libjpeg error";
  if (text.rfind(kPrefix, 0) == 0) text.erase(0, sizeof(kPrefix) - 1);
  return text;
}

}  // namespace

namespace {

// Whether libjpeg's decode of `image` at M/8 is at least the letterbox's resized size.
bool Covers(cv::Size image, cv::Size target, int m) {
  const double r = std::min(static_cast<double>(target.height) / image.height,
                            static_cast<double>(target.width) / image.width);
  // ceil, not round: never below what the letterbox computes (its round differs at .5 only).
  const int64_t need_w =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(image.width * r - 1e-9)));
  const int64_t need_h =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(image.height * r - 1e-9)));
  const int64_t got_w = (static_cast<int64_t>(image.width) * m + 7) / 8;
  const int64_t got_h = (static_cast<int64_t>(image.height) * m + 7) / 8;
  return got_w >= need_w && got_h >= need_h;
}

}  // namespace

int ChooseJpegScale(cv::Size image, cv::Size target, bool either_orientation,
                    std::initializer_list<int> nums) {
  if (image.width <= 0 || image.height <= 0 || target.width <= 0 || target.height <= 0) return 8;
  int best = 8;
  for (int m : nums) {
    if (m < 1 || m >= best) continue;
    if (!Covers(image, target, m)) continue;
    if (either_orientation && !Covers(cv::Size(image.height, image.width), target, m)) continue;
    best = m;
  }
  return best;
}

int JpegExifOrientation(const uint8_t* data, size_t size) {
  if (data == nullptr || size < 4 || data[0] != 0xFF || data[1] != 0xD8) return 1;
  uint64_t i = 2;  // after SOI
  while (i + 4 <= size && data[i] == 0xFF) {
    const uint8_t marker = data[i + 1];
    const uint64_t length = (static_cast<uint64_t>(data[i + 2]) << 8) | data[i + 3];
    if (marker == 0xDA || marker == 0xD9 || length < 2) break;  // no more metadata
    const uint64_t body = i + 4;  // the segment's bytes after its length field
    const uint64_t body_size = length - 2;
    if (body_size > size - body) break;  // segment runs past the data
    if (marker == 0xE1 && body_size >= 6 && std::memcmp(data + body, "Exif\0\0", 6) == 0) {
      return TiffOrientation(data + body + 6, body_size - 6);
    }
    i = body + body_size;
  }
  return 1;
}

JpegDecodeStatus DecodeJpegBgr(const uint8_t* data, size_t size, int denom, cv::Mat* out,
                               std::string* reason) {
  ErrorManager errors;
  const bool scale_ok = denom == 1 || denom == 2 || denom == 4 || denom == 8;
  // EXIF orientation other than "normal": OpenCV decodes, as it applies the rotation.
  if (scale_ok && JpegExifOrientation(data, size) == 1) {
    cv::Mat image;
    const Outcome outcome =
        Decode(data, size, static_cast<unsigned int>(denom), true, &image, &errors);
    if (outcome == Outcome::kDecoded) {
      *out = image;
      return JpegDecodeStatus::kDecoded;
    }
    if (outcome == Outcome::kCorrupt) {
      if (reason) *reason = Reason(errors.message);
      return JpegDecodeStatus::kCorrupt;
    }
  }
  // OpenCV will decode it with the same libjpeg, which prints its warnings to stderr and
  // fills missing data with grey: check the data here first. At 1/8 scale the entropy
  // decoding, where corruption shows, is still complete; only the IDCT is cheaper.
  if (Decode(data, size, 8, false, nullptr, &errors) == Outcome::kCorrupt) {
    if (reason) *reason = Reason(errors.message);
    return JpegDecodeStatus::kCorrupt;
  }
  return JpegDecodeStatus::kUseOpenCv;
}

}  // namespace cvdeploy::core
