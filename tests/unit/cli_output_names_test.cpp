// SPDX-License-Identifier: Apache-2.0
// predict's output names (cli/output_names.h): suffixes instead of overwrites, Ultralytics'
// increment_path for run directories, file stems of stream URLs (never with credentials);
// and the source classification of cvdeploy/live_source.h.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli/output_names.h"
#include "cvdeploy/error.h"
#include "cvdeploy/live_source.h"
#include "support/assets.h"

namespace cvdeploy::cli {
namespace {

namespace fs = std::filesystem;

TEST(OutputNamesTest, SecondUseOfANameGetsANumberedSuffix) {
  OutputNames names;
  EXPECT_EQ(names.Reserve("out", "bus.jpg"), "out/bus.jpg");
  EXPECT_EQ(names.Reserve("out", "zidane.jpg"), "out/zidane.jpg");
  EXPECT_EQ(names.Reserve("out", "bus.jpg"), "out/bus_2.jpg");
  EXPECT_EQ(names.Reserve("out", "bus.jpg"), "out/bus_3.jpg");
  EXPECT_EQ(names.Reserve("other", "bus.jpg"), "other/bus.jpg");  // per directory
  EXPECT_EQ(names.Reserve("out", "clip.mp4"), "out/clip.mp4");
  EXPECT_EQ(names.Reserve("out", "clip.mp4"), "out/clip_2.mp4");
}

TEST(OutputNamesTest, IncrementPathTakesTheFirstFreeNumber) {
  const std::string dir = cvdeploy::testing::MakeTempDir("increment");
  const std::string base = dir + "/runs/predict";
  EXPECT_EQ(IncrementPath(base), base);
  fs::create_directories(base);
  EXPECT_EQ(IncrementPath(base), base + "2");
  fs::create_directories(base + "2");
  fs::create_directories(base + "4");
  EXPECT_EQ(IncrementPath(base), base + "3");
}

TEST(OutputNamesTest, SourceStems) {
  EXPECT_EQ(SourceStem("0"), "webcam0");
  EXPECT_EQ(SourceStem("/data/clips/a.mp4"), "a");
  EXPECT_EQ(SourceStem("rtsp://cam.local:8554/live/main"), "cam.local_8554_live_main");
  EXPECT_EQ(SourceStem("rtsp://admin:secret@10.0.0.5/stream?channel=1"), "10.0.0.5_stream");
  EXPECT_EQ(SourceStem("http://127.0.0.1:8080/"), "127.0.0.1_8080");
  EXPECT_EQ(SourceStem(std::string("http://h/") + std::string(200, 'x')).size(), 80u);
}

TEST(LiveSourceKindTest, WebcamsAndUrlsAreLiveFilesAreNot) {
  for (const char* live : {"0", "12", "/dev/video0", "rtsp://h/x", "RTSPS://h/x", "rtmp://h/x",
                           "http://h/v.mjpg", "https://h/v.ts"}) {
    EXPECT_TRUE(pipeline::IsLiveSource(live)) << live;
  }
  for (const char* file : {"bus.jpg", "0.jpg", "1234", "videos/", "/dev/null", "ftp://h/x"}) {
    EXPECT_FALSE(pipeline::IsLiveSource(file)) << file;
  }
  EXPECT_TRUE(pipeline::IsStreamsFile("cams.streams"));
  EXPECT_TRUE(pipeline::IsStreamsFile("CAMS.STREAMS"));
  EXPECT_FALSE(pipeline::IsStreamsFile(".streams"));
  EXPECT_FALSE(pipeline::IsStreamsFile("cams.streams.txt"));
}

TEST(LiveSourceKindTest, StreamsFileLinesCommentsAndErrors) {
  const std::string dir = cvdeploy::testing::MakeTempDir("streams-file");
  const std::string path = dir + "/cams.streams";
  std::ofstream(path) << "# cameras\r\n  rtsp://a/1  \n\n0\r\n#rtsp://off\n";
  EXPECT_EQ(pipeline::ReadStreamsFile(path), (std::vector<std::string>{"rtsp://a/1", "0"}));
  std::ofstream(dir + "/empty.streams") << "# nothing\n\n";
  try {
    pipeline::ReadStreamsFile(dir + "/empty.streams");
    FAIL() << "an empty .streams file was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("empty.streams: lists no sources"), std::string::npos);
  }
  EXPECT_THROW(pipeline::ReadStreamsFile(dir + "/missing.streams"), Error);
}

}  // namespace
}  // namespace cvdeploy::cli
