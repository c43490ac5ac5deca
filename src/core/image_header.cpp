// SPDX-License-Identifier: Apache-2.0
// Image header probing: format and pixel dimensions from the first bytes of an encoded
// image, without decoding it, so a front end can refuse an image whose decoded size would be
// too large (a decompression bomb) before any pixel memory is allocated. Every read is
// bounds-checked against `size`; malformed input ends in Error(kBadInput), never a crash.
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "cvdeploy/error.h"
#include "cvdeploy/image.h"

namespace cvdeploy {
namespace {

// Bytes [offset, offset + magic size) equal `magic` (false when the data is shorter).
template <size_t N>
bool Matches(const uint8_t* data, size_t size, size_t offset, const char (&magic)[N]) {
  constexpr size_t kLength = N - 1;  // without the terminating NUL
  return size >= offset + kLength && std::memcmp(data + offset, magic, kLength) == 0;
}

uint32_t Be16(const uint8_t* p) { return (uint32_t{p[0]} << 8) | p[1]; }
uint32_t Be32(const uint8_t* p) { return (Be16(p) << 16) | Be16(p + 2); }
uint32_t Le16(const uint8_t* p) { return uint32_t{p[0]} | (uint32_t{p[1]} << 8); }
uint32_t Le24(const uint8_t* p) { return Le16(p) | (uint32_t{p[2]} << 16); }
uint32_t Le32(const uint8_t* p) { return Le24(p) | (uint32_t{p[3]} << 24); }

// CRC-32 as PNG defines it (ISO 3309, reflected 0xEDB88320), over a few header bytes only.
uint32_t Crc32(const uint8_t* data, size_t size) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

class Prober {
 public:
  Prober(const uint8_t* data, size_t size, const std::string& name)
      : data_(data), size_(size), name_(name) {}

  ImageHeader Probe() const {
    if (Matches(data_, size_, 0, "\xFF\xD8\xFF")) return Jpeg();
    if (Matches(data_, size_, 0, "\x89PNG\r\n\x1A\n")) return Png();
    if (Matches(data_, size_, 0, "RIFF") && Matches(data_, size_, 8, "WEBP")) return Webp();
    if (Matches(data_, size_, 0, "BM")) return Bmp();
    return {};
  }

 private:
  Error Fail(const std::string& reason) const { return BadInput(name_ + ": " + reason); }

  // Throws "truncated FORMAT header" unless `count` bytes from `offset` are present.
  void Need(size_t offset, size_t count, const char* format) const {
    if (offset > size_ || size_ - offset < count) {
      throw Fail(std::string("truncated ") + format + " header");
    }
  }

  ImageHeader Make(ImageFormat format, int64_t width, int64_t height, const char* what) const {
    if (width <= 0 || height <= 0 || width > std::numeric_limits<int>::max() ||
        height > std::numeric_limits<int>::max()) {
      throw Fail(std::string("invalid ") + what + " dimensions " + std::to_string(width) + "x" +
                 std::to_string(height));
    }
    return {format, static_cast<int>(width), static_cast<int>(height)};
  }

  // Walks the marker segments after SOI (ITU T.81 B.1.1) up to the first frame header.
  // Strict: a byte other than 0xFF where a marker must start is an error (libjpeg would skip
  // it with a warning), and so is a scan or end-of-image before any frame header.
  ImageHeader Jpeg() const {
    size_t i = 2;
    for (;;) {
      if (i >= size_) throw Fail("truncated JPEG header (no frame header before the data ends)");
      if (data_[i] != 0xFF) {
        throw Fail("malformed JPEG header (no marker at offset " + std::to_string(i) + ")");
      }
      while (i < size_ && data_[i] == 0xFF) ++i;  // a marker may be preceded by fill bytes
      if (i >= size_) throw Fail("truncated JPEG header (no frame header before the data ends)");
      const uint8_t marker = data_[i++];
      if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // TEM, RSTn: no length
      if (marker == 0x00 || marker == 0xD8 || marker == 0xD9 || marker == 0xDA) {
        throw Fail("malformed JPEG header (marker 0x" + Hex(marker) + " before the frame header)");
      }
      Need(i, 2, "JPEG");
      const size_t length = Be16(data_ + i);  // includes its own two bytes
      if (length < 2) {
        throw Fail("malformed JPEG header (segment length " + std::to_string(length) + ")");
      }
      const bool sof =
          marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
      if (sof) {
        // Lf, P, Y, X, Nf, then three bytes per component.
        Need(i, 8, "JPEG");
        const size_t components = data_[i + 7];
        if (components == 0 || length != 8 + 3 * components) {
          throw Fail("malformed JPEG header (frame header length " + std::to_string(length) +
                     " for " + std::to_string(components) + " components)");
        }
        Need(i, length, "JPEG");
        return Make(ImageFormat::kJpeg, Be16(data_ + i + 5), Be16(data_ + i + 3), "JPEG");
      }
      i += length;
    }
  }

