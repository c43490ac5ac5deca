// SPDX-License-Identifier: Apache-2.0
// ProbeImage must report the dimensions the decoder would produce for every supported
// format, reject truncated or malformed headers with BadInput and never read out of bounds
// or allocate on the way; the pointer overload of DecodeImageForModel must behave exactly
// like the vector one.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "cvdeploy/error.h"
#include "cvdeploy/image.h"
#include "support/assets.h"

// Counts heap allocations, to show that probing a huge header allocates nothing.
namespace {
std::atomic<size_t> g_allocations{0};
}  // namespace

// Out of line, so GCC does not inline free() into a caller and see it paired with new.
[[gnu::noinline]] void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace cvdeploy {
namespace {

using Bytes = std::vector<uint8_t>;
using testing::Asset;

ImageHeader Probe(const Bytes& bytes) { return ProbeImage(bytes.data(), bytes.size(), "in.img"); }

// Probes the first `length` bytes from a copy of exactly that size, so an over-read would
// leave the allocation (and show up under AddressSanitizer).
ImageHeader ProbePrefix(const Bytes& bytes, size_t length) {
  const Bytes prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(length));
  return Probe(prefix);
}

// A colourful test picture, so encoders do not collapse it.
cv::Mat Picture(int width, int height, int channels = 3) {
  cv::Mat image(height, width, CV_8UC(channels));
  cv::randu(image, 0, 256);
  return image;
}

Bytes Encode(const std::string& ext, const cv::Mat& image, const std::vector<int>& params = {}) {
  Bytes bytes;
  EXPECT_TRUE(cv::imencode(ext, image, bytes, params)) << ext;
  return bytes;
}

// Whether this OpenCV was built with libwebp. (cv::haveImageReader wants an existing file,
// so reading is checked by decoding an encoded picture.)
bool WebpSupported() {
  if (!cv::haveImageWriter(".webp")) return false;
  Bytes bytes;
  return cv::imencode(".webp", cv::Mat(2, 2, CV_8UC3, cv::Scalar(1, 2, 3)), bytes) &&
         cv::imdecode(bytes, cv::IMREAD_COLOR).size() == cv::Size(2, 2);
}

// The WebP first-chunk FourCC ("VP8 ", "VP8L" or "VP8X").
std::string WebpChunk(const Bytes& bytes) {
  return bytes.size() >= 16 ? std::string(bytes.begin() + 12, bytes.begin() + 16) : "";
}

void ExpectHeader(const Bytes& bytes, ImageFormat format, int width, int height,
                  const std::string& what) {
  ImageHeader header;
  ASSERT_NO_THROW(header = Probe(bytes)) << what;
  EXPECT_EQ(header.format, format) << what;
  EXPECT_EQ(header.width, width) << what;
  EXPECT_EQ(header.height, height) << what;
  // The probe agrees with what the decoder actually produces.
  const cv::Mat decoded = cv::imdecode(bytes, cv::IMREAD_UNCHANGED | cv::IMREAD_IGNORE_ORIENTATION);
  ASSERT_FALSE(decoded.empty()) << what;
  EXPECT_EQ(decoded.cols, width) << what;
  EXPECT_EQ(decoded.rows, height) << what;
}

void ExpectBadInput(const Bytes& bytes, const std::string& what) {
  try {
    const ImageHeader header = Probe(bytes);
    ADD_FAILURE() << what << ": expected BadInput, got " << ImageFormatName(header.format) << " "
                  << header.width << "x" << header.height;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput) << what;
    EXPECT_EQ(std::string(e.what()).rfind("in.img: ", 0), 0u) << what << ": " << e.what();
  }
}

const cv::Size kSizes[] = {{1, 1}, {641, 479}, {3000, 17}, {17, 3000}, {2, 1}};

void PutBe32(Bytes* b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*b)[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void PutLe32(Bytes* b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*b)[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

uint32_t Crc32(const uint8_t* data, size_t size) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
  }
  return ~crc;
}

// Signature and IHDR only (33 bytes): no image data at all.
Bytes PngHeader(uint32_t width, uint32_t height, uint8_t depth = 8, uint8_t color = 2) {
  Bytes b(33, 0);
  const uint8_t start[] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A,
                           0,    0,   0,   13,  'I',  'H',  'D',  'R'};
  std::copy(std::begin(start), std::end(start), b.begin());
  PutBe32(&b, 16, width);
  PutBe32(&b, 20, height);
  b[24] = depth;
  b[25] = color;
  PutBe32(&b, 29, Crc32(b.data() + 12, 17));
  return b;
}

