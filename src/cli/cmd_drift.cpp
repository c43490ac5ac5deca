// SPDX-License-Identifier: Apache-2.0
// cvdeploy profile-data --model M --images DIR --out baseline.json
// cvdeploy drift --baseline baseline.json --model M --images DIR [--json FILE] [--warn X]
//                [--alert Y]
// Data drift offline (cvdeploy/drift.h): profile-data records the histograms of the input and
// output features of representative images; drift compares a new image set with them (PSI per
// feature) and exits 8 when a feature reaches the alert threshold. Images are decoded and
// predicted as the server does (DecodeImageForModel, then the model), so a baseline made here
// serves the server's monitor too.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/options.h"
#include "cli/output_path.h"
#include "cvdeploy/drift.h"
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"

namespace cvdeploy::cli {
namespace {

struct DriftArgs {
  ModelArgs model;
  ThresholdArgs thresholds;
  uint64_t max_pixels = kDefaultMaxPixels;
  std::string images, out, baseline, json;
  drift::Thresholds levels;
};

std::vector<std::string> ImageFiles(const std::string& images) {
  std::vector<std::string> files;
  for (const std::string& path : ExpandSources({images})) {
    if (HasImageExtension(path)) files.push_back(path);
  }
  if (files.empty()) throw BadInput(images + ": no images (jpg, png, bmp, webp, tif)");
  return files;
}

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Wall time of the prediction and of the monitoring work per image: what a server pays per
// request for drift monitoring (features, window, PSI of every feature), measured in process.
struct Cost {
  double predict_ms = 0, monitor_ms = 0;
  void Print(uint64_t images) const {
    if (images == 0 || predict_ms <= 0) return;
    std::printf(
        "monitoring cost: %.2f ms per image (features, window, PSI), %.2f%% of the "
        "%.1f ms prediction\n",
        monitor_ms / images, 100 * monitor_ms / predict_ms, predict_ms / images);
  }
};

// Predicts every image of --images and returns the histograms of their features. With a
// `baseline`, each image's monitoring cost includes a PSI comparison, as in the server.
drift::Histograms Profile(const DriftArgs& args, const Predictor& predictor,
                          const PredictOptions& options, const drift::Baseline* baseline,
                          Cost* cost) {
  const ModelMeta& meta = predictor.meta();
  const int side = args.model.imgsz;
  const cv::Size input = side > 0 ? cv::Size(side, side) : cv::Size(meta.imgsz_w, meta.imgsz_h);
  drift::Histograms histograms(static_cast<int>(std::max<size_t>(1, meta.names.size())));
  for (const std::string& path : ImageFiles(args.images)) {
    const std::vector<uint8_t> bytes = ReadFileBytes(path);
    CheckImagePixels(bytes.data(), bytes.size(), path, args.max_pixels);
    cv::Size original;
    const cv::Mat image = DecodeImageForModel(bytes, path, input, &original);
    auto t0 = std::chrono::steady_clock::now();
    Result result = predictor.Predict(image, options);
    if (original != image.size()) RescaleResult(result, original);
    cost->predict_ms += MsSince(t0);
    t0 = std::chrono::steady_clock::now();
    histograms.Add(drift::Observe(image, original, bytes.data(), bytes.size(), result));
    if (baseline != nullptr) drift::Compare(*baseline, histograms, args.levels);
    cost->monitor_ms += MsSince(t0);
  }
  return histograms;
}

std::unique_ptr<Predictor> Load(const DriftArgs& args, PredictOptions* options) {
  auto predictor = LoadPredictor(args.model.path, args.model.ToSessionOptions(),
                                 args.model.protection.protection);
  *options = args.thresholds.ToPredictOptions(predictor->meta().names);
  options->imgsz = args.model.imgsz;
  return predictor;
}

int ProfileData(const DriftArgs& args) {
  CheckOutputPath("profile-data", args.model.path, "--out", args.out);
  PredictOptions options;
  const auto predictor = Load(args, &options);
  drift::Baseline baseline;
  baseline.model = std::filesystem::path(args.model.path).filename().string();
  baseline.conf = options.conf;
  baseline.iou = options.iou;
  Cost cost;
  baseline.histograms = Profile(args, *predictor, options, nullptr, &cost);
  const std::string text = drift::BaselineToJson(baseline);
  WriteFileAtomically(args.out, std::vector<uint8_t>(text.begin(), text.end()));
  std::printf("profile-data: %llu images, %llu boxes -> %s\n",
              static_cast<unsigned long long>(baseline.histograms.images),
              static_cast<unsigned long long>(baseline.histograms.boxes), args.out.c_str());
  cost.Print(baseline.histograms.images);
  CheckStdout();
  return ExitCodeOf(Outcome::kOk);
}

int Drift(const DriftArgs& args) {
  if (!(args.levels.warn > 0 && args.levels.warn <= args.levels.alert)) {
    throw InvalidArgument("drift: --warn must be > 0 and <= --alert");
  }
  const drift::Baseline baseline = drift::ReadBaseline(args.baseline);
  PredictOptions options;
  const auto predictor = Load(args, &options);
  const int classes = static_cast<int>(std::max<size_t>(1, predictor->meta().names.size()));
  if (classes != baseline.histograms.classes) {
    throw InvalidArgument("drift: " + args.baseline + " was profiled with " +
                          std::to_string(baseline.histograms.classes) + " classes, " +
                          args.model.path + " has " + std::to_string(classes));
  }
  if (options.conf != baseline.conf || options.iou != baseline.iou) {
    std::fprintf(stderr,
                 "warning: --conf/--iou differ from the baseline's (%g/%g): the prediction "
                 "features will differ for that reason alone\n",
                 baseline.conf, baseline.iou);
  }
  Cost cost;
  const drift::Histograms window = Profile(args, *predictor, options, &baseline, &cost);
  const drift::DriftReport report = drift::Compare(baseline, window, args.levels);
  std::printf("%-14s %9s  %s\n", "feature", "psi", "level");
  nlohmann::ordered_json features = nlohmann::ordered_json::object();
  for (const drift::FeatureDrift& f : report.features) {
    const std::string level(drift::LevelName(f.level));
    std::printf("%-14s %9.4f  %s\n", std::string(f.name).c_str(), f.psi, level.c_str());
    features[std::string(f.name)] = {{"psi", f.psi}, {"level", level}};
  }
  std::printf("drift: %llu images against %s (%llu images): %s\n",
              static_cast<unsigned long long>(report.images), args.baseline.c_str(),
              static_cast<unsigned long long>(baseline.histograms.images),
              report.alert ? "ALERT (a feature reached the alert threshold)"
                           : "no feature reached the alert threshold");
  cost.Print(report.images);
  if (!args.json.empty()) {
    const nlohmann::ordered_json j = {
        {"features", features},
        {"alert", report.alert},
        {"images", report.images},
        {"thresholds", {{"warn", args.levels.warn}, {"alert", args.levels.alert}}}};
    const std::string text = j.dump(2) + "\n";
    WriteFileAtomically(OutputPath("--json", args.json),
                        std::vector<uint8_t>(text.begin(), text.end()));
  }
  CheckStdout();
  return ExitCodeOf(report.alert ? Outcome::kDriftAlert : Outcome::kOk);
}

void AddCommon(CLI::App& cmd, DriftArgs* args) {
  args->model.Add(cmd);
  cmd.add_option("--images", args->images, "A directory of images, an image file or a glob")
      ->required();
  args->thresholds.Add(cmd, 0.25f);
  AddMaxPixels(cmd, &args->max_pixels);
}

}  // namespace

void RegisterDrift(CLI::App& app, int* exit_code) {
  auto profile_args = std::make_shared<DriftArgs>();
  auto* profile = app.add_subcommand(
      "profile-data", "Record a data-drift baseline: feature histograms of representative images");
  AddCommon(*profile, profile_args.get());
  profile->add_option("--out", profile_args->out, "Baseline JSON to write")->required();
  profile->callback([profile_args, exit_code] { *exit_code = ProfileData(*profile_args); });

  auto args = std::make_shared<DriftArgs>();
  auto* cmd = app.add_subcommand(
      "drift", "Compare images with a baseline: PSI per feature (exit 8 on an alert)");
  cmd->add_option("--baseline", args->baseline, "Baseline JSON (from profile-data)")->required();
  AddCommon(*cmd, args.get());
  cmd->add_option("--json", args->json, "Also write the report as JSON to FILE");
  cmd->add_option("--warn", args->levels.warn, "PSI warning threshold")->check(CLI::PositiveNumber);
  cmd->add_option("--alert", args->levels.alert, "PSI alert threshold (exit 8)")
      ->check(CLI::PositiveNumber);
  cmd->callback([args, exit_code] { *exit_code = Drift(*args); });
}

}  // namespace cvdeploy::cli
