// SPDX-License-Identifier: Apache-2.0
// cvdeploy golden record --model M --images SRC --out DIR [--conf F --iou F --threads N --imgsz N]
// cvdeploy golden check  --model M --golden DIR [--threads N] [--json]
// The golden-set integrity gate outside the server, for CI: record a known-good model's
// outputs on a few images; check a model against them (exit 7 on a mismatch).
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/options.h"
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/golden.h"
#include "cvdeploy/predictor.h"

namespace cvdeploy::cli {
namespace {

struct GoldenArgs {
  std::string model;
  uint64_t max_model_bytes = kDefaultMaxModelBytes;
  int threads = 0;
  std::string device = "cpu";
  // record
  std::string images, out;
  int imgsz = 0;
  ThresholdArgs thresholds;
  // check
  std::string golden;
  bool json = false;
  ProtectionArgs protection;
};

SessionOptions Session(const GoldenArgs& args) {
  SessionOptions session;
  session.device = args.device;
  session.intra_op_threads = args.threads;
  session.max_model_bytes = args.max_model_bytes;
  return session;
}

std::unique_ptr<Predictor> Load(const GoldenArgs& args) {
  return LoadPredictor(args.model, Session(args), args.protection.protection);
}

void AddModelFlags(CLI::App& cmd, GoldenArgs* args) {
  cmd.add_option("--model", args->model, "ONNX model file or model package (.cvdm)")->required();
  AddMaxModelBytes(cmd, &args->max_model_bytes);
  args->protection.Add(cmd);
  cmd.add_option("--threads", args->threads, "ONNX Runtime intra-op threads (0: physical cores)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--device", args->device, "cpu, cuda[:N] or tensorrt[:N]");
}

int Record(const GoldenArgs& args) {
  const std::vector<GoldenInput> inputs = ReadGoldenInputs(args.images);
  const auto predictor = Load(args);
  PredictOptions predict = args.thresholds.ToPredictOptions(predictor->meta().names);
  predict.imgsz = args.imgsz;
  const GoldenSet set = RecordGolden(*predictor, inputs, predict);
  WriteGoldenDir(args.out, set, inputs);
  for (const GoldenRecord& r : set.records) {
    std::printf("%s: %zu detections, %zu outputs\n", r.input.c_str(), r.result.detections.size(),
                r.outputs.size());
  }
  std::printf("golden set: recorded %zu inputs in %s\n", set.records.size(), args.out.c_str());
  CheckStdout();
  return ExitCodeOf(Outcome::kOk);
}

int Check(const GoldenArgs& args) {
  // Without --golden: the set the model carries (a package's, or golden/ beside the model).
  const SessionOptions session = Session(args);
  security::OpenedModel opened = security::OpenModel(args.model, args.protection.protection,
                                                     session, {.load_golden = args.golden.empty()});
  if (args.golden.empty() && !opened.golden) {
    throw InvalidArgument("golden check: " + args.model +
                          " carries no golden set (no package golden, no golden/ beside it); "
                          "give --golden DIR");
  }
  const GoldenDir dir =
      args.golden.empty() ? std::move(*opened.golden) : ReadGoldenDir(args.golden);
  SessionOptions options = session;
  if (opened.encrypted) options.keep_model_bytes = false;
  const auto predictor = Predictor::Create(opened.model, options);
  opened.DropModelBytes();
  const GoldenReport report = CheckGolden(*predictor, dir.set, dir.inputs);
  if (args.json) {
    nlohmann::ordered_json failures = nlohmann::ordered_json::array();
    for (const GoldenFinding& f : report.failures) {
      failures.push_back({{"input", f.input}, {"reason", f.reason}});
    }
    const nlohmann::ordered_json j = {{"passed", report.passed},
                                      {"inputs", report.inputs},
                                      {"detections_matched", report.detections_matched},
                                      {"detections_expected", report.detections_expected},
                                      {"failures", failures},
                                      {"summary", report.Summary()}};
    std::cout << j.dump(2) << "\n";
  } else {
    for (const GoldenFinding& f : report.failures) {
      if (f.input.empty()) std::printf("model: %s\n", f.reason.c_str());
    }
    for (const GoldenRecord& r : dir.set.records) {
      bool ok = true;
      for (const GoldenFinding& f : report.failures) {
        if (f.input != r.input) continue;
        std::printf("%s: %s\n", r.input.c_str(), f.reason.c_str());
        ok = false;
      }
      if (ok) std::printf("%s: OK\n", r.input.c_str());
    }
    std::printf("%s\n", report.Summary().c_str());
  }
  std::cout.flush();
  CheckStdout();
  return ExitCodeOf(report.passed ? Outcome::kOk : Outcome::kGoldenMismatch);
}

}  // namespace

void RegisterGolden(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "golden",
      "Golden-set integrity gate: record a model's outputs on a few images, check a "
      "model against them (exit 7 on a mismatch)");
  cmd->require_subcommand(1);
  auto args = std::make_shared<GoldenArgs>();

  auto* record = cmd->add_subcommand("record", "Record a known-good model's outputs");
  AddModelFlags(*record, args.get());
  record->add_option("--images", args->images, "An image file, a directory of images or a glob")
      ->required();
  record->add_option("--out", args->out, "Golden directory to write (golden.json + the images)")
      ->required();
  record->add_option("--imgsz", args->imgsz, "Input size (models with dynamic spatial axes)")
      ->check(CLI::PositiveNumber);
  args->thresholds.Add(*record, 0.25f);
  record->callback([args, exit_code] { *exit_code = Record(*args); });

  auto* check = cmd->add_subcommand("check", "Check a model against a golden directory");
  AddModelFlags(*check, args.get());
  check->add_option("--golden", args->golden,
                    "Golden directory (from golden record); default: the package's golden set or "
                    "golden/ beside the model");
  check->add_flag("--json", args->json, "Print the report as JSON");
  check->callback([args, exit_code] { *exit_code = Check(*args); });
}

}  // namespace cvdeploy::cli