// Length of the shortest prefix that probes successfully, checking on the way that every
// shorter prefix is either unrecognised (shorter than `magic_length`) or BadInput.
size_t ShortestProbedPrefix(const Bytes& bytes, size_t magic_length, const std::string& what) {
  for (size_t length = 0; length <= bytes.size(); ++length) {
    try {
      const ImageHeader header = ProbePrefix(bytes, length);
      if (header.format != ImageFormat::kUnknown) return length;
      EXPECT_LT(length, magic_length) << what << ": prefix " << length << " not recognised";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kBadInput) << what;
      EXPECT_GE(length, magic_length) << what << ": prefix " << length << " threw " << e.what();
    }
  }
  ADD_FAILURE() << what << ": no prefix probes";
  return 0;
}

// The end of the JPEG frame header (SOFn segment) that ends exactly at `end`, found by
// looking backwards for a SOFn marker whose length reaches `end`; 0 if there is none.
bool EndsAtFrameHeader(const Bytes& b, size_t end) {
  for (size_t p = 2; p + 4 <= end; ++p) {
    const uint8_t m = b[p + 1];
    const bool sof = b[p] == 0xFF && m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof && p + 2 + ((size_t{b[p + 2]} << 8) | b[p + 3]) == end) return true;
  }
  return false;
}

void ExpectJpegPrefixes(const Bytes& jpeg, int width, int height, const std::string& what) {
  const size_t shortest = ShortestProbedPrefix(jpeg, 3, what);
  EXPECT_TRUE(EndsAtFrameHeader(jpeg, shortest)) << what << ": probed from " << shortest;
  for (size_t length : {shortest, shortest + 1, jpeg.size()}) {
    const ImageHeader header = ProbePrefix(jpeg, length);
    EXPECT_EQ(header.format, ImageFormat::kJpeg) << what;
    EXPECT_EQ(header.width, width) << what;
    EXPECT_EQ(header.height, height) << what;
  }
}

TEST(ProbeImage, JpegAtSeveralSizes) {
  for (const cv::Size& size : kSizes) {
    const std::string what =
        "jpeg " + std::to_string(size.width) + "x" + std::to_string(size.height);
    const cv::Mat picture = Picture(size.width, size.height);
    ExpectHeader(Encode(".jpg", picture), ImageFormat::kJpeg, size.width, size.height, what);
    ExpectHeader(Encode(".jpg", picture, {cv::IMWRITE_JPEG_PROGRESSIVE, 1}), ImageFormat::kJpeg,
                 size.width, size.height, "progressive " + what);
    ExpectHeader(Encode(".jpg", Picture(size.width, size.height, 1)), ImageFormat::kJpeg,
                 size.width, size.height, "grey " + what);
  }
}

TEST(ProbeImage, ProgressiveJpegHasAProgressiveFrameHeader) {
  const Bytes jpeg = Encode(".jpg", Picture(64, 48), {cv::IMWRITE_JPEG_PROGRESSIVE, 1});
  static constexpr uint8_t kSof2[] = {0xFF, 0xC2};
  EXPECT_NE(std::search(jpeg.begin(), jpeg.end(), kSof2, kSof2 + 2), jpeg.end());
  ExpectJpegPrefixes(jpeg, 64, 48, "progressive");
}

