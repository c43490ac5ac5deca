// SPDX-License-Identifier: Apache-2.0
// The CLI's answers to a newcomer's habits (issue 18): --classes by name, a --names file of the
// wrong size, "did you mean" for mistyped commands and flags (reported as that typo, not as a
// missing required flag), Ultralytics-style key=value arguments with the equivalent command
// line, and pluralized counts in predict's summary. A synthetic detect model with constant
// output (3 classes, 4 known detections) makes every expectation exact and the runs fast.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/assets.h"
#include "support/fixtures.h"
#include "support/onnx_builder.h"
#include "support/process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kNames = {"person", "bus", "traffic light"};

// 4 anchors, channels first [1, 4 + 3, 4]: two persons (0.9, 0.85), a bus (0.8) and a traffic
// light (0.7), in separate rows of a 64x64 input so that NMS keeps all four.
SyntheticModel DetectModel() {
  const std::vector<float> cx = {32, 32, 32, 32}, cy = {8, 24, 40, 56};
  const std::vector<float> wh = {10, 10, 10, 10};
  const std::vector<std::vector<float>> scores = {
      {0.9f, 0.85f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.8f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.7f}};
  std::vector<float> values;
  for (const auto* row : {&cx, &cy, &wh, &wh})
    values.insert(values.end(), row->begin(), row->end());
  for (const auto& row : scores) values.insert(values.end(), row.begin(), row.end());
  SyntheticModel model;
  model.outputs = {{"output0", {1, 7, 4}, values}};
  model.metadata = UltralyticsMetadata("detect", kNames);
  return model;
}

std::string StripTrailingNewlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class CliFrictionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("cli-friction");
    model_ = dir_ + "/det3.onnx";
    WriteModel(DetectModel(), model_);
    image_ = Asset("images/bus.jpg");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // predict on the synthetic model with `extra` flags; the class names of the detections.
  std::vector<std::string> PredictClasses(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"predict", "--model", model_, "--source",
                                     image_,    "--json",  "-"};
    args.insert(args.end(), extra.begin(), extra.end());
    const ProcessResult run = RunCli(args, dir_);
    EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
    std::vector<std::string> names;
    for (const auto& line : ParseJsonLines(run.out)) {
      for (const auto& d : line["detections"]) names.push_back(d["class_name"]);
    }
    return names;
  }

  // Exit 2 and exactly `expected` as the stderr line (after "cvdeploy: usage error: ").
  ProcessResult ExpectUsageLine(const std::vector<std::string>& args, const std::string& expected) {
    const ProcessResult run = RunCli(args, dir_);
    const std::string what = DescribeRun(args, run);
    EXPECT_EQ(run.exit_code, 2) << what;
    EXPECT_EQ(StripTrailingNewlines(run.err), "cvdeploy: usage error: " + expected) << what;
    EXPECT_TRUE(run.out.empty()) << "the command ran: " << what;
    return run;
  }

  // Exit 2, a first line naming the key=value arguments and the hint line `hint`.
  void ExpectKeyValueHint(const std::vector<std::string>& args, const std::string& hint) {
    const ProcessResult run = RunCli(args, dir_);
    const std::string what = DescribeRun(args, run);
    EXPECT_EQ(run.exit_code, 2) << what;
    const std::vector<std::string> lines = Lines(StripTrailingNewlines(run.err));
    ASSERT_EQ(lines.size(), 2u) << what;
    EXPECT_NE(lines[0].find("usage error: Ultralytics-style arguments"), std::string::npos) << what;
    EXPECT_EQ(lines[0].find("is required"), std::string::npos) << what;
    EXPECT_EQ(lines[1], "did you mean: " + hint) << what;
  }

  std::string dir_, model_, image_;
};

// --- --classes by name -------------------------------------------------------------------