  // Signature, then IHDR, which PNG requires to be the first chunk (RFC 2083 / ISO 15948).
  ImageHeader Png() const {
    Need(8, 8 + 13 + 4, "PNG");
    const uint8_t* chunk = data_ + 8;
    if (Be32(chunk) != 13 || !Matches(data_, size_, 12, "IHDR")) {
      throw Fail("malformed PNG header (first chunk is not a 13-byte IHDR)");
    }
    const uint8_t* ihdr = chunk + 8;
    if (Crc32(chunk + 4, 4 + 13) != Be32(ihdr + 13)) {
      throw Fail("malformed PNG header (IHDR checksum mismatch)");
    }
    const uint32_t bit_depth = ihdr[8], color_type = ihdr[9];
    const bool depth_ok = [&] {
      switch (color_type) {
        case 0:  // greyscale
          return bit_depth == 1 || bit_depth == 2 || bit_depth == 4 || bit_depth == 8 ||
                 bit_depth == 16;
        case 3:  // palette
          return bit_depth == 1 || bit_depth == 2 || bit_depth == 4 || bit_depth == 8;
        case 2:
        case 4:
        case 6:  // RGB, grey + alpha, RGBA
          return bit_depth == 8 || bit_depth == 16;
        default:
          return false;
      }
    }();
    if (!depth_ok || ihdr[10] != 0 || ihdr[11] != 0 || ihdr[12] > 1) {
      throw Fail("malformed PNG header (invalid IHDR fields)");
    }
    // Dimensions are at most 2^31 - 1 by the spec; Make rejects larger ones and zero.
    return Make(ImageFormat::kPng, Be32(ihdr), Be32(ihdr + 4), "PNG");
  }

  // RIFF container with the first chunk VP8 (lossy), VP8L (lossless) or VP8X (extended),
  // as in Google's "WebP Container Specification" and RFC 9649.
  ImageHeader Webp() const {
    Need(12, 8, "WebP");
    const uint8_t* chunk = data_ + 12;
    const uint32_t chunk_size = Le32(chunk + 4);
    const uint8_t* payload = chunk + 8;
    const auto need_payload = [&](uint32_t count) {
      if (chunk_size < count) throw Fail("malformed WebP header (first chunk too small)");
      Need(20, count, "WebP");
    };
    if (Matches(data_, size_, 12, "VP8 ")) {
      // Frame tag (3 bytes, bit 0 clear on a key frame), start code, 14-bit sizes (RFC 6386).
      need_payload(10);
      if ((payload[0] & 1) != 0 || !Matches(data_, size_, 23, "\x9D\x01\x2A")) {
        throw Fail("malformed WebP header (VP8 data does not start with a key frame)");
      }
      return Make(ImageFormat::kWebp, Le16(payload + 6) & 0x3FFF, Le16(payload + 8) & 0x3FFF,
                  "WebP");
    }
    if (Matches(data_, size_, 12, "VP8L")) {
      // Signature 0x2F, then 14 bits width - 1, 14 bits height - 1, alpha bit, 3-bit version 0.
      need_payload(5);
      const uint32_t bits = Le32(payload + 1);
      if (payload[0] != 0x2F || (bits >> 29) != 0) {
        throw Fail("malformed WebP header (bad VP8L signature or version)");
      }
      return Make(ImageFormat::kWebp, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, "WebP");
    }
    if (Matches(data_, size_, 12, "VP8X")) {
      // Flags, 3 reserved bytes, 24-bit canvas width - 1 and height - 1.
      need_payload(10);
      return Make(ImageFormat::kWebp, int64_t{Le24(payload + 4)} + 1,
                  int64_t{Le24(payload + 7)} + 1, "WebP");
    }
    throw Fail("malformed WebP header (first chunk is not VP8, VP8L or VP8X)");
  }

  // 14-byte file header, then a DIB header whose first field is its own size.
  ImageHeader Bmp() const {
    Need(14, 4, "BMP");
    const uint8_t* dib = data_ + 14;
    const uint32_t dib_size = Le32(dib);
    if (dib_size == 12) {  // BITMAPCOREHEADER (OS/2 1.x): unsigned 16-bit sizes
      Need(14, 12, "BMP");
      return Make(ImageFormat::kBmp, Le16(dib + 4), Le16(dib + 6), "BMP");
    }
    if (dib_size < 40) {
      throw Fail("malformed BMP header (unsupported header size " + std::to_string(dib_size) + ")");
    }
    // BITMAPINFOHEADER and its extensions (V2..V5, OS/2 2.x): signed 32-bit sizes; a
    // negative height means rows are stored top-down, so its absolute value is the height.
    Need(14, 16, "BMP");
    const int64_t width = static_cast<int32_t>(Le32(dib + 4));
    const int64_t height = static_cast<int32_t>(Le32(dib + 8));
    return Make(ImageFormat::kBmp, width, height < 0 ? -height : height, "BMP");
  }

  static std::string Hex(uint8_t byte) {
    static constexpr char kDigits[] = "0123456789ABCDEF";
    return {kDigits[byte >> 4], kDigits[byte & 15]};
  }

  const uint8_t* data_;
  size_t size_;
  const std::string& name_;
};

}  // namespace

ImageHeader ProbeImage(const uint8_t* data, size_t size, const std::string& name) {
  if (data == nullptr) size = 0;
  return Prober(data, size, name).Probe();
}

std::string ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return "jpeg";
    case ImageFormat::kPng:
      return "png";
    case ImageFormat::kWebp:
      return "webp";
    case ImageFormat::kBmp:
      return "bmp";
    case ImageFormat::kUnknown:
      break;
  }
  return "unknown";
}

}  // namespace cvdeploy
