// SPDX-License-Identifier: Apache-2.0
// `cvdeploy doctor` end to end: the environment alone; yolo11n-dq clean; the dynamically
// quantized yolov8n_int8 flagged as a precision trap; a model whose names metadata does not
// fit its output FAILs with exit 3 (diagnosed though cvdeploy refuses to load it); --json to
// stdout and to a file parses; a golden set that passes (given, beside the model, inside a
// .cvdm package, encrypted) is OK and a tampered one FAILs; a missing model is a one-line
// error with exit 3.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/assets.h"
#include "support/model_variants.h"
#include "support/process.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;
using testing::Asset;
using testing::DescribeRun;
using testing::ExpectCliError;
using testing::MakeTempDir;
using testing::ProcessResult;
using testing::RunCli;

const std::string& Dir() {
  static const std::string dir = MakeTempDir("cli_doctor");
  return dir;
}

// A golden set of yolov8n-dq on bus.jpg and zidane.jpg, recorded once by `golden record`.
const std::string& GoldenSet() {
  static const std::string golden = [] {
    const std::string images = Dir() + "/images";
    fs::create_directories(images);
    fs::copy_file(Asset("images/bus.jpg"), images + "/bus.jpg");
    fs::copy_file(Asset("images/zidane.jpg"), images + "/zidane.jpg");
    const std::string out = Dir() + "/golden";
    const std::vector<std::string> args = {
        "golden",   "record", "--model", Asset("models/yolov8n-dq.onnx"),
        "--images", images,   "--out",   out};
    const ProcessResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 0) << DescribeRun(args, r);
    return out;
  }();
  return golden;
}

// Runs doctor with --json - and returns the parsed report (asserting the exit code).
nlohmann::json Doctor(std::vector<std::string> args, int expected_exit) {
  args.insert(args.begin(), "doctor");
  args.insert(args.end(), {"--json", "-"});
  const ProcessResult r = RunCli(args);
  EXPECT_EQ(r.exit_code, expected_exit) << DescribeRun(args, r);
  try {
    return nlohmann::json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON: " << e.what() << "\n" << DescribeRun(args, r);
    return nlohmann::json::object();
  }
}

// The finding area/check of a JSON report (null when absent).
nlohmann::json Finding(const nlohmann::json& report, const std::string& area,
                       const std::string& check) {
  for (const auto& f : report.value("findings", nlohmann::json::array())) {
    if (f["area"] == area && f["check"] == check) return f;
  }
  return nullptr;
}

void ExpectLevel(const nlohmann::json& report, const std::string& area, const std::string& check,
                 const std::string& level, const std::string& text = "") {
  const nlohmann::json f = Finding(report, area, check);
  ASSERT_FALSE(f.is_null()) << area << "/" << check << " missing: " << report.dump(1);
  EXPECT_EQ(f["level"], level) << f.dump();
  EXPECT_NE(f["detail"].get<std::string>().find(text), std::string::npos) << f.dump();
  EXPECT_FALSE(f["advice"].get<std::string>().empty()) << f.dump();
}

TEST(CliDoctor, EnvironmentAloneHumanTable) {
  const std::vector<std::string> args = {"doctor"};
  const ProcessResult r = RunCli(args);
  ASSERT_EQ(r.exit_code, 0) << DescribeRun(args, r);
  for (const char* text :
       {"cpu", "engine", "ONNX Runtime", "opencv", "threads", "PlanThreads", "0 FAIL", "-> "}) {
    EXPECT_NE(r.out.find(text), std::string::npos) << text << "\n" << r.out;
  }
  EXPECT_EQ(r.out.find("\033["), std::string::npos) << "colour on a pipe";
  for (const char* area : {"\nOK    model", "metadata", "preprocess", "golden"}) {
    EXPECT_EQ(r.out.find(area), std::string::npos) << area << ": model findings without --model";
  }
}

TEST(CliDoctor, JsonToStdoutAndToAFile) {
  const nlohmann::json report = Doctor({}, 0);
  EXPECT_NE(report.value("status", ""), "fail");
  EXPECT_GT(report["machine"]["logical_cores"].get<int>(), 0);
  EXPECT_GE(report["engine"]["max_opset"].get<int>(), 21);
  ExpectLevel(report, "engine", "providers", "ok", "CPUExecutionProvider");
  ExpectLevel(report, "threads", "plan", "ok", "physical cores");

  const std::string file = Dir() + "/report.json";
  const std::vector<std::string> args = {"doctor", "--json", file};
  const ProcessResult r = RunCli(args);
  ASSERT_EQ(r.exit_code, 0) << DescribeRun(args, r);
  EXPECT_NE(r.out.find("FAIL"), std::string::npos) << "the table still goes to stdout";
  std::ifstream in(file);
  const nlohmann::json from_file = nlohmann::json::parse(in);
  EXPECT_EQ(from_file["findings"].size(), report["findings"].size());
}

