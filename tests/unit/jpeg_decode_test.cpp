// SPDX-License-Identifier: Apache-2.0
// The libjpeg-turbo fast path must give exactly what OpenCV's imdecode gives, at full and
// reduced scale, and step aside for what it does not handle.
#include "core/jpeg_decode.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <opencv2/imgcodecs.hpp>

#include "core/file_util.h"
#include "cvdeploy/error.h"
#include "cvdeploy/image.h"
#include "support/assets.h"
#include "support/crafted_images.h"

namespace cvdeploy {
namespace {

using testing::Asset;

cv::Mat OpenCvDecode(const std::vector<uint8_t>& bytes, int flags) {
  return cv::imdecode(
      cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, const_cast<uint8_t*>(bytes.data())), flags);
}

void ExpectIdentical(const cv::Mat& a, const cv::Mat& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  ASSERT_EQ(a.type(), b.type()) << what;
  EXPECT_EQ(cv::norm(a, b, cv::NORM_INF), 0) << what;
}

TEST(JpegDecode, PixelIdenticalToOpenCvOnTheSampleImages) {
  std::vector<std::string> files = {Asset("images/bus.jpg"), Asset("images/zidane.jpg")};
  for (const auto& e : std::filesystem::directory_iterator(Asset("datasets/coco128/images"))) {
    // Every coco128 image: none may be taken for corrupt (validate would refuse it).
    if (HasImageExtension(e.path().string())) files.push_back(e.path().string());
  }
  for (const std::string& f : files) {
    const std::vector<uint8_t> bytes = core::ReadFileBytes(f);
    cv::Mat fast;
    ASSERT_EQ(core::DecodeJpegBgr(bytes.data(), bytes.size(), 1, &fast),
              core::JpegDecodeStatus::kDecoded)
        << f;
    ExpectIdentical(fast, OpenCvDecode(bytes, cv::IMREAD_COLOR), f);
  }
}

TEST(JpegDecode, ReducedScalesMatchOpenCvReducedModes) {
  const std::vector<uint8_t> bytes = core::ReadFileBytes(Asset("images/bus.jpg"));
  const std::pair<int, int> modes[] = {{2, cv::IMREAD_REDUCED_COLOR_2},
                                       {4, cv::IMREAD_REDUCED_COLOR_4},
                                       {8, cv::IMREAD_REDUCED_COLOR_8}};
  for (const auto& [denom, flags] : modes) {
    cv::Mat fast;
    ASSERT_EQ(core::DecodeJpegBgr(bytes.data(), bytes.size(), denom, &fast),
              core::JpegDecodeStatus::kDecoded);
    ExpectIdentical(fast, OpenCvDecode(bytes, flags), "1/" + std::to_string(denom));
  }
  cv::Mat unused;
  EXPECT_EQ(core::DecodeJpegBgr(bytes.data(), bytes.size(), 3, &unused),
            core::JpegDecodeStatus::kUseOpenCv);
}

// A naive reference of the scale choice: every M/8 in `nums`, sizes as libjpeg computes them,
// the letterbox's resized size as Ultralytics rounds it (round half to even differs from the
// chooser's ceil only on exact halves, which these sizes avoid).
int NaiveScale(cv::Size image, cv::Size target, std::initializer_list<int> nums) {
  int best = 8;
  for (int m : nums) {
    const double r = std::min(static_cast<double>(target.height) / image.height,
                              static_cast<double>(target.width) / image.width);
    const int need_w = static_cast<int>(std::nearbyint(image.width * r));
    const int need_h = static_cast<int>(std::nearbyint(image.height * r));
    const int got_w = static_cast<int>(std::ceil(image.width * m / 8.0));
    const int got_h = static_cast<int>(std::ceil(image.height * m / 8.0));
    if (got_w >= need_w && got_h >= need_h && m < best) best = m;
  }
  return best;
}

TEST(JpegScale, ChoosesTheSmallestScaleThatCoversTheLetterbox) {
  const cv::Size square(640, 640);
  // bus.jpg 810x1080 -> resized 480x640: 4/8 gives 405x540 (too small); any M/8: 5/8.
  EXPECT_EQ(core::ChooseJpegScale({810, 1080}, square), 8);
  EXPECT_EQ(core::ChooseJpegScale({810, 1080}, square, true, {1, 2, 3, 4, 5, 6, 7, 8}), 5);
  EXPECT_EQ(core::ChooseJpegScale({810, 1080}, {480, 640}, true, {1, 2, 3, 4, 5, 6, 7, 8}), 5);
  // zidane.jpg 1280x720 -> resized 640x360: exactly 4/8.
  EXPECT_EQ(core::ChooseJpegScale({1280, 720}, square), 4);
  // A 1920x1080 frame -> 640x360: 3/8 (720x405) with M/8, else 4/8.
  EXPECT_EQ(core::ChooseJpegScale({1920, 1080}, square), 4);
  EXPECT_EQ(core::ChooseJpegScale({1920, 1080}, square, true, {1, 2, 3, 4, 5, 6, 7, 8}), 3);
  // 4000x3000 -> 640x480: 1/4 is 1000x750, 1/8 is 500x375 (too small).
  EXPECT_EQ(core::ChooseJpegScale({4000, 3000}, square), 2);
  EXPECT_EQ(core::ChooseJpegScale({5120, 5120}, square), 1);  // 1/8 is exactly 640
  // Smaller than the target (letterbox scales up), or a coco128-sized image: full size.
  EXPECT_EQ(core::ChooseJpegScale({640, 480}, square), 8);
  EXPECT_EQ(core::ChooseJpegScale({300, 200}, square), 8);
  EXPECT_EQ(core::ChooseJpegScale({640, 480}, {320, 320}), 4);
  // Nonsense sizes: full size, never a division by zero.
  EXPECT_EQ(core::ChooseJpegScale({0, 480}, square), 8);
  EXPECT_EQ(core::ChooseJpegScale({640, 480}, {0, 0}), 8);
}

TEST(JpegScale, RectangularTargetsCheckBothOrientations) {
  // A 384x640 (h x w) target. Landscape 1280x720 -> 640x360: 4/8; 2560x1440: 2/8.
  const cv::Size target(640, 384);
  EXPECT_EQ(core::ChooseJpegScale({1280, 720}, target, false), 4);
  EXPECT_EQ(core::ChooseJpegScale({2560, 1440}, target, false), 2);
  EXPECT_EQ(core::ChooseJpegScale({2560, 1440}, target, true), 2);
  // A thin 100x797 image needs 49x384 (4/8 gives 50x399); transposed by an EXIF rotation it
  // would need 640x81 of 797x100, which only the full size covers.
  EXPECT_EQ(core::ChooseJpegScale({100, 797}, target, false), 4);
  EXPECT_EQ(core::ChooseJpegScale({100, 797}, target, true), 8);
}

TEST(JpegScale, MatchesANaiveReferenceOverManySizes) {
  const std::initializer_list<int> all = {1, 2, 3, 4, 5, 6, 7, 8};
  const cv::Size targets[] = {{640, 640}, {320, 320}, {640, 384}, {480, 640}};
  int checked = 0;
  for (const cv::Size target : targets) {
    for (int w = 37; w < 6000; w += 263) {
      for (int h = 41; h < 6000; h += 311) {
        const cv::Size image(w, h);
        EXPECT_EQ(core::ChooseJpegScale(image, target, false, all), NaiveScale(image, target, all))
            << w << "x" << h << " -> " << target;
        EXPECT_EQ(core::ChooseJpegScale(image, target, false),
                  NaiveScale(image, target, {8, 4, 2, 1}))
            << w << "x" << h << " -> " << target;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 1000);
}

// A JPEG whose APP1 Exif segment says orientation `value` (6: rotate 90 degrees clockwise).
std::vector<uint8_t> WithOrientation(const std::vector<uint8_t>& jpeg, uint16_t value) {
  const uint8_t tiff[] = {'M',
                          'M',
                          0,
                          42,
                          0,
                          0,
                          0,
                          8,  // big-endian TIFF, IFD0 at 8
                          0,
                          1,  // one entry
                          0x01,
                          0x12,
                          0,
                          3,
                          0,
                          0,
                          0,
                          1,  // Orientation, SHORT, count 1
                          static_cast<uint8_t>(value >> 8),
                          static_cast<uint8_t>(value),
                          0,
                          0,
                          0,
                          0,
                          0,
                          0};                  // no next IFD
  const size_t length = 2 + 6 + sizeof(tiff);  // length field + "Exif\0\0" + TIFF
  std::vector<uint8_t> out;
  out.reserve(jpeg.size() + length + 2);
  out.push_back(jpeg[0]);  // SOI
  out.push_back(jpeg[1]);
  for (uint8_t b : {uint8_t{0xFF}, uint8_t{0xE1}, static_cast<uint8_t>(length >> 8),
                    static_cast<uint8_t>(length), uint8_t{'E'}, uint8_t{'x'}, uint8_t{'i'},
                    uint8_t{'f'}, uint8_t{0}, uint8_t{0}}) {
    out.push_back(b);
  }
  for (uint8_t b : tiff) out.push_back(b);
  for (size_t i = 2; i < jpeg.size(); ++i) out.push_back(jpeg[i]);
  return out;
}

TEST(JpegDecode, ExifOrientationFallsBackToOpenCvWhichRotates) {
  cv::Mat image(40, 60, CV_8UC3, cv::Scalar(10, 200, 90));
  std::vector<uint8_t> plain;
  ASSERT_TRUE(cv::imencode(".jpg", image, plain));
  const std::vector<uint8_t> rotated = WithOrientation(plain, 6);
  EXPECT_EQ(core::JpegExifOrientation(plain.data(), plain.size()), 1);
  EXPECT_EQ(core::JpegExifOrientation(rotated.data(), rotated.size()), 6);
  cv::Mat fast;
  EXPECT_EQ(core::DecodeJpegBgr(rotated.data(), rotated.size(), 1, &fast),
            core::JpegDecodeStatus::kUseOpenCv);
  // Through the public decoder: OpenCV applies the orientation, so width and height swap.
  const cv::Mat decoded = DecodeImage(rotated, "rotated.jpg");
  EXPECT_EQ(decoded.size(), cv::Size(40, 60));
  const cv::Mat same = DecodeImage(WithOrientation(plain, 1), "upright.jpg");
  EXPECT_EQ(same.size(), cv::Size(60, 40));
}

TEST(JpegDecode, CorruptDataIsRefusedNotCrashed) {
  std::vector<uint8_t> bytes = core::ReadFileBytes(Asset("images/zidane.jpg"));
  bytes.resize(600);  // headers only, cut inside the tables
  cv::Mat out;
  EXPECT_EQ(core::DecodeJpegBgr(bytes.data(), bytes.size(), 1, &out),
            core::JpegDecodeStatus::kCorrupt);
  EXPECT_TRUE(out.empty());
  const uint8_t garbage[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02, 0x12, 0x34};
  EXPECT_EQ(core::DecodeJpegBgr(garbage, sizeof(garbage), 1, &out),
            core::JpegDecodeStatus::kCorrupt);
}

// --- Exif reader on hostile segments (issue 12, item 1) ---------------------------------
// Each TIFF is copied into a buffer of exactly its size, so any read past it is a read past
// a heap block (AddressSanitizer flags it; without ASan an IFD offset near 4 GB faults).

int OrientationOfTiff(const std::vector<uint8_t>& tiff) {
  const std::vector<uint8_t> exact(tiff);
  return core::TiffOrientation(exact.data(), exact.size());
}

TEST(JpegExif, IfdOffsetsNear4GiBAreIgnoredInBothByteOrders) {
  const std::vector<uint8_t> bus = testing::ReadBytes(Asset("images/bus.jpg"));
  const cv::Mat plain = DecodeImage(bus, "bus.jpg");
  for (const bool little : {true, false}) {
    for (const uint32_t ifd : {0xFFFFFFFEu, 0xFFFFFFFFu, 0xFFFFFFF4u, 0x80000000u}) {
      const std::string what = std::string(little ? "II" : "MM") + " ifd " + std::to_string(ifd);
      const std::vector<uint8_t> tiff = testing::ExifTiff(little, ifd);
      EXPECT_EQ(OrientationOfTiff(tiff), 1) << what;
      const std::vector<uint8_t> crafted = testing::JpegWithExif(bus, tiff);
      EXPECT_EQ(core::JpegExifOrientation(crafted.data(), crafted.size()), 1) << what;
      // The crafted file decodes to exactly the original picture (the Exif is ignored).
      ExpectIdentical(DecodeImage(crafted, "crafted.jpg"), plain, what);
    }
  }
}

TEST(JpegExif, ValidOrientationIsReadInBothByteOrders) {
  for (const bool little : {true, false}) {
    for (uint16_t v = 1; v <= 8; ++v) {
      EXPECT_EQ(OrientationOfTiff(testing::ExifTiffWithOrientation(little, v)), v) << little;
    }
    EXPECT_EQ(OrientationOfTiff(testing::ExifTiffWithOrientation(little, 9)), 1);
    EXPECT_EQ(OrientationOfTiff(testing::ExifTiffWithOrientation(little, 0)), 1);
  }
}

TEST(JpegExif, TruncatedAndOverlongEntryTables) {
  for (const bool little : {true, false}) {
    const std::vector<uint8_t> good = testing::ExifTiffWithOrientation(little, 6);
    // Every prefix: the Orientation entry ends at byte 22; shorter means "absent".
    for (size_t n = 0; n <= good.size(); ++n) {
      const std::vector<uint8_t> prefix(good.begin(), good.begin() + n);
      EXPECT_EQ(OrientationOfTiff(prefix), n >= 22 ? 6 : 1) << little << " prefix " << n;
    }
    // An entry count of 65535 with one entry present: the table runs past the segment.
    std::vector<uint8_t> many = testing::ExifTiff(little, 8, {0xFF, 0xFF});
    many.resize(many.size() + 12, 0);  // one entry that is not Orientation
    EXPECT_EQ(OrientationOfTiff(many), 1);
    // IFD offset at the last byte, exactly at the end, and one past it.
    const std::vector<uint8_t> base = testing::ExifTiff(little, 8, {0, 0});
    for (uint32_t ifd : {9u, 10u, 11u}) {
      EXPECT_EQ(OrientationOfTiff(testing::ExifTiff(little, ifd, {0, 0})), 1) << ifd;
    }
    EXPECT_EQ(OrientationOfTiff(base), 1);  // zero entries
  }
  // Not TIFF: wrong byte order mark or magic.
  EXPECT_EQ(OrientationOfTiff({'I', 'M', 42, 0, 8, 0, 0, 0, 0, 0}), 1);
  EXPECT_EQ(OrientationOfTiff({'I', 'I', 43, 0, 8, 0, 0, 0, 0, 0}), 1);
  EXPECT_EQ(core::TiffOrientation(nullptr, 100), 1);
}

TEST(JpegExif, SegmentLengthsThatLieAreIgnored) {
  const std::vector<uint8_t> tiff = testing::ExifTiffWithOrientation(true, 6);
  std::vector<uint8_t> jpeg = testing::JpegWithExif({0xFF, 0xD8}, tiff);
  ASSERT_EQ(core::JpegExifOrientation(jpeg.data(), jpeg.size()), 6);
  // Every truncation of the segment: never a read past the end, "1" once it is cut.
  for (size_t n = 0; n < jpeg.size(); ++n) {
    const std::vector<uint8_t> cut(jpeg.begin(), jpeg.begin() + n);
    EXPECT_EQ(core::JpegExifOrientation(cut.data(), cut.size()), 1) << n;
  }
  jpeg[4] = 0xFF;  // segment length 0xFF.. : longer than the data
  EXPECT_EQ(core::JpegExifOrientation(jpeg.data(), jpeg.size()), 1);
  jpeg[4] = 0;
  jpeg[5] = 7;  // too short to hold "Exif\0\0"
  EXPECT_EQ(core::JpegExifOrientation(jpeg.data(), jpeg.size()), 1);
  EXPECT_EQ(core::JpegExifOrientation(nullptr, 0), 1);
}

// --- Corrupt JPEG data (issue 12, item 11) ----------------------------------------------
// libjpeg only warns about these and fills what is missing with grey; OpenCV's fallback
// decoded them (a half-grey bus, a 6300-pixel-wide image). They are refused now, with
// libjpeg's reason, in every path: the fast path, the check before OpenCV (EXIF-rotated
// images), and the public decoder.

void ExpectCorrupt(const std::vector<uint8_t>& bytes, const std::string& what) {
  for (int denom : {1, 2, 8}) {
    cv::Mat out;
    std::string reason;
    EXPECT_EQ(core::DecodeJpegBgr(bytes.data(), bytes.size(), denom, &out, &reason),
              core::JpegDecodeStatus::kCorrupt)
        << what << " 1/" << denom;
    EXPECT_FALSE(reason.empty()) << what;
    EXPECT_TRUE(out.empty()) << what;
  }
  try {
    DecodeImage(bytes, "x.jpg");
    ADD_FAILURE() << what << ": decoded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput) << what;
    EXPECT_EQ(std::string(e.what()).rfind("x.jpg: corrupt JPEG data: ", 0), 0u) << e.what();
  }
}

TEST(JpegCorrupt, TruncatedScanWithEoiAppendedIsRefused) {
  const std::vector<uint8_t> bus = testing::ReadBytes(Asset("images/bus.jpg"));
  for (double fraction : {0.3, 0.5, 0.9}) {
    const auto keep = static_cast<size_t>(static_cast<double>(bus.size()) * fraction);
    ExpectCorrupt(testing::TruncatedJpegWithEoi(bus, keep), "truncated " + std::to_string(keep));
  }
}

TEST(JpegCorrupt, FrameSizeThatDisagreesWithTheDataIsRefused) {
  const std::vector<uint8_t> bus = testing::ReadBytes(Asset("images/bus.jpg"));  // 810x1080
  ExpectCorrupt(testing::JpegWithFrameSize(bus, 6300, 1080), "6300x1080");
  ExpectCorrupt(testing::JpegWithFrameSize(bus, 810, 2160), "810x2160");
}

TEST(JpegCorrupt, RotatedImagesAreCheckedBeforeOpenCvDecodesThem) {
  const std::vector<uint8_t> bus = testing::ReadBytes(Asset("images/bus.jpg"));
  const std::vector<uint8_t> rotated =
      testing::JpegWithExif(bus, testing::ExifTiffWithOrientation(false, 6));
  cv::Mat out;
  ASSERT_EQ(core::DecodeJpegBgr(rotated.data(), rotated.size(), 1, &out),
            core::JpegDecodeStatus::kUseOpenCv);
  EXPECT_EQ(DecodeImage(rotated, "rotated.jpg").size(), cv::Size(1080, 810));
  ExpectCorrupt(testing::TruncatedJpegWithEoi(rotated, rotated.size() / 2), "rotated, truncated");
}

}  // namespace
}  // namespace cvdeploy