TEST(ProbeImage, SampleImagesMatchOpenCv) {
  const std::pair<const char*, cv::Size> samples[] = {{"images/bus.jpg", {810, 1080}},
                                                      {"images/zidane.jpg", {1280, 720}}};
  for (const auto& [file, expected] : samples) {
    const std::string path = Asset(file);
    const cv::Mat image = cv::imread(path, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
    ASSERT_EQ(image.size(), expected) << path;
    const Bytes bytes = core::ReadFileBytes(path);
    const ImageHeader header = Probe(bytes);
    EXPECT_EQ(header.format, ImageFormat::kJpeg) << path;
    EXPECT_EQ(header.width, expected.width) << path;
    EXPECT_EQ(header.height, expected.height) << path;
    ExpectJpegPrefixes(bytes, expected.width, expected.height, path);
  }
}

TEST(ProbeImage, EncodedJpegPrefixes) {
  ExpectJpegPrefixes(Encode(".jpg", Picture(641, 479)), 641, 479, "baseline");
}

TEST(ProbeImage, JpegFillBytesAndStandaloneMarkers) {
  Bytes jpeg = Encode(".jpg", Picture(40, 30));
  // Fill bytes before the second marker, and a TEM and an RST marker (no length) before it.
  const Bytes extra = {0xFF, 0x01, 0xFF, 0xD3, 0xFF, 0xFF, 0xFF};
  jpeg.insert(jpeg.begin() + 2, extra.begin(), extra.end());
  const ImageHeader header = Probe(jpeg);
  EXPECT_EQ(header.format, ImageFormat::kJpeg);
  EXPECT_EQ(header.width, 40);
  EXPECT_EQ(header.height, 30);
}

TEST(ProbeImage, MalformedJpegHeaders) {
  const Bytes good = Encode(".jpg", Picture(40, 30));
  size_t sof = 0;
  for (size_t p = 2; p + 1 < good.size(); ++p) {
    if (good[p] == 0xFF && good[p + 1] == 0xC0) {
      sof = p;
      break;
    }
  }
  ASSERT_GT(sof, 0u);
  Bytes zero_width = good;
  zero_width[sof + 7] = zero_width[sof + 8] = 0;
  ExpectBadInput(zero_width, "zero width");
  Bytes zero_height = good;
  zero_height[sof + 5] = zero_height[sof + 6] = 0;
  ExpectBadInput(zero_height, "zero height (DNL)");
  Bytes bad_length = good;
  bad_length[sof + 3] = 9;  // not 8 + 3 * components
  ExpectBadInput(bad_length, "frame header length");
  ExpectBadInput({0xFF, 0xD8, 0xFF, 0xD9}, "end of image before the frame header");
  ExpectBadInput({0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02}, "scan before the frame header");
  ExpectBadInput({0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01}, "segment length below 2");
  ExpectBadInput({0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02, 0x12}, "garbage where a marker must be");
  ExpectBadInput({0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xFF}, "segment running past the data");
}

TEST(ProbeImage, PngAtSeveralSizes) {
  for (const cv::Size& size : kSizes) {
    const std::string what =
        "png " + std::to_string(size.width) + "x" + std::to_string(size.height);
    ExpectHeader(Encode(".png", Picture(size.width, size.height)), ImageFormat::kPng, size.width,
                 size.height, what);
    ExpectHeader(Encode(".png", Picture(size.width, size.height, 4)), ImageFormat::kPng, size.width,
                 size.height, "rgba " + what);
  }
}

TEST(ProbeImage, PngPrefixes) {
  const Bytes png = Encode(".png", Picture(641, 479));
  EXPECT_EQ(ShortestProbedPrefix(png, 8, "png"), 33u);  // signature + IHDR chunk with CRC
}

TEST(ProbeImage, HugePngHeaderIsProbedWithoutAllocating) {
  const Bytes png = PngHeader(50000, 50000);
  const std::string name = "bomb.png";
  const size_t before = g_allocations.load();
  const ImageHeader header = ProbeImage(png.data(), png.size(), name);
  const size_t after = g_allocations.load();
  EXPECT_EQ(after, before);
  EXPECT_EQ(header.format, ImageFormat::kPng);
  EXPECT_EQ(header.width, 50000);
  EXPECT_EQ(header.height, 50000);
  // The counter does see allocations inside ProbeImage: a rejected header builds a message.
  const Bytes bad = PngHeader(0, 1);
  EXPECT_THROW(ProbeImage(bad.data(), bad.size(), name), Error);
  EXPECT_GT(g_allocations.load(), after);
  const ImageHeader max = Probe(PngHeader(0x7FFFFFFF, 1));
  EXPECT_EQ(max.width, 0x7FFFFFFF);
}

TEST(ProbeImage, MalformedPngHeaders) {
  ExpectBadInput(PngHeader(0, 10), "zero width");
  ExpectBadInput(PngHeader(10, 0), "zero height");
  ExpectBadInput(PngHeader(0x80000000u, 10), "width above 2^31 - 1");
  ExpectBadInput(PngHeader(10, 10, 3, 2), "bit depth 3");
  ExpectBadInput(PngHeader(10, 10, 8, 5), "colour type 5");
  Bytes bad_crc = PngHeader(10, 10);
  bad_crc[32] ^= 1;
  ExpectBadInput(bad_crc, "IHDR checksum");
  Bytes not_ihdr = PngHeader(10, 10);
  not_ihdr[12] = 'X';
  ExpectBadInput(not_ihdr, "first chunk not IHDR");
}

TEST(ProbeImage, BmpAtSeveralSizes) {
  for (const cv::Size& size : kSizes) {
    const std::string what =
        "bmp " + std::to_string(size.width) + "x" + std::to_string(size.height);
    ExpectHeader(Encode(".bmp", Picture(size.width, size.height)), ImageFormat::kBmp, size.width,
                 size.height, what);
  }
}

TEST(ProbeImage, BmpPrefixes) {
  const Bytes bmp = Encode(".bmp", Picture(64, 48));
  EXPECT_EQ(ShortestProbedPrefix(bmp, 2, "bmp"), 30u);  // through bit count of the DIB header
}

TEST(ProbeImage, TopDownBmpReportsAbsoluteHeight) {
  Bytes bmp = Encode(".bmp", Picture(64, 48));
  PutLe32(&bmp, 22, static_cast<uint32_t>(-48));
  ExpectHeader(bmp, ImageFormat::kBmp, 64, 48, "top-down bmp");
}

TEST(ProbeImage, BitmapCoreHeader) {
  // OS/2 1.x: 14-byte file header, 12-byte core header, 24-bit rows padded to 4 bytes.
  const int width = 5, height = 3, stride = 16;
  Bytes bmp(26 + stride * height, 0x40);
  const Bytes header = {'B', 'M', 0, 0, 0, 0,     0, 0,      0, 0, 26, 0,  0,
                        0,   12,  0, 0, 0, width, 0, height, 0, 1, 0,  24, 0};
  std::copy(header.begin(), header.end(), bmp.begin());
  PutLe32(&bmp, 2, static_cast<uint32_t>(bmp.size()));
  ExpectHeader(bmp, ImageFormat::kBmp, width, height, "core header");
}

TEST(ProbeImage, MalformedBmpHeaders) {
  const Bytes good = Encode(".bmp", Picture(8, 8));
  Bytes negative_width = good;
  PutLe32(&negative_width, 18, static_cast<uint32_t>(-8));
  ExpectBadInput(negative_width, "negative width");
  Bytes zero_height = good;
  PutLe32(&zero_height, 22, 0);
  ExpectBadInput(zero_height, "zero height");
  Bytes min_height = good;
  PutLe32(&min_height, 22, 0x80000000u);
  ExpectBadInput(min_height, "height INT32_MIN");
  Bytes odd_header = good;
  PutLe32(&odd_header, 14, 20);
  ExpectBadInput(odd_header, "DIB header size 20");
}

TEST(ProbeImage, WebpDecodesHere) {
  ASSERT_TRUE(WebpSupported()) << "this OpenCV has no WebP codec";
  const Bytes webp = Encode(".webp", Picture(33, 21));
  const cv::Mat decoded = DecodeImage(webp, "in.webp");
  EXPECT_EQ(decoded.size(), cv::Size(33, 21));
  EXPECT_EQ(decoded.type(), CV_8UC3);
}

TEST(ProbeImage, WebpLossyLosslessAndExtended) {
  if (!WebpSupported()) GTEST_SKIP() << "this OpenCV has no WebP codec";
  for (const cv::Size& size : kSizes) {
    const std::string what = std::to_string(size.width) + "x" + std::to_string(size.height);
    const Bytes lossy =
        Encode(".webp", Picture(size.width, size.height), {cv::IMWRITE_WEBP_QUALITY, 80});
    EXPECT_EQ(WebpChunk(lossy), "VP8 ");
    ExpectHeader(lossy, ImageFormat::kWebp, size.width, size.height, "VP8 " + what);
    const Bytes lossless =
        Encode(".webp", Picture(size.width, size.height), {cv::IMWRITE_WEBP_QUALITY, 101});
    EXPECT_EQ(WebpChunk(lossless), "VP8L");
    ExpectHeader(lossless, ImageFormat::kWebp, size.width, size.height, "VP8L " + what);
    // Lossy with alpha needs the extended format (VP8X, then ALPH and VP8 chunks).
    const Bytes extended =
        Encode(".webp", Picture(size.width, size.height, 4), {cv::IMWRITE_WEBP_QUALITY, 80});
    EXPECT_EQ(WebpChunk(extended), "VP8X");
    ExpectHeader(extended, ImageFormat::kWebp, size.width, size.height, "VP8X " + what);
  }
}

TEST(ProbeImage, WebpPrefixes) {
  if (!WebpSupported()) GTEST_SKIP() << "this OpenCV has no WebP codec";
  const Bytes lossy = Encode(".webp", Picture(64, 48), {cv::IMWRITE_WEBP_QUALITY, 80});
  EXPECT_EQ(ShortestProbedPrefix(lossy, 12, "VP8"), 30u);
  const Bytes lossless = Encode(".webp", Picture(64, 48), {cv::IMWRITE_WEBP_QUALITY, 101});
  EXPECT_EQ(ShortestProbedPrefix(lossless, 12, "VP8L"), 25u);
  const Bytes extended = Encode(".webp", Picture(64, 48, 4), {cv::IMWRITE_WEBP_QUALITY, 80});
  EXPECT_EQ(ShortestProbedPrefix(extended, 12, "VP8X"), 30u);
}

TEST(ProbeImage, HandBuiltWebpHeaders) {
  // VP8X with the largest canvas the 24-bit fields allow.
  Bytes vp8x = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E',  'B',  'P',  'V',  'P',  '8',
                'X', 10,  0,   0,   0, 0, 0, 0, 0,   0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  ImageHeader header = Probe(vp8x);
  EXPECT_EQ(header.format, ImageFormat::kWebp);
  EXPECT_EQ(header.width, 1 << 24);
  EXPECT_EQ(header.height, 1 << 24);
  Bytes small_chunk = vp8x;
  small_chunk[16] = 9;
  ExpectBadInput(small_chunk, "VP8X chunk smaller than its fields");
  Bytes unknown = vp8x;
  unknown[15] = 'Z';
  ExpectBadInput(unknown, "unknown first chunk");

  Bytes vp8 = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W',  'E',  'B',  'P',  'V',  'P',  '8',
               ' ', 10,  0,   0,   0, 0, 0, 0, 0x9D, 0x01, 0x2A, 0x00, 0x00, 0x10, 0x00};
  ExpectBadInput(vp8, "VP8 zero width");
  vp8[26] = 0x05;
  vp8[27] = 0xC0;  // 14-bit width 5 with scale bits set
  header = Probe(vp8);
  EXPECT_EQ(header.width, 5);
  EXPECT_EQ(header.height, 16);
  vp8[20] = 1;  // interframe
  ExpectBadInput(vp8, "VP8 not a key frame");
  vp8[20] = 0;
  vp8[23] = 0x9C;
  ExpectBadInput(vp8, "VP8 start code");

  Bytes vp8l = {'R', 'I', 'F', 'F', 0, 0, 0, 0,    'W', 'E', 'B', 'P', 'V',
                'P', '8', 'L', 5,   0, 0, 0, 0x2E, 0,   0,   0,   0};
  ExpectBadInput(vp8l, "VP8L signature");
  vp8l[20] = 0x2F;
  vp8l[24] = 0x20;  // version 1
  ExpectBadInput(vp8l, "VP8L version");
  vp8l[24] = 0;
  header = Probe(vp8l);
  EXPECT_EQ(header.width, 1);
  EXPECT_EQ(header.height, 1);
}