TEST(CliDoctor, Yolo11nIsClean) {
  const nlohmann::json report = Doctor({"--model", Asset("models/yolo11n-dq.onnx")}, 0);
  ExpectLevel(report, "model", "opset", "ok");
  ExpectLevel(report, "metadata", "names", "ok", "80 class names");
  ExpectLevel(report, "metadata", "task", "ok", "detect");
  ExpectLevel(report, "precision", "type", "ok");
  ExpectLevel(report, "preprocess", "contract", "ok", "pad 114");
  ExpectLevel(report, "model", "session", "ok", "CPUExecutionProvider");
  ExpectLevel(report, "golden", "check", "ok", "no golden set");
  for (const auto& f : report["findings"]) {
    if (f["area"] == "metadata" || f["area"] == "model") {
      EXPECT_EQ(f["level"], "ok") << f.dump();
    }
  }
}

TEST(CliDoctor, DynamicQuantizationIsAPrecisionTrap) {
  const nlohmann::json report = Doctor({"--model", Asset("models/yolov8n_int8.onnx")}, 0);
  ExpectLevel(report, "precision", "quantization", "warn", "ConvInteger");
  EXPECT_EQ(report["status"], "warn");
}

TEST(CliDoctor, WrongNamesMetadataFailsWithExit3) {
  const std::string model = testing::ModelWithMetadata(Asset("models/yolo11n-dq.onnx"), "names",
                                                       "{0: 'person', 1: 'car'}", "doctor-names");
  const nlohmann::json report = Doctor({"--model", model}, 3);
  ExpectLevel(report, "metadata", "names", "fail", "names has 2 classes");
  ExpectLevel(report, "model", "load", "fail", "names");
  EXPECT_EQ(report["status"], "fail");
  // The table says the same.
  const ProcessResult r = RunCli({"doctor", "--model", model});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.out.find("FAIL  metadata   names"), std::string::npos) << r.out;
}

TEST(CliDoctor, NotAModelFailsWithExit3) {
  const std::string junk = Dir() + "/junk.onnx";
  std::ofstream(junk) << "this is not a model";
  const nlohmann::json report = Doctor({"--model", junk}, 3);
  ExpectLevel(report, "model", "load", "fail", "junk.onnx");
}

TEST(CliDoctor, GoldenSetPassesAndTamperedSetFails) {
  const std::string model = Asset("models/yolov8n-dq.onnx");
  ExpectLevel(Doctor({"--model", model, "--golden", GoldenSet()}, 0), "golden", "check", "ok",
              "passed (2 inputs");

  // Tampered: one recorded input replaced by another image.
  const std::string tampered = Dir() + "/tampered";
  fs::copy(GoldenSet(), tampered);
  fs::copy_file(Asset("images/zidane.jpg"), tampered + "/bus.jpg",
                fs::copy_options::overwrite_existing);
  ExpectLevel(Doctor({"--model", model, "--golden", tampered}, 3), "golden", "check", "fail",
              "FAILED");

  // golden/ beside the model is found without --golden.
  const std::string beside = Dir() + "/beside";
  fs::create_directories(beside);
  fs::copy_file(model, beside + "/model.onnx");
  fs::copy(GoldenSet(), beside + "/golden");
  ExpectLevel(Doctor({"--model", beside + "/model.onnx"}, 0), "golden", "check", "ok",
              "golden/ beside the model");
}

TEST(CliDoctor, PackagesWithTheirGoldenSet) {
  const std::string model = Asset("models/yolov8n-dq.onnx");
  const std::string keys = Dir() + "/keys";
  ASSERT_EQ(RunCli({"keygen", "--kind", "data", "--out", keys}).exit_code, 0);
  const std::string plain = Dir() + "/plain.cvdm", sealed = Dir() + "/sealed.cvdm";
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"pack", "--model", model, "--out", plain, "--golden", GoldenSet()},
           {"pack", "--model", model, "--out", sealed, "--golden", GoldenSet(), "--encrypt-key",
            keys + "/data.key"}}) {
    const ProcessResult r = RunCli(args);
    ASSERT_EQ(r.exit_code, 0) << DescribeRun(args, r);
  }
  nlohmann::json report = Doctor({"--model", plain}, 0);
  ExpectLevel(report, "package", "signature", "warn", "unsigned");
  ExpectLevel(report, "golden", "check", "ok", "the package's golden set");
  ExpectLevel(report, "model", "session", "ok");

  report = Doctor({"--model", sealed, "--decrypt-key-file", keys + "/data.key"}, 0);
  ExpectLevel(report, "package", "signature", "warn", "encrypted");
  ExpectLevel(report, "golden", "check", "ok", "passed");
  ExpectLevel(report, "metadata", "names", "ok", "80 class names");
}

TEST(CliDoctor, FailurePaths) {
  ExpectCliError({"doctor", "--model", Dir() + "/nothing.onnx"}, 3, "nothing.onnx");
  ExpectCliError({"doctor", "--model", Dir()}, 3, "directory");
  ExpectCliError({"doctor", "--golden", GoldenSet()}, 2, "--golden");
  ExpectCliError(
      {"doctor", "--model", Asset("models/yolov8n-dq.onnx"), "--golden", Dir() + "/no-such-golden"},
      3, "no-such-golden");
}

}  // namespace
}  // namespace cvdeploy
