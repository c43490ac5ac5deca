// SPDX-License-Identifier: Apache-2.0
// The built CLI on bad input: the documented exit code (2 usage, 3 bad input) and ONE line
// on stderr that names the input and gives a reason; never an uncaught exception.

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/assets.h"
#include "support/fixtures.h"
#include "support/onnx_builder.h"
#include "support/process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;

void ExpectNoCrashText(const std::string& err, const std::string& what) {
  for (const char* bad : {"terminate", "what()", "Aborted", "core dumped", "Stack trace",
                          "stack trace", "Segmentation"}) {
    EXPECT_EQ(err.find(bad), std::string::npos) << "'" << bad << "' in stderr of " << what;
  }
}

class CliErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("cli-errors");
    model_ = Asset("models/yolov8n-dq.onnx");
    image_ = Asset("images/bus.jpg");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Bad input: exit 3 and exactly one stderr line that contains `names` and says more.
  void ExpectBadInput(const std::vector<std::string>& args, const std::string& names) {
    const ProcessResult run = RunCli(args, dir_);
    const std::string what = DescribeRun(args, run);
    EXPECT_EQ(run.exit_code, 3) << what;
    std::string err = run.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
    EXPECT_FALSE(err.empty()) << what;
    EXPECT_EQ(err.find('\n'), std::string::npos) << "more than one stderr line: " << what;
    EXPECT_NE(err.find(names), std::string::npos)
        << "stderr does not name " << names << ": " << what;
    EXPECT_GT(err.size(), names.size() + 8) << "no reason given: " << what;
    ExpectNoCrashText(run.err, what);
  }

  // Usage error: exit 2, something on stderr, no crash text.
  ProcessResult ExpectUsage(const std::vector<std::string>& args) {
    ProcessResult run = RunCli(args, dir_);
    const std::string what = DescribeRun(args, run);
    EXPECT_EQ(run.exit_code, 2) << what;
    EXPECT_FALSE(run.err.empty()) << what;
    ExpectNoCrashText(run.err, what);
    return run;
  }

  std::string dir_, model_, image_;
};

TEST_F(CliErrorsTest, MissingSourceFile) {
  const std::string missing = dir_ + "/no_such_image.jpg";
  ExpectBadInput({"predict", "--model", model_, "--source", missing}, "no_such_image.jpg");
}

TEST_F(CliErrorsTest, MissingModelFile) {
  const std::string missing = dir_ + "/no_such_model.onnx";
  ExpectBadInput({"predict", "--model", missing, "--source", image_}, "no_such_model.onnx");
}

TEST_F(CliErrorsTest, ZeroByteImage) {
  const std::string path = WriteZeroByteFile(dir_, "zero.jpg");
  ExpectBadInput({"predict", "--model", model_, "--source", path}, "zero.jpg");
}

TEST_F(CliErrorsTest, TruncatedJpeg) {
  const std::string path = WriteTruncatedJpeg(dir_, "cut.jpg");
  ExpectBadInput({"predict", "--model", model_, "--source", path}, "cut.jpg");
}

TEST_F(CliErrorsTest, TextFileNamedJpeg) {
  const std::string path = WriteTextAsJpeg(dir_, "words.jpg");
  ExpectBadInput({"predict", "--model", model_, "--source", path}, "words.jpg");
}

TEST_F(CliErrorsTest, EmptyDirectory) {
  const std::string path = MakeEmptyDir(dir_, "nothing_here");
  ExpectBadInput({"predict", "--model", model_, "--source", path}, "nothing_here");
}

TEST_F(CliErrorsTest, UnreadableVideo) {
  const std::string path = WriteUnreadableVideo(dir_, "broken.mp4");
  ExpectBadInput({"predict", "--model", model_, "--source", path}, "broken.mp4");
}

TEST_F(CliErrorsTest, InfoOnATextFileNamedOnnx) {
  const std::string path = WriteTextFile(dir_, "model.onnx", "not a protobuf at all\n");
  ExpectBadInput({"info", path}, "model.onnx");
}

TEST_F(CliErrorsTest, NonYoloModel) {
  const std::string path = dir_ + "/relu_only.onnx";
  WriteBytes(BuildNonYoloModel(), path);
  ExpectBadInput({"predict", "--model", path, "--source", image_}, "relu_only.onnx");
}

TEST_F(CliErrorsTest, WrongInputRankModel) {
  const std::string path = dir_ + "/rank3.onnx";
  WriteBytes(BuildWrongRankModel(), path);
  ExpectBadInput({"predict", "--model", path, "--source", image_}, "rank3.onnx");
}

TEST_F(CliErrorsTest, ValidateOnAnEmptyDirectory) {
  const std::string path = MakeEmptyDir(dir_, "no_dataset");
  ExpectBadInput({"validate", "--model", model_, "--data", path}, "no_dataset");
}

TEST_F(CliErrorsTest, PredictWithoutArgumentsIsUsage) { ExpectUsage({"predict"}); }

TEST_F(CliErrorsTest, ConfOutOfRangeIsUsage) {
  const ProcessResult run =
      ExpectUsage({"predict", "--model", model_, "--source", image_, "--conf", "2"});
  EXPECT_NE(run.err.find("conf"), std::string::npos) << run.err;
}

// Positive controls: the same invocations on good input succeed, so the failures above are
// about the input and not the command line.
TEST_F(CliErrorsTest, GoodImageSucceeds) {
  const std::vector<std::string> args = {"predict", "--model", model_, "--source",
                                         image_,    "--json",  "-"};
  const ProcessResult run = RunCli(args, dir_);
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  EXPECT_NE(run.out.find("bus"), std::string::npos) << run.out.substr(0, 400);
}

TEST_F(CliErrorsTest, GoodVideoSucceeds) {
  const std::string path = WriteVideo(dir_, "clip.avi", 2);
  const std::vector<std::string> args = {"predict", "--model", model_, "--source",
                                         path,      "--json",  "-"};
  const ProcessResult run = RunCli(args, dir_);
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
}

}  // namespace
}  // namespace cvdeploy::testing
