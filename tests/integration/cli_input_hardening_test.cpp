// SPDX-License-Identifier: Apache-2.0
// The CLI on hostile input files (issue 12): crafted Exif, corrupt JPEG data, very thin
// images, non-regular files, oversized models and images, outputs that cannot be written.
// Every case ends in exit 0 with correct results or in the documented exit code with one
// stderr line naming the input — never a signal, a hang or a silent success.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/assets.h"
#include "support/crafted_images.h"
#include "support/process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;

std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

class CliInputHardeningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("cli-hardening");
    model_ = Asset("models/yolov8n-dq.onnx");
    bus_ = Asset("images/bus.jpg");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_, model_, bus_;
};

// Item 1: an Exif IFD offset near 4 GB read far past the buffer (exit 139). Now the Exif
// is ignored and the detections are exactly those of the unmodified image.
TEST_F(CliInputHardeningTest, CraftedExifOffsetsPredictLikeThePlainImage) {
  const std::vector<uint8_t> bus = ReadBytes(bus_);
  std::vector<std::string> args = {"predict", "--model", model_, "--json", "-", "--source", bus_};
  for (const bool little : {true, false}) {
    for (const uint32_t ifd : {0xFFFFFFFEu, 0xFFFFFFFFu}) {
      const std::string name = std::string(little ? "ii_" : "mm_") + std::to_string(ifd) + ".jpg";
      args.push_back(WriteBytes(dir_, name, JpegWithExif(bus, ExifTiff(little, ifd))));
    }
  }
  const ProcessResult run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  const std::vector<nlohmann::json> lines = JsonLines(run.out);
  ASSERT_EQ(lines.size(), 5u) << run.out;
  ASSERT_EQ(lines[0]["detections"].size(), 5u);
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["width"], lines[0]["width"]) << lines[i]["source"];
    EXPECT_EQ(lines[i]["height"], lines[0]["height"]) << lines[i]["source"];
    EXPECT_EQ(lines[i]["detections"], lines[0]["detections"]) << lines[i]["source"];
  }
}

}  // namespace
}  // namespace cvdeploy::testing