TEST_F(CliFrictionTest, ClassesByIdNameCaseAndMixed) {
  EXPECT_EQ(PredictClasses({}),
            (std::vector<std::string>{"person", "person", "bus", "traffic light"}));
  EXPECT_EQ(PredictClasses({"--classes", "person"}),
            (std::vector<std::string>{"person", "person"}));
  EXPECT_EQ(PredictClasses({"--classes", "1"}), (std::vector<std::string>{"bus"}));
  EXPECT_EQ(PredictClasses({"--classes", "Bus"}), (std::vector<std::string>{"bus"}));
  EXPECT_EQ(PredictClasses({"--classes", "traffic light,0"}),
            (std::vector<std::string>{"person", "person", "traffic light"}));
  // Repeated flags add up; a name and an id of the same class count once.
  EXPECT_EQ(PredictClasses({"--classes", "bus", "--classes", "2", "--classes", "1"}),
            (std::vector<std::string>{"bus", "traffic light"}));
}

TEST_F(CliFrictionTest, UnknownClassNameSuggestsTheClosest) {
  const std::vector<std::string> args = {"predict", "--model",   model_,     "--source",
                                         image_,    "--classes", "bus,persn"};
  const ProcessResult run = ExpectCliError(args, 2, "", dir_);
  EXPECT_NE(run.err.find("--classes: unknown class 'persn' (did you mean 'person'?)"),
            std::string::npos)
      << run.err;
  EXPECT_TRUE(run.out.empty()) << run.out;
}

