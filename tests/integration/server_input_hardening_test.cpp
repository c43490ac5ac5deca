// SPDX-License-Identifier: Apache-2.0
// The image predict endpoint on hostile images (issue 12): a crafted Exif segment, very thin
// images and corrupt JPEG data, against a real `cvdeploy serve` process (one per suite).
// Each gets a proper answer (200 with results, or 422 naming the problem), never a crash,
// a 500 or a decoder message on the server's stderr.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/assets.h"
#include "support/crafted_images.h"
#include "support/server_api.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

std::string AsString(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

// A worker crashed by an Exif IFD offset near 4 GB took the server down (SIGSEGV).
TEST_F(ServerApiTest, CraftedExifOffsetAnswersLikeThePlainImage) {
  const std::vector<uint8_t> bus = ReadBytes(Asset("images/bus.jpg"));
  for (const bool little : {true, false}) {
    const std::string crafted = AsString(JpegWithExif(bus, ExifTiff(little, 0xFFFFFFFEu)));
    for (const std::string query : {"", "?annotate=1"}) {
      const HttpReply r = PostImage(port(), crafted, query);
      ASSERT_EQ(r.status, 200) << Describe(r);
      if (query.empty()) {
        EXPECT_EQ(ParseJson(r)["detections"], BusResult()["detections"]);
      }
    }
  }
  EXPECT_EQ(Http(port(), "GET", "/v2/health/ready").status, 200);
}

// Item 5: a 1x20000 image letterboxed to a 0-pixel width: cv::resize asserted (500).
TEST_F(ServerApiTest, VeryThinImagesAreProcessed) {
  for (const auto& [w, h] : std::vector<std::pair<int, int>>{{1, 20000}, {20000, 1}, {8000, 4}}) {
    const HttpReply r = PostImage(port(), AsString(GradientPng(w, h)), "", "image/png");
    ASSERT_EQ(r.status, 200) << w << "x" << h << ": " << Describe(r);
    const nlohmann::json result = ParseJson(r);
    EXPECT_EQ(result["width"], w);
    EXPECT_EQ(result["height"], h);
  }
}

// Item 11: corrupt JPEG data was decoded leniently by the fallback (a half-grey picture, a
// width of 6300) and libjpeg's warnings reached the server's stderr.
TEST_F(ServerApiTest, CorruptJpegDataIs422AndSilent) {
  const std::vector<uint8_t> bus = ReadBytes(Asset("images/bus.jpg"));
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> cases = {
      {"truncated + EOI", TruncatedJpegWithEoi(bus, bus.size() / 2)},
      {"frame size 6300x1080", JpegWithFrameSize(bus, 6300, 1080)}};
  for (const auto& [what, bytes] : cases) {
    const HttpReply r = PostImage(port(), AsString(bytes));
    EXPECT_TRUE(IsJsonError(r, 422, "corrupt JPEG data")) << what << ": " << Describe(r);
  }
  const std::string err = server_->Stderr();
  for (const char* text : {"Corrupt JPEG", "Premature end", "libjpeg"}) {
    EXPECT_EQ(err.find(text), std::string::npos) << "'" << text << "' on stderr:\n" << err;
  }
  EXPECT_EQ(PostImage(port(), AsString(bus)).status, 200);
}

}  // namespace
}  // namespace cvdeploy::testing
