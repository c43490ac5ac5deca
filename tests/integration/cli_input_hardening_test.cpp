// SPDX-License-Identifier: Apache-2.0
// The CLI on hostile input files (issue 12): crafted Exif, corrupt JPEG data, very thin
// images, non-regular files, oversized models and images, outputs that cannot be written.
// Every case ends in exit 0 with correct results or in the documented exit code with one
// stderr line naming the input — never a signal, a hang or a silent success.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <sstream>

#include "support/assets.h"
#include "support/crafted_images.h"
#include "support/onnx_builder.h"
#include "support/process.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;

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
  const std::vector<nlohmann::json> lines = ParseJsonLines(run.out);
  ASSERT_EQ(lines.size(), 5u) << run.out;
  ASSERT_EQ(lines[0]["detections"].size(), 5u);
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["width"], lines[0]["width"]) << lines[i]["source"];
    EXPECT_EQ(lines[i]["height"], lines[0]["height"]) << lines[i]["source"];
    EXPECT_EQ(lines[i]["detections"], lines[0]["detections"]) << lines[i]["source"];
  }
}

// Item 5: very thin images letterboxed a side to 0 px and cv::resize asserted. They are
// processed now (each letterbox side at least one pixel).
TEST_F(CliInputHardeningTest, VeryThinImagesArePredicted) {
  std::vector<std::string> args = {"predict", "--model", model_, "--json", "-", "--source"};
  for (const cv::Size size : {cv::Size(1, 20000), cv::Size(20000, 1), cv::Size(8000, 4)}) {
    const std::string name =
        "thin_" + std::to_string(size.width) + "x" + std::to_string(size.height) + ".png";
    args.push_back(WriteBytes(dir_, name, GradientPng(size.width, size.height)));
  }
  const ProcessResult run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  const std::vector<nlohmann::json> lines = ParseJsonLines(run.out);
  ASSERT_EQ(lines.size(), 3u) << run.out;
  EXPECT_EQ(lines[0]["width"], 1);
  EXPECT_EQ(lines[0]["height"], 20000);
  EXPECT_EQ(lines[1]["width"], 20000);
  EXPECT_EQ(lines[2]["height"], 4);
}

// Item 11: corrupt JPEG data was decoded leniently (a half-grey picture; a frame header that
// lies about the size gave width 6300) and libjpeg printed its warnings. Now: exit 3, one
// stderr line naming the file, the file skipped and the others still predicted.
TEST_F(CliInputHardeningTest, CorruptJpegDataIsRefusedWithOneLine) {
  const std::vector<uint8_t> bus = ReadBytes(bus_);
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> cases = {
      {"cut.jpg", TruncatedJpegWithEoi(bus, bus.size() / 2)},
      {"wide.jpg", JpegWithFrameSize(bus, 6300, 1080)}};
  for (const auto& [name, bytes] : cases) {
    const std::string path = WriteBytes(dir_, name, bytes);
    const ProcessResult run =
        ExpectCliError({"predict", "--model", model_, "--source", path}, 3, name);
    EXPECT_NE(run.err.find("corrupt JPEG data"), std::string::npos) << run.err;
    // Skipped, not fatal: the good image in the same run is still predicted.
    const std::vector<std::string> both = {"predict", "--model",  model_, "--json",
                                           "-",       "--source", path,   bus_};
    const ProcessResult mixed = RunCli(both);
    EXPECT_EQ(mixed.exit_code, 3) << DescribeRun(both, mixed);
    ASSERT_EQ(ParseJsonLines(mixed.out).size(), 1u) << mixed.out;
    EXPECT_EQ(ParseJsonLines(mixed.out)[0]["detections"].size(), 5u);
  }
}