TEST_F(CliFrictionTest, UnknownClassWithoutACloseNameOrIdOutOfRange) {
  ProcessResult run = ExpectCliError(
      {"predict", "--model", model_, "--source", image_, "--classes", "zebra"}, 2, "", dir_);
  EXPECT_NE(run.err.find("unknown class 'zebra'"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("did you mean"), std::string::npos) << run.err;
  run = ExpectCliError({"predict", "--model", model_, "--source", image_, "--classes", "3"}, 2,
                       "--classes: class id 3 is out of range", dir_);
  EXPECT_NE(run.err.find("ids 0-2"), std::string::npos) << run.err;
  ExpectCliError({"predict", "--model", model_, "--source", image_, "--classes", "-1"}, 2,
                 "class id -1 is out of range", dir_);
  // The old CLI11 range check on floats is gone.
  EXPECT_EQ(run.err.find("not in range"), std::string::npos) << run.err;
}

TEST_F(CliFrictionTest, ClassNamesResolveInOtherCommandsToo) {
  // validate resolves --classes right after loading the model, before reading the dataset.
  ExpectCliError(
      {"validate", "--model", model_, "--data", dir_ + "/no_dataset", "--classes", "buss"}, 2,
      "unknown class 'buss' (did you mean 'bus'?)", dir_);
  ExpectCliError({"bench", "--model", model_, "--source", image_, "--warmup", "0", "--iters", "1",
                  "--classes", "trafic light"},
                 2, "unknown class 'trafic light' (did you mean 'traffic light'?)", dir_);
  const ProcessResult ok = RunCli({"bench", "--model", model_, "--source", image_, "--warmup", "0",
                                   "--iters", "1", "--classes", "person,bus"},
                                  dir_);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// --- --names with the wrong count ----------------------------------------------------------

TEST_F(CliFrictionTest, NamesFileWithTheWrongCount) {
  const std::string two = WriteTextFile(dir_, "two.txt", "cat\ndog\n");
  ExpectCliError({"predict", "--model", model_, "--source", image_, "--names", two}, 3,
                 "names file has 2 entries, the model has 3", dir_);
  ExpectCliError({"validate", "--model", model_, "--data", dir_, "--names", two}, 3,
                 "names file has 2 entries, the model has 3", dir_);
  // The right count is used: the names come from the file, and --classes resolves them.
  const std::string three = WriteTextFile(dir_, "three.txt", "cat\ndog\nbird\n");
  EXPECT_EQ(PredictClasses({"--names", three, "--classes", "dog"}),
            (std::vector<std::string>{"dog"}));
}

TEST_F(CliFrictionTest, NamesFileWithTheWrongCountOnAClassifyModel) {
  SyntheticModel classify;
  classify.outputs = {{"output0", {1, 5}, {0.1f, 0.2f, 0.3f, 0.15f, 0.25f}}};
  classify.metadata = UltralyticsMetadata("classify", {"a", "b", "c", "d", "e"});
  const std::string path = dir_ + "/cls5.onnx";
  WriteModel(classify, path);
  const std::string two = WriteTextFile(dir_, "two.txt", "cat\ndog\n");
  ExpectCliError({"predict", "--model", path, "--source", image_, "--names", two}, 3,
                 "names file has 2 entries, the model has 5", dir_);
}

TEST_F(CliFrictionTest, MetadataNamesWithTheWrongCountNameTheMetadata) {
  SyntheticModel model = DetectModel();
  model.metadata = UltralyticsMetadata("detect", {"person", "bus"});
  const std::string path = dir_ + "/bad_meta.onnx";
  WriteModel(model, path);
  const ProcessResult run =
      ExpectCliError({"info", path}, 3, "metadata 'names' has 2 entries, the model has 3", dir_);
  EXPECT_EQ(run.err.find("names file"), std::string::npos) << run.err;
}

TEST_F(CliFrictionTest, NamesFileWithTheWrongCountOnARealModel) {
  const std::string two = WriteTextFile(dir_, "two.txt", "cat\ndog\n");
  ExpectCliError(
      {"predict", "--model", Asset("models/yolov8n-dq.onnx"), "--source", image_, "--names", two},
      3, "names file has 2 entries, the model has 80", dir_);
}

// --- mistyped commands and flags -----------------------------------------------------------

TEST_F(CliFrictionTest, UnknownCommandSuggestsTheClosest) {
  ExpectUsageLine({"predcit", "--model", model_, "--source", image_},
                  "unknown command 'predcit' (did you mean 'predict'?)");
  ExpectUsageLine({"valdate"}, "unknown command 'valdate' (did you mean 'validate'?)");
  ExpectUsageLine({"golden", "recrod"},
                  "unknown command 'golden recrod' (did you mean 'golden record'?)");
  ExpectUsageLine({"frobnicate"}, "unknown command 'frobnicate' (see 'cvdeploy --help')");
}

TEST_F(CliFrictionTest, MistypedFlagIsReportedAsTheTypoNotAsTheMissingFlag) {
  ExpectUsageLine({"predict", "--modle", model_, "--source", image_},
                  "unknown flag --modle (did you mean --model?)");
  ExpectUsageLine({"predict", "--modle", model_}, "unknown flag --modle (did you mean --model?)");
  ExpectUsageLine({"predict", "--modle=" + model_, "--source", image_},
                  "unknown flag --modle (did you mean --model?)");
  // With every required flag present the typo still stops the run before it starts.
  ExpectUsageLine({"predict", "--model", model_, "--source", image_, "--json", "-", "--cnf", "0.5"},
                  "unknown flag --cnf (did you mean --conf?)");
  ExpectUsageLine({"predict", "--model", model_, "--source", image_, "--zzzzzz"},
                  "unknown flag --zzzzzz (see 'cvdeploy predict --help')");
  ExpectUsageLine({"predict", "model", model_, "--source", image_},
                  "unexpected argument 'model' for 'cvdeploy predict' (did you mean --model?)");
}

TEST_F(CliFrictionTest, OtherUsageErrorsKeepTheirMessages) {
  // Nothing left over: CLI11's own message (the missing flag, the bad value) is the right one.
  ProcessResult run = RunCli({"predict", "--source", image_}, dir_);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("--model is required"), std::string::npos) << run.err;
  run = RunCli({"predict", "--model", model_, "--source", image_, "--conf", "2"}, dir_);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("--conf"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("did you mean"), std::string::npos) << run.err;
}

// --- Ultralytics-style key=value arguments -------------------------------------------------

TEST_F(CliFrictionTest, KeyValueArgumentsGetTheEquivalentCommandLine) {
  ExpectKeyValueHint({"predict", "model=x.onnx", "source=bus.jpg"},
                     "cvdeploy predict --model x.onnx --source bus.jpg");
  ExpectKeyValueHint({"predict", "model=x.onnx"}, "cvdeploy predict --model x.onnx");
  // As `yolo` takes them: no command (predict by default), a mode word, a task word.
  ExpectKeyValueHint({"model=x.onnx", "source=bus.jpg"},
                     "cvdeploy predict --model x.onnx --source bus.jpg");
  ExpectKeyValueHint({"val", "model=x.onnx", "data=coco128.yaml", "conf=0.001"},
                     "cvdeploy validate --model x.onnx --data coco128.yaml --conf 0.001");
  ExpectKeyValueHint({"detect", "predict", "model=x.onnx", "source=my dir/bus.jpg",
                      "agnostic_nms=True", "save_dir=out", "max_det=10"},
                     "cvdeploy predict --task detect --model x.onnx --source 'my dir/bus.jpg' "
                     "--agnostic-nms --save-dir out --max-det 10");
  // Mixed with flags: the flags stay where they were.
  ExpectKeyValueHint({"predict", "--source", "bus.jpg", "model=x.onnx"},
                     "cvdeploy predict --source bus.jpg --model x.onnx");
  // A mistyped command among them is replaced by the closest one.
  ExpectKeyValueHint({"predcit", "model=x.onnx", "source=bus.jpg"},
                     "cvdeploy predict --model x.onnx --source bus.jpg");
  // The task word alone, before the command.
  ExpectKeyValueHint({"detect", "predict", "--model", "x.onnx", "--source", "bus.jpg"},
                     "cvdeploy predict --task detect --model x.onnx --source bus.jpg");
}

TEST_F(CliFrictionTest, KeyValueShapedOptionValuesAreNotRewritten) {
  // "threads=1,2" is --sweep's value; the error is the bad --conf and nothing else.
  const std::vector<std::string> args = {"bench",       "--model", model_, "--sweep",
                                         "threads=1,2", "--conf",  "5"};
  const ProcessResult run = ExpectCliError(args, 2, "--conf", dir_);
  EXPECT_EQ(run.err.find("did you mean"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("Ultralytics"), std::string::npos) << run.err;
}

TEST_F(CliFrictionTest, TheHintedCommandLineRuns) {
  const std::vector<std::string> args = {"predict", "model=" + model_, "source=" + image_};
  const ProcessResult run = RunCli(args, dir_);
  ASSERT_EQ(run.exit_code, 2) << DescribeRun(args, run);
  const std::vector<std::string> lines = Lines(StripTrailingNewlines(run.err));
  ASSERT_EQ(lines.size(), 2u) << run.err;
  const std::string prefix = "did you mean: cvdeploy ";
  ASSERT_EQ(lines[1].rfind(prefix, 0), 0u) << lines[1];
  std::vector<std::string> hinted;
  std::istringstream words(lines[1].substr(prefix.size()));
  for (std::string w; words >> w;) hinted.push_back(w);
  hinted.insert(hinted.end(), {"--json", "-"});
  const ProcessResult again = RunCli(hinted, dir_);
  EXPECT_EQ(again.exit_code, 0) << DescribeRun(hinted, again);
  EXPECT_EQ(ParseJsonLines(again.out).size(), 1u) << again.out;
}

// --- pluralized counts ---------------------------------------------------------------------

TEST_F(CliFrictionTest, SummaryCountsArePluralizedInClassIdOrder) {
  auto summary = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"predict", "--model", model_, "--source", image_};
    args.insert(args.end(), extra.begin(), extra.end());
    const ProcessResult run = RunCli(args, dir_);
    EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
    return run.out;
  };
  std::string out = summary({});
  EXPECT_NE(out.find(": 2 persons, 1 bus, 1 traffic light, decode"), std::string::npos) << out;
  out = summary({"--classes", "person", "--max-det", "1"});
  EXPECT_NE(out.find(": 1 person, decode"), std::string::npos) << out;
  // Ids, not alphabetical or given order: person (0) before bus (1).
  out = summary({"--classes", "bus,person"});
  EXPECT_NE(out.find(": 2 persons, 1 bus, decode"), std::string::npos) << out;
  out = summary({"--conf", "0.95"});
  EXPECT_NE(out.find("(no detections)"), std::string::npos) << out;
}

}  // namespace
}  // namespace cvdeploy::testing