TEST(ProbeImage, UnknownFormats) {
  EXPECT_EQ(ProbeImage(nullptr, 0, "x").format, ImageFormat::kUnknown);
  const Bytes gif = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0};
  EXPECT_EQ(Probe(gif).format, ImageFormat::kUnknown);
  EXPECT_EQ(Probe(gif).width, 0);
  const Bytes riff_wave = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'A', 'V', 'E', 0, 0, 0, 0};
  EXPECT_EQ(Probe(riff_wave).format, ImageFormat::kUnknown);
  EXPECT_EQ(Probe({0xFF, 0xD8}).format, ImageFormat::kUnknown);
  EXPECT_EQ(Probe({'B'}).format, ImageFormat::kUnknown);
}

TEST(ProbeImage, FormatNames) {
  EXPECT_EQ(ImageFormatName(ImageFormat::kJpeg), "jpeg");
  EXPECT_EQ(ImageFormatName(ImageFormat::kPng), "png");
  EXPECT_EQ(ImageFormatName(ImageFormat::kWebp), "webp");
  EXPECT_EQ(ImageFormatName(ImageFormat::kBmp), "bmp");
  EXPECT_EQ(ImageFormatName(ImageFormat::kUnknown), "unknown");
}

// Probing must end in a result or Error for any bytes. Run under AddressSanitizer, this also
// shows that no read leaves the buffer.
void ProbeAnything(const Bytes& bytes) {
  try {
    const ImageHeader header = Probe(bytes);
    if (header.format == ImageFormat::kUnknown) {
      EXPECT_EQ(header.width, 0);
    } else {
      EXPECT_GT(header.width, 0);
      EXPECT_GT(header.height, 0);
    }
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
  }
}

