// SPDX-License-Identifier: Apache-2.0
// cvdeploy samples list DIR [--json FILE]
// cvdeploy samples replay DIR --model M2 [--iou 0.5] [--min-agreement F] [--json FILE]
// The sample store of `serve --sample-dir` (cvdeploy/samples.h): list summarizes it (count,
// bytes, time range, models); replay re-runs the stored image inputs through another model
// (file or package) and matches its detections with the stored responses, the shadow
// comparison before promoting a version. A corrupt sample is skipped with one line on stderr.
// Replay exits 6 (as compare) when the overall agreement is under --min-agreement.
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
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/samples.h"

namespace cvdeploy::cli {
namespace {

struct SamplesArgs {
  std::string dir, json;
  ModelArgs model;
  double match_iou = 0.5;
  double min_agreement = 0.95;
  size_t max_samples = 0;
};

void WriteJson(const std::string& path, const nlohmann::ordered_json& j) {
  const std::string text = j.dump(2) + "\n";
  WriteFileAtomically(OutputPath("--json", path), std::vector<uint8_t>(text.begin(), text.end()));
}

void PrintSkipped(const char* command, const std::vector<std::string>& skipped) {
  for (const std::string& s : skipped) {
    std::fprintf(stderr, "cvdeploy: samples %s: skipped %s\n", command, s.c_str());
  }
}

void CheckDir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) throw NotFound(dir + ": no such sample directory");
  if (!std::filesystem::is_directory(dir, ec)) throw BadInput(dir + ": not a directory");
}

int List(const SamplesArgs& args) {
  CheckDir(args.dir);
  const samples::SampleListing listing = samples::ListSamples(args.dir);
  PrintSkipped("list", listing.skipped);
  const nlohmann::ordered_json j = samples::ListingToJson(args.dir, listing);
  std::printf("%s: %zu samples, %.1f MiB", args.dir.c_str(), listing.samples.size(),
              static_cast<double>(listing.bytes) / (1 << 20));
  if (!listing.skipped.empty()) std::printf(", %zu corrupt (skipped)", listing.skipped.size());
  std::printf("\n");
  if (!listing.samples.empty()) {
    std::printf("time: %s .. %s\n", listing.samples.front().meta.time.c_str(),
                listing.samples.back().meta.time.c_str());
  }
  for (const auto& [model, count] : j["models"].items()) {
    std::printf("  %-32s %6ld samples\n", model.c_str(), count.get<long>());
  }
  if (j["redacted"].get<long>() > 0) {
    std::printf("redacted: %ld\n", j["redacted"].get<long>());
  }
  if (!args.json.empty()) WriteJson(args.json, j);
  return ExitCodeOf(Outcome::kOk);
}

int Replay(const SamplesArgs& args) {
  CheckDir(args.dir);
  auto predictor = LoadPredictor(args.model.path, args.model.ToSessionOptions(),
                                 args.model.protection.protection);
  samples::ReplayOptions options;
  options.match_iou = static_cast<float>(args.match_iou);
  options.max_samples = args.max_samples;
  const samples::ReplayReport report = samples::ReplaySamples(*predictor, args.dir, options);
  PrintSkipped("replay", report.skipped);
  if (report.replayed == 0) {
    throw BadInput(args.dir + ": no image sample to replay (" +
                   std::to_string(report.skipped.size()) + " skipped)");
  }
  const Agreement& a = report.overall;
  std::printf("replayed %zu samples from %s through %s (a pair: same class, IoU >= %.2f)\n",
              report.replayed, args.dir.c_str(), args.model.path.c_str(), args.match_iou);
  std::printf("  %-40s %8s %8s %8s %9s\n", "sample", "stored", "replayed", "matched", "agreement");
  for (const samples::SampleAgreement& s : report.per_sample) {
    std::printf("  %-40.40s %8ld %8ld %8ld %8.1f%%\n", s.name.c_str(), s.stored, s.replayed,
                s.matched, 100 * s.agreement);
  }
  std::printf("per class (worst first):\n");
  for (const ClassAgreement& c : a.per_class) {
    std::printf("  %-20.20s stored %6ld replayed %6ld matched %6ld  %5.1f%%\n", c.name.c_str(),
                c.a_total, c.b_total, c.matched, 100 * c.agreement);
  }
  const bool passed = a.agreement >= args.min_agreement;
  std::printf(
      "overall: stored %ld, replayed %ld, matched %ld: agreement %.1f%% (of the replay's: "
      "%.1f%%); %ld of %zu samples fully matched\n",
      a.a_total, a.b_total, a.matched, 100 * a.agreement, 100 * a.b_agreement, a.images_all_matched,
      report.replayed);
  std::printf("%s  agreement %.1f%% %s --min-agreement %.1f%%\n", passed ? "PASS" : "FAIL",
              100 * a.agreement, passed ? ">=" : "<", 100 * args.min_agreement);
  std::fflush(stdout);
  if (!args.json.empty()) {
    nlohmann::ordered_json j = {{"dir", args.dir},
                                {"model", args.model.path},
                                {"match_iou", args.match_iou},
                                {"min_agreement", args.min_agreement},
                                {"passed", passed}};
    const nlohmann::ordered_json body = samples::ReplayReportToJson(report);
    for (auto it = body.begin(); it != body.end(); ++it) j[it.key()] = it.value();
    WriteJson(args.json, j);
  }
  return passed ? ExitCodeOf(Outcome::kOk) : ExitCodeOf(Outcome::kDisagreement);
}

}  // namespace

void RegisterSamples(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "samples", "Read the sample store of serve --sample-dir: list it, replay it on a model");
  cmd->require_subcommand(1);

  auto list_args = std::make_shared<SamplesArgs>();
  auto* list = cmd->add_subcommand("list", "Count, bytes, time range and models of a store");
  list->add_option("dir", list_args->dir, "Sample directory (serve --sample-dir)")->required();
  list->add_option("--json", list_args->json, "Also write the summary as JSON to FILE");
  list->callback([list_args, exit_code] { *exit_code = List(*list_args); });

  auto args = std::make_shared<SamplesArgs>();
  auto* replay = cmd->add_subcommand(
      "replay",
      "Re-run the stored images through another model and report agreement with the stored "
      "responses (exit 6 under --min-agreement)");
  replay->add_option("dir", args->dir, "Sample directory (serve --sample-dir)")->required();
  args->model.Add(*replay);
  replay
      ->add_option("--iou", args->match_iou,
                   "Minimum IoU of a matched pair (same class) between stored and replayed")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  replay
      ->add_option("--min-agreement", args->min_agreement,
                   "Exit 6 when the share of stored detections matched is below this")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  replay->add_option("--max-samples", args->max_samples, "Replay at most N samples (0: all)")
      ->check(CLI::NonNegativeNumber);
  replay->add_option("--json", args->json, "Also write the report as JSON to FILE");
  replay->callback([args, exit_code] { *exit_code = Replay(*args); });
}

}  // namespace cvdeploy::cli