// Item 9: models, images, labels and names files are regular files of bounded size; a FIFO
// must not hang the run, /dev/zero must not be read until memory runs out.
TEST_F(CliInputHardeningTest, ModelLargerThanTheLimitIsRefusedUnread) {
  const std::string sparse = dir_ + "/sparse.onnx";
  ASSERT_EQ(truncate(WriteBytes(dir_, "sparse.onnx", {}).c_str(), 3221225472LL), 0);
  ExpectCliError({"predict", "--model", sparse, "--source", bus_}, 3,
                 "sparse.onnx: model is 3221225472 bytes, larger than the limit 2147483648 "
                 "(--max-model-bytes)");
  ExpectCliError({"predict", "--model", model_, "--source", bus_, "--max-model-bytes", "1000"}, 3,
                 "model is " + std::to_string(fs::file_size(model_)) +
                     " bytes, larger than the limit 1000 (--max-model-bytes)");
  ExpectCliError({"info", model_, "--max-model-bytes", "1000"}, 3, "larger than the limit 1000");
  ExpectCliError({"convert", "--model", model_, "--output", dir_ + "/o.onnx", "--dynamic-batch",
                  "--max-model-bytes", "1000"},
                 3, "larger than the limit 1000 (--max-model-bytes)");
}

TEST_F(CliInputHardeningTest, NonRegularFilesAreRefusedQuickly) {
  const std::string fifo = dir_ + "/pipe.onnx";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  const std::string fifo_jpg = dir_ + "/pipe.jpg";
  ASSERT_EQ(mkfifo(fifo_jpg.c_str(), 0644), 0);
  const std::string names_fifo = dir_ + "/names.txt";
  ASSERT_EQ(mkfifo(names_fifo.c_str(), 0644), 0);
  const std::string a_dir = dir_ + "/model_dir.onnx";
  fs::create_directories(a_dir);
  // Model: FIFO, character device, directory.
  ExpectCliError({"predict", "--model", fifo, "--source", bus_}, 3,
                 "pipe.onnx: is a FIFO, expected a regular file");
  ExpectCliError({"predict", "--model", "/dev/zero", "--source", bus_}, 3,
                 "/dev/zero: is a character device, expected a regular file");
  ExpectCliError({"info", a_dir}, 3, "model_dir.onnx: is a directory");
  // Image source.
  ExpectCliError({"predict", "--model", model_, "--source", "/dev/zero"}, 3,
                 "/dev/zero: is a character device, expected a regular file");
  ExpectCliError({"predict", "--model", model_, "--source", fifo_jpg}, 3,
                 "pipe.jpg: is a FIFO, expected a regular file");
  // Names file.
  ExpectCliError({"predict", "--model", model_, "--source", bus_, "--names", names_fifo}, 3,
                 "names.txt: is a FIFO");
  ExpectCliError({"predict", "--model", model_, "--source", bus_, "--names", "/dev/zero"}, 3,
                 "/dev/zero: is a character device");
  // Labels (validate): a FIFO label file.
  fs::create_directories(dir_ + "/data/images");
  fs::create_directories(dir_ + "/data/labels");
  fs::copy_file(bus_, dir_ + "/data/images/bus.jpg");
  ASSERT_EQ(mkfifo((dir_ + "/data/labels/bus.txt").c_str(), 0644), 0);
  ExpectCliError({"validate", "--model", model_, "--data", dir_ + "/data"}, 3,
                 "bus.txt: is a FIFO");
}