TEST(ProbeImage, RandomBytesNeverCrash) {
  std::mt19937 rng(1234);
  const Bytes magics[] = {{},
                          {0xFF, 0xD8, 0xFF},
                          {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A},
                          {'R', 'I', 'F', 'F', 1, 2, 3, 4, 'W', 'E', 'B', 'P'},
                          {'B', 'M'}};
  for (int n = 0; n < 2000; ++n) {
    Bytes bytes = magics[n % 5];
    const size_t extra = rng() % 80;
    for (size_t i = 0; i < extra; ++i) bytes.push_back(static_cast<uint8_t>(rng()));
    ProbeAnything(bytes);
  }
}

TEST(ProbeImage, MutatedHeadersNeverCrash) {
  std::vector<Bytes> seeds = {Encode(".jpg", Picture(64, 48)),
                              Encode(".jpg", Picture(64, 48), {cv::IMWRITE_JPEG_PROGRESSIVE, 1}),
                              Encode(".png", Picture(64, 48)), Encode(".bmp", Picture(64, 48)),
                              core::ReadFileBytes(Asset("images/bus.jpg"))};
  if (WebpSupported()) {
    seeds.push_back(Encode(".webp", Picture(64, 48), {cv::IMWRITE_WEBP_QUALITY, 80}));
    seeds.push_back(Encode(".webp", Picture(64, 48), {cv::IMWRITE_WEBP_QUALITY, 101}));
    seeds.push_back(Encode(".webp", Picture(64, 48, 4), {cv::IMWRITE_WEBP_QUALITY, 80}));
  }
  std::mt19937 rng(5678);
  for (const Bytes& seed : seeds) {
    // Only the header matters: mutate the first few hundred bytes and cut there.
    const Bytes head(seed.begin(), seed.begin() + std::min<size_t>(seed.size(), 700));
    for (int n = 0; n < 2000; ++n) {
      Bytes bytes = head;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        const size_t at = rng() % bytes.size();
        switch (rng() % 4) {
          case 0:
            bytes[at] = static_cast<uint8_t>(rng());
            break;
          case 1:
            bytes[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
            break;
          case 2:
            bytes[at] = (rng() % 2) ? 0xFF : 0x00;
            break;
          default:
            bytes.resize(std::max<size_t>(at, 1));
        }
      }
      ProbeAnything(bytes);
    }
  }
}

