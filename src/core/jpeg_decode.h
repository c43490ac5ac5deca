// SPDX-License-Identifier: Apache-2.0
// JPEG decoding straight into BGR with libjpeg-turbo. OpenCV's imdecode runs the same
// library but takes about 2.5x as long on bus.jpg (6.7 vs 2.6 ms here), with pixel-identical
// output on every sample image; this path is used whenever it applies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include <opencv2/core.hpp>

namespace cvdeploy::core {

enum class JpegDecodeStatus {
  kDecoded,    // *out holds the BGR image
  kUseOpenCv,  // valid data this path does not decode (EXIF orientation other than "normal",
               // CMYK/YCCK, a denom other than 1, 2, 4, 8): decode it with OpenCV
  kCorrupt,    // libjpeg reported an error or a warning (truncated, corrupt or inconsistent
               // data): refuse the image; *reason (optional) says what, e.g. "premature end of
               // data segment"
};

// Decodes at 1/denom scale (denom 1, 2, 4 or 8; libjpeg rounds sizes up). `out` is only
// written on kDecoded. Every libjpeg message is captured, never printed. Data that OpenCV
// would decode (kUseOpenCv) has been checked with the same libjpeg first, so OpenCV never
// meets corrupt JPEG data through this path (and prints nothing). Safe on any bytes.
JpegDecodeStatus DecodeJpegBgr(const uint8_t* data, size_t size, int denom, cv::Mat* out,
                               std::string* reason = nullptr);

// The JPEG scales M/8 decoded for a model input, largest first. libjpeg-turbo can decode at
// any M/8 (1..16), but only 8/8, 4/8, 2/8 and 1/8 have SIMD inverse DCTs: 5/8, 6/8 and 7/8 are
// 1.4-2.8x slower than the full-size decode (bus.jpg: 5.0 ms at 5/8 against 3.1 ms at 8/8,
// decode plus the letterbox resize 5.9 against 4.4 ms; docs/performance.md "Decode at scale"),
// so only the powers of two are used.
inline constexpr std::initializer_list<int> kJpegScaleNums = {8, 4, 2, 1};

// The numerator M of the smallest scale M/8 among `nums` (each in 1..8) at which an image of
// `image` pixels, as libjpeg sizes it (ceil(side * M / 8)), still covers the resized part of a
// letterbox into `target` (Ultralytics' arithmetic: both sides times min(target.h / h,
// target.w / w)) in both dimensions. With `either_orientation`, the scale must also cover the
// letterbox of the transposed image (EXIF orientation may swap the sides). 8 (full size) when
// no smaller scale qualifies or a size is not positive.
int ChooseJpegScale(cv::Size image, cv::Size target, bool either_orientation = true,
                    std::initializer_list<int> nums = kJpegScaleNums);

// EXIF orientation tag (1..8) of a JPEG's APP1 segment; 1 when absent or unreadable.
// Safe on any bytes (the JPEG comes from a client): reads only inside [data, data + size),
// every offset checked in 64-bit arithmetic; a malformed segment means "1", never a throw.
int JpegExifOrientation(const uint8_t* data, size_t size);

// Orientation (1..8) from a TIFF structure: the body of an Exif APP1 segment after
// "Exif\0\0" (byte order mark, magic 42, IFD0 offset, IFD0 entries). 1 when the tag is
// absent or any offset, count or entry lies outside [t, t + n). Same safety contract.
int TiffOrientation(const uint8_t* t, size_t n);

}  // namespace cvdeploy::core
