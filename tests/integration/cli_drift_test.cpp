// SPDX-License-Identifier: Apache-2.0
// `cvdeploy profile-data` and `cvdeploy drift` end to end on coco128 with yolo11n-dq: a
// baseline of the first 60 images (sorted by name); the other 26, un-altered, stay below the
// warning threshold on every feature (exit 0), while darkened, blurred, grayscale and rotated
// copies of them, made here with OpenCV (re-encoded at each original's own JPEG quality, so
// that only the intended property changes), raise the expected features to the alert
// threshold (exit 8). Also the usage and input errors of both commands.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cvdeploy/drift.h"
#include "cvdeploy/file.h"
#include "support/assets.h"
#include "support/process.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;
using testing::Asset;
using testing::DescribeRun;
using testing::MakeTempDir;
using testing::RunCli;

constexpr int kDriftAlert = 8;
constexpr size_t kBaselineImages = 60;

std::string Model() { return Asset("models/yolo11n-dq.onnx"); }

std::vector<fs::path> Coco128() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(Asset("datasets/coco128/images"))) {
    if (e.path().extension() == ".jpg") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Copies `files` into a fresh directory, each transformed by `alter` (nothing: a plain copy).
template <typename Alter>
std::string MakeSet(const std::string& tag, const std::vector<fs::path>& files, Alter alter) {
  const std::string dir = MakeTempDir("drift-" + tag);
  for (const fs::path& f : files) {
    const std::vector<uint8_t> bytes = ReadFileBytes(f.string());
    const int quality = drift::EstimateJpegQuality(bytes.data(), bytes.size());
    cv::Mat image = cv::imread(f.string(), cv::IMREAD_COLOR);
    alter(image);
    EXPECT_TRUE(cv::imwrite(dir + "/" + f.filename().string(), image,
                            {cv::IMWRITE_JPEG_QUALITY, quality > 0 ? quality : 95}));
  }
  return dir;
}

struct Sets {
  std::string baseline_json, held, dark, blurred, gray, rotated;
};

const Sets& Data() {
  static const Sets sets = [] {
    const std::vector<fs::path> all = Coco128();
    EXPECT_EQ(all.size(), 86u);
    const std::vector<fs::path> base(all.begin(), all.begin() + kBaselineImages);
    const std::vector<fs::path> held(all.begin() + kBaselineImages, all.end());
    Sets s;
    const std::string base_dir = MakeTempDir("drift-base");
    for (const fs::path& f : base) fs::copy_file(f, base_dir + "/" + f.filename().string());
    s.held = MakeTempDir("drift-held");
    for (const fs::path& f : held) fs::copy_file(f, s.held + "/" + f.filename().string());
    s.dark = MakeSet("dark", held, [](cv::Mat& m) { m.convertTo(m, -1, 0.35, 0); });
    s.blurred = MakeSet("blur", held, [](cv::Mat& m) { cv::GaussianBlur(m, m, {0, 0}, 4.0); });
    s.gray = MakeSet("gray", held, [](cv::Mat& m) {
      cv::cvtColor(m, m, cv::COLOR_BGR2GRAY);
      cv::cvtColor(m, m, cv::COLOR_GRAY2BGR);
    });
    s.rotated = MakeSet("rot", held, [](cv::Mat& m) { cv::rotate(m, m, cv::ROTATE_90_CLOCKWISE); });
    s.baseline_json = MakeTempDir("drift-out") + "/baseline.json";
    const auto run = RunCli(
        {"profile-data", "--model", Model(), "--images", base_dir, "--out", s.baseline_json});
    EXPECT_EQ(run.exit_code, 0) << DescribeRun({"profile-data"}, run);
    return s;
  }();
  return sets;
}

// Runs `drift` on `dir`; returns its --json report after checking the exit code.
nlohmann::json RunDrift(const std::string& dir, int expected_exit) {
  const std::string json = MakeTempDir("drift-report") + "/report.json";
  const std::vector<std::string> args = {"drift",   "--baseline", Data().baseline_json,
                                         "--model", Model(),      "--images",
                                         dir,       "--json",     json};
  const auto run = RunCli(args);
  EXPECT_EQ(run.exit_code, expected_exit) << DescribeRun(args, run);
  if (!fs::exists(json)) return nlohmann::json::object();
  std::ifstream in(json);
  return nlohmann::json::parse(in);
}

double PsiOf(const nlohmann::json& report, const std::string& feature) {
  return report["features"][feature]["psi"].get<double>();
}

TEST(CliDrift, BaselineIsAFormat1DocumentOfTheFirst60Images) {
  const drift::Baseline b = drift::ReadBaseline(Data().baseline_json);
  EXPECT_EQ(b.histograms.images, kBaselineImages);
  EXPECT_EQ(b.histograms.classes, 80);
  EXPECT_GT(b.histograms.boxes, 100u);
  EXPECT_EQ(b.model, "yolo11n-dq.onnx");
}

TEST(CliDrift, HeldApartImagesStayBelowWarnOnEveryFeature) {
  const nlohmann::json r = RunDrift(Data().held, 0);
  ASSERT_TRUE(r.contains("features")) << r.dump();
  EXPECT_EQ(r["images"], 26);
  EXPECT_EQ(r["alert"], false);
  ASSERT_EQ(r["features"].size(), static_cast<size_t>(drift::kFeatureCount));
  for (const auto& [name, f] : r["features"].items()) {
    EXPECT_LT(f["psi"].get<double>(), 0.1) << name;
    EXPECT_EQ(f["level"], "ok") << name;
  }
}

TEST(CliDrift, DarkenedImagesAlertOnBrightness) {
  const nlohmann::json r = RunDrift(Data().dark, kDriftAlert);
  ASSERT_TRUE(r.contains("features")) << r.dump();
  EXPECT_EQ(r["alert"], true);
  EXPECT_GE(PsiOf(r, "brightness"), 0.25) << r.dump();
  EXPECT_EQ(r["features"]["brightness"]["level"], "alert");
  EXPECT_LT(PsiOf(r, "aspect_ratio"), 0.1) << r.dump();  // geometry untouched
}

TEST(CliDrift, BlurredImagesAlertOnSharpness) {
  const nlohmann::json r = RunDrift(Data().blurred, kDriftAlert);
  ASSERT_TRUE(r.contains("features")) << r.dump();
  EXPECT_GE(PsiOf(r, "sharpness"), 0.25) << r.dump();
  EXPECT_LT(PsiOf(r, "brightness"), 0.1) << r.dump();
}

TEST(CliDrift, GrayscaleImagesAlertOnSaturationAndColourfulness) {
  const nlohmann::json r = RunDrift(Data().gray, kDriftAlert);
  ASSERT_TRUE(r.contains("features")) << r.dump();
  EXPECT_GE(PsiOf(r, "saturation"), 0.25) << r.dump();
  EXPECT_GE(PsiOf(r, "colourfulness"), 0.25) << r.dump();
  EXPECT_LT(PsiOf(r, "aspect_ratio"), 0.1) << r.dump();
}

TEST(CliDrift, RotatedImagesAlertOnAspectRatio) {
  const nlohmann::json r = RunDrift(Data().rotated, kDriftAlert);
  ASSERT_TRUE(r.contains("features")) << r.dump();
  EXPECT_GE(PsiOf(r, "aspect_ratio"), 0.25) << r.dump();
  EXPECT_LT(PsiOf(r, "saturation"), 0.1) << r.dump();
}

TEST(CliDrift, ThresholdFlagsDecideTheExitCode) {
  // The darkened set with an alert threshold above any PSI it reaches: warn at most, exit 0.
  const std::string json = MakeTempDir("drift-thr") + "/r.json";
  const std::vector<std::string> args = {"drift",     "--baseline", Data().baseline_json,
                                         "--model",   Model(),      "--images",
                                         Data().dark, "--json",     json,
                                         "--warn",    "0.2",        "--alert",
                                         "1000"};
  const auto run = RunCli(args);
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  std::ifstream in(json);
  const nlohmann::json r = nlohmann::json::parse(in);
  EXPECT_EQ(r["alert"], false);
  EXPECT_EQ(r["features"]["brightness"]["level"], "warn");
  EXPECT_NE(run.out.find("brightness"), std::string::npos) << run.out;
}

TEST(CliDrift, InputAndUsageErrors) {
  const std::string dir = MakeTempDir("drift-err");
  testing::ExpectCliError(
      {"drift", "--baseline", dir + "/missing.json", "--model", Model(), "--images", Data().held},
      3, "missing.json");
  {
    std::ofstream(dir + "/bad.json") << R"({"format": 2})";
    testing::ExpectCliError(
        {"drift", "--baseline", dir + "/bad.json", "--model", Model(), "--images", Data().held}, 3,
        "format");
  }
  testing::ExpectCliError({"drift", "--baseline", Data().baseline_json, "--model", Model(),
                           "--images", Data().held, "--warn", "0.5", "--alert", "0.2"},
                          2, "--warn");
  fs::create_directories(dir + "/empty");
  std::ofstream(dir + "/empty/notes.txt") << "no images here";
  testing::ExpectCliError(
      {"profile-data", "--model", Model(), "--images", dir + "/empty", "--out", dir + "/b.json"}, 3,
      "no images");
  EXPECT_FALSE(fs::exists(dir + "/b.json"));
}

}  // namespace
}  // namespace cvdeploy
