// SPDX-License-Identifier: Apache-2.0
// The bad-input fixtures are what they claim to be, judged with OpenCV directly.
#include "support/fixtures.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "support/assets.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;

std::vector<unsigned char> ReadBytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

class FixturesTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("fixtures"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FixturesTest, ZeroByteFile) {
  const std::string path = WriteZeroByteFile(dir_);
  EXPECT_EQ(fs::path(path).filename(), "empty.jpg");
  EXPECT_EQ(fs::file_size(path), 0u);
}

TEST_F(FixturesTest, TruncatedJpegKeepsTheHeaderAndLosesTheEnd) {
  const std::string path = WriteTruncatedJpeg(dir_);
  const auto full = ReadBytes(Asset("images/bus.jpg"));
  const auto cut = ReadBytes(path);
  ASSERT_GT(cut.size(), 2u);
  EXPECT_EQ(cut.size(), static_cast<size_t>(static_cast<double>(full.size()) * 0.4));
  EXPECT_TRUE(std::equal(cut.begin(), cut.end(), full.begin()));
  EXPECT_EQ(cut[0], 0xFF);
  EXPECT_EQ(cut[1], 0xD8);  // SOI: looks like a JPEG
  EXPECT_FALSE(cut[cut.size() - 2] == 0xFF && cut[cut.size() - 1] == 0xD9);  // no EOI
}

TEST_F(FixturesTest, TextNamedJpegDoesNotDecode) {
  const std::string path = WriteTextAsJpeg(dir_);
  EXPECT_EQ(fs::path(path).extension(), ".jpg");
  EXPECT_GT(fs::file_size(path), 0u);
  EXPECT_TRUE(cv::imread(path).empty());
}

TEST_F(FixturesTest, UnreadableVideoDoesNotOpen) {
  const std::string path = WriteUnreadableVideo(dir_);
  EXPECT_EQ(fs::path(path).extension(), ".mp4");
  cv::VideoCapture capture(path);
  cv::Mat frame;
  EXPECT_FALSE(capture.isOpened() && capture.read(frame) && !frame.empty());
}

TEST_F(FixturesTest, VideoHasTheRequestedFrames) {
  const std::string path = WriteVideo(dir_, "clip.avi", 4);
  cv::VideoCapture capture(path);
  ASSERT_TRUE(capture.isOpened());
  int frames = 0;
  cv::Mat frame;
  while (capture.read(frame)) {
    EXPECT_EQ(frame.cols, 320);
    EXPECT_EQ(frame.rows, 240);
    EXPECT_EQ(frame.channels(), 3);
    ++frames;
  }
  EXPECT_EQ(frames, 4);
}

TEST_F(FixturesTest, VideoFromAGivenImage) {
  cv::Mat gray(50, 80, CV_8UC1, cv::Scalar(77));
  const std::string path = WriteVideo(dir_, "gray.avi", 2, gray, cv::Size(64, 48), 5.0);
  cv::VideoCapture capture(path);
  ASSERT_TRUE(capture.isOpened());
  cv::Mat frame;
  ASSERT_TRUE(capture.read(frame));
  EXPECT_EQ(frame.size(), cv::Size(64, 48));
  EXPECT_NEAR(cv::mean(frame)[0], 77.0, 3.0);
}

TEST_F(FixturesTest, EmptyDirectory) {
  const std::string path = MakeEmptyDir(dir_);
  EXPECT_TRUE(fs::is_directory(path));
  EXPECT_TRUE(fs::is_empty(path));
}

TEST_F(FixturesTest, TextFileNamedLikeAModel) {
  const std::string path = WriteTextFile(dir_, "model.onnx");
  EXPECT_EQ(fs::path(path).filename(), "model.onnx");
  EXPECT_GT(fs::file_size(path), 0u);
}

}  // namespace
}  // namespace cvdeploy::testing