TEST_F(CliInputHardeningTest, MaxPixelsIsCheckedFromTheHeader) {
  ExpectCliError({"predict", "--model", model_, "--source", bus_, "--max-pixels", "800000"}, 3,
                 "bus.jpg: image is 810x1080 = 874800 pixels, more than the limit 800000");
  fs::create_directories(dir_ + "/data/images");
  fs::copy_file(bus_, dir_ + "/data/images/bus.jpg");
  ExpectCliError(
      {"validate", "--model", model_, "--data", dir_ + "/data", "--max-pixels", "800000"}, 3,
      "image is 810x1080 = 874800 pixels, more than the limit 800000");
  const ProcessResult ok =
      RunCli({"predict", "--model", model_, "--source", bus_, "--max-pixels", "874800"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// Item 10: output that cannot be written was reported as success (exit 0).
TEST_F(CliInputHardeningTest, LostOutputIsExit4) {
  for (const char* target : {"/dev/full", "/proc/version"}) {
    ExpectCliError({"predict", "--model", model_, "--source", bus_, "--json", target}, 4, target);
  }
  fs::create_directories(dir_ + "/data/images");
  fs::copy_file(bus_, dir_ + "/data/images/bus.jpg");
  ExpectCliError({"validate", "--model", model_, "--data", dir_ + "/data", "--json", "/dev/full"},
                 4, "/dev/full");
  // Standard output on a full device: `--json -`, the human summary, `info --json`.
  const std::string cli = CliBinary();
  for (const std::string& args :
       {"predict --model " + model_ + " --source " + bus_ + " --json -",
        "predict --model " + model_ + " --source " + bus_, "info --json " + model_}) {
    const ProcessResult run = RunProcess("/bin/sh", {"-c", cli + " " + args + " > /dev/full"});
    EXPECT_EQ(run.exit_code, 4) << args << "\n" << run.err;
    EXPECT_NE(run.err.find("cvdeploy: error: stdout: cannot write: "), std::string::npos)
        << run.err;
  }
}

TEST_F(CliInputHardeningTest, JsonFileIsWrittenAtomically) {
  const std::string out = dir_ + "/out/result.jsonl";
  fs::create_directories(dir_ + "/out");
  { std::ofstream(out) << "old content\n"; }
  // A run that fails after the first result was written (the annotated image cannot be
  // saved in /proc/self) leaves the old file as it was, and no temporary file.
  ExpectCliError(
      {"predict", "--model", model_, "--source", bus_, "--json", out, "--save-dir", "/proc/self"},
      4, "/proc/self/bus.jpg");
  EXPECT_EQ(ReadFileText(out), "old content\n");
  const ProcessResult run = RunCli({"predict", "--model", model_, "--source", bus_, "--json", out});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(ParseJsonLines(ReadFileText(out)).size(), 1u);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir_ + "/out")) files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1u) << "a temporary file was left behind";
  // /dev/null is written in place, never replaced.
  const ProcessResult null_run =
      RunCli({"predict", "--model", model_, "--source", bus_, "--json", "/dev/null"});
  EXPECT_EQ(null_run.exit_code, 0) << null_run.err;
  struct stat st {};
  ASSERT_EQ(stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

// Item 14: a huge class id in the names metadata ended in "error: stol" (exit 4) without
// naming the model or the key.
TEST_F(CliInputHardeningTest, HugeClassIdInNamesMetadataNamesModelAndKey) {
  SyntheticModel m;
  m.outputs = {{"output0", {1, 6, 8}, std::vector<float>(6 * 8, 0.f)}};
  m.metadata = UltralyticsMetadata("detect", {"a", "b"});
  m.metadata["names"] = "{0: 'a', 99999999999999999999: 'b'}";
  const std::string path = dir_ + "/huge_names.onnx";
  WriteModel(m, path);
  const ProcessResult run = ExpectCliError({"info", path}, 3, "huge_names.onnx");
  EXPECT_NE(run.err.find("metadata 'names'"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("99999999999999999999 out of range"), std::string::npos) << run.err;
}

// Item 14: label lines Ultralytics refuses are reported (one warning per file) and their
// image is left out; a class id of 1e20 names its file and line.
TEST_F(CliInputHardeningTest, ValidateReportsCorruptLabelLines) {
  fs::create_directories(dir_ + "/data/images");
  fs::create_directories(dir_ + "/data/labels");
  fs::copy_file(bus_, dir_ + "/data/images/bus.jpg");
  fs::copy_file(Asset("images/zidane.jpg"), dir_ + "/data/images/zidane.jpg");
  std::ofstream(dir_ + "/data/labels/bus.txt") << "5 0.5 0.5 0.9 0.5\n"
                                                  "99999999999999999999 0.5 0.5 0.2 0.2\n"
                                                  "0 0.5 1.7 0.2 0.2\n";
  std::ofstream(dir_ + "/data/labels/zidane.txt") << "0 0.3 0.5 0.2 0.9\n";
  const std::vector<std::string> args = {"validate",     "--model", model_, "--data",
                                         dir_ + "/data", "--json",  "-"};
  const ProcessResult run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  EXPECT_NE(
      run.err.find("warning: " + dir_ +
                   "/data/labels/bus.txt: 2 corrupt label line(s), "
                   "image ignored (first: " +
                   dir_ + "/data/labels/bus.txt:2: class id 99999999999999999999 out of range"),
      std::string::npos)
      << run.err;
  EXPECT_EQ(nlohmann::json::parse(run.out)["images"], 1);
}

}  // namespace
}  // namespace cvdeploy::testing