// The pointer overload decodes in place and gives the same image, size and errors as the
// vector overload it now backs.
TEST(DecodeImageForModel, PointerOverloadMatchesVectorOverload) {
  const Bytes bus = core::ReadFileBytes(Asset("images/bus.jpg"));
  for (const cv::Size model : {cv::Size(), cv::Size(320, 320), cv::Size(640, 640)}) {
    cv::Size from_vector, from_pointer;
    const cv::Mat a = DecodeImageForModel(bus, "bus.jpg", model, &from_vector);
    const cv::Mat b = DecodeImageForModel(bus.data(), bus.size(), "bus.jpg", model, &from_pointer);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(cv::norm(a, b, cv::NORM_INF), 0);
    EXPECT_EQ(from_vector, from_pointer);
    EXPECT_EQ(from_pointer, cv::Size(810, 1080));
  }
  const Bytes png = Encode(".png", Picture(31, 7));
  EXPECT_EQ(DecodeImageForModel(png.data(), png.size(), "p.png", {}, nullptr).size(),
            cv::Size(31, 7));

  const auto message = [](const Bytes& bytes, bool pointer) -> std::string {
    try {
      if (pointer) {
        DecodeImageForModel(bytes.data(), bytes.size(), "x.jpg", cv::Size(640, 640), nullptr);
      } else {
        DecodeImageForModel(bytes, "x.jpg", cv::Size(640, 640), nullptr);
      }
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kBadInput);
      return e.what();
    }
    return "no error";
  };
  const Bytes truncated(bus.begin(), bus.begin() + 5000);
  const Bytes text = {'h', 'e', 'l', 'l', 'o'};
  for (const Bytes& bad : {Bytes{}, truncated, text}) {
    EXPECT_EQ(message(bad, true), message(bad, false));
  }
  EXPECT_EQ(message({}, true), "x.jpg: file is empty (0 bytes)");
  EXPECT_EQ(message(truncated, true), "x.jpg: truncated JPEG (no end-of-image marker)");
  EXPECT_THROW(DecodeImageForModel(nullptr, 0, "n", {}, nullptr), Error);
}

}  // namespace
}  // namespace cvdeploy
