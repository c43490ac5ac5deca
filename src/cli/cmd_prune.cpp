// SPDX-License-Identifier: Apache-2.0
// cvdeploy prune --model M --ratio 0.3 [--method l1|l2|activation] [--exclude NODE,...]
//                [--val DATA] --out OUT.onnx
// Structured channel pruning (cvdeploy/tools.h): the result is checked, run in ONNX
// Runtime against the original before it is written, and reports parameters and FLOPs before
// and after, computed from the graph; with --val, the mAP of both measured on a labelled
// dataset, and a plain verdict when the pruned model is unusable without fine-tuning.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/output_path.h"
#include "cvdeploy/dataset_yaml.h"
#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "cvdeploy/file.h"
#include "cvdeploy/model.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/tools.h"

namespace cvdeploy::cli {
namespace {

struct PruneArgs {
  std::string model;
  uint64_t max_model_bytes = kDefaultMaxModelBytes;
  std::string output;
  double ratio = 0;
  std::string method = "l1";
  std::vector<std::string> exclude;
  int channel_multiple = 8;
  std::string calib;
  int calib_size = 16;
  std::string val;
  int threads = 0;
  bool verbose = false;
};

// Below this share of the original mAP50-95 the pruned model is reported as unusable until
// it is fine-tuned (channel pruning without retraining typically lands far below it).
constexpr double kUsableShare = 0.8;

std::string Format(const char* format, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), format, args...);
  return buf;
}

double Change(double before, double after) {
  return before > 0 ? 100.0 * (after - before) / before : 0.0;
}

PruneOptions CheckUsage(const PruneArgs& args) {
  if (!(args.ratio > 0 && args.ratio < 1)) {
    throw InvalidArgument(
        Format("prune: --ratio %g is outside (0, 1): it is the fraction of "
               "channels to remove",
               args.ratio));
  }
  if (args.channel_multiple < 1 || args.channel_multiple > 64) {
    throw InvalidArgument(
        Format("prune: --channel-multiple %d is outside [1, 64]", args.channel_multiple));
  }
  PruneOptions options;
  options.ratio = args.ratio;
  options.method = ParsePruneMethod(args.method);
  options.exclude = args.exclude;
  options.channel_multiple = args.channel_multiple;
  if (args.calib_size < 1) {
    throw InvalidArgument(Format("prune: --calib-size %d must be at least 1", args.calib_size));
  }
  options.calib_dir = args.calib;
  options.calib_size = args.calib_size;
  if (options.method == PruneMethod::kActivation && options.calib_dir.empty()) {
    throw InvalidArgument("prune: --method activation needs calibration images: give --calib DIR");
  }
  if (!args.val.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(args.val, ec) && !IsDatasetYaml(args.val)) {
      throw BadInput("prune: --val " + args.val + ": no such dataset directory or YAML");
    }
  }
  CheckOutputPath("prune", args.model, "--out", args.output);
  return options;
}

// mAP50-95 and mAP50 of a model given as bytes on `dataset`, at validate's thresholds.
Metrics MeasureMap(const std::vector<uint8_t>& bytes, const std::string& name,
                   const Dataset& dataset, int threads) {
  SessionOptions session;
  session.intra_op_threads = threads;
  const auto predictor = Predictor::LoadFromMemory(bytes, name, session);
  PredictOptions options;
  options.conf = 0.001f;  // validate's default
  return ValidateModel(*predictor, dataset, options).report.box;
}

// --val: both models on the labelled images, then the verdict.
std::string Accuracy(const PruneArgs& args, const std::vector<uint8_t>& before,
                     const std::vector<uint8_t>& after) {
  const ModelMeta meta = Model::FromMemory(before, args.model).info().meta;
  const Dataset dataset = LoadYoloDataset(args.val, meta.kpt_shape ? meta.kpt_shape->first : 0,
                                          static_cast<int>(meta.names.size()));
  const Metrics a = MeasureMap(before, args.model, dataset, args.threads);
  const Metrics b = MeasureMap(after, args.output, dataset, args.threads);
  std::string out =
      Format("mAP50-95   %.4f -> %.4f (%+.4f), mAP50 %.4f -> %.4f, on %zu images of %s\n",
             a.map50_95, b.map50_95, b.map50_95 - a.map50_95, a.map50, b.map50,
             dataset.images.size(), args.val.c_str());
  const double share = a.map50_95 > 0 ? b.map50_95 / a.map50_95 : 0.0;
  if (share < kUsableShare) {
    out += Format(
        "UNUSABLE   without fine-tuning: the pruned model keeps %.0f%% of the original "
        "mAP50-95; recover it with `cvdeploy distill --student PRUNED --teacher ORIGINAL --images "
        "DIR` before use\n",
        100.0 * share);
  } else {
    out += Format("accuracy   the pruned model keeps %.0f%% of the original mAP50-95\n",
                  100.0 * share);
  }
  return out;
}

std::string GroupName(const PruneGroup& g) {
  std::string s = g.piece.empty() ? "'" + g.convs.front() + "'" : g.piece;
  if (g.convs.size() > 1) s += Format(" (+%zu tied Conv)", g.convs.size() - 1);
  return s;
}

void Prune(const PruneArgs& args) {
  const PruneOptions options = CheckUsage(args);
  const std::vector<uint8_t> bytes = ReadModelBytes(args.model, args.max_model_bytes);
  const PruneResult result = cvdeploy::Prune(bytes, args.model, options);
  const PruneReport& report = result.report;
  const PruneVerification& verification = report.verification;
  const std::vector<uint8_t>& pruned = result.bytes;

  std::string out = "model      " + args.model + "\n";
  out +=
      Format("method     %s, ratio %.2f, kept channels rounded to a multiple of %d\n",
             options.method == PruneMethod::kActivation ? "activation (std x consumer weight norm)"
             : options.method == PruneMethod::kL1       ? "l1 filter norm"
                                                        : "l2 filter norm",
             options.ratio, options.channel_multiple);
  if (report.calib_images > 0) {
    out += Format(
        "calib      %d images of %s: removed channels replaced by their mean in %d Conv biases\n",
        report.calib_images, args.calib.c_str(), report.convs_compensated);
  }
  int pruned_groups = 0, unchanged_groups = 0, skipped_groups = 0, channels = 0;
  for (const auto& g : report.groups) {
    if (!g.skip_reason.empty()) {
      ++skipped_groups;
      continue;
    }
    if (g.kept == g.channels) {
      ++unchanged_groups;
      continue;
    }
    ++pruned_groups;
    channels += g.channels;
  }
  out += Format(
      "groups     %d pruned (%d of their %d channels removed), %d too small to prune, "
      "%d skipped\n",
      pruned_groups, report.channels_removed, channels, unchanged_groups, skipped_groups);
  for (const auto& g : report.groups) {
    if (!g.skip_reason.empty()) {
      out += "skipped    " + GroupName(g) +
             Format(", %d channel%s: ", g.channels, g.channels == 1 ? "" : "s") + g.skip_reason +
             "\n";
    } else if (args.verbose) {
      out += "group      " + GroupName(g) + Format(": %d -> %d channels\n", g.channels, g.kept);
    }
  }
  if (args.verbose) {
    for (const auto& c : report.convs) {
      out += Format("conv       %s: in %lld -> %lld, out %lld -> %lld\n", c.name.c_str(),
                    static_cast<long long>(c.in_before), static_cast<long long>(c.in_after),
                    static_cast<long long>(c.out_before), static_cast<long long>(c.out_after));
    }
  }
  const auto& b = report.before;
  const auto& a = report.after;
  out += Format("params     %.3f M -> %.3f M (%+.1f%%)\n", b.params / 1e6, a.params / 1e6,
                Change(static_cast<double>(b.params), static_cast<double>(a.params)));
  out += Format("FLOPs      %.3f G -> %.3f G (%+.1f%%), FLOPs = 2 x MACs of Conv/MatMul/Gemm\n",
                b.gflops(), a.gflops(), Change(b.flops, a.flops));
  out += "verified   ONNX Runtime runs it; output shapes kept:";
  for (const auto& o : verification.outputs) out += " " + o;
  out += Format("; max |diff| vs the original on one random input %.2e (largest |output| %.2e)\n",
                verification.max_abs_diff, verification.max_abs_output);
  WriteFileAtomically(args.output, pruned);
  out += "wrote      " + args.output + " (" + std::to_string(pruned.size()) + " bytes)\n";
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
  if (args.val.empty()) {
    std::fputs(
        "note: pruning without fine-tuning usually leaves the model unusable: measure its mAP "
        "with --val DATA (or cvdeploy validate) and fine-tune before use\n",
        stderr);
    return;
  }
  std::fputs(Accuracy(args, bytes, pruned).c_str(), stdout);
}

}  // namespace

void RegisterPrune(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "prune",
      "Structured channel pruning: remove the Conv output channels ranked lowest by --method "
      "(l1 or l2 filter norm, or activation: output std x consumer weight norm on --calib "
      "images) and the matching consumer inputs; the result is verified before writing, and "
      "--val measures its mAP against the original's");
  auto args = std::make_shared<PruneArgs>();
  cmd->add_option("--model", args->model, "ONNX model to prune")->required();
  AddMaxModelBytes(*cmd, &args->max_model_bytes);
  cmd->add_option("--out,--output,-o", args->output, "Where to write the pruned model")->required();
  cmd->add_option("--ratio", args->ratio,
                  "Fraction of the channels of each group to remove, in (0, 1)")
      ->required();
  cmd->add_option("--method", args->method,
                  "Channel ranking: l1 or l2 (filter norm), activation (needs --calib)")
      ->capture_default_str();
  cmd->add_option("--val", args->val,
                  "Labelled dataset (DIR or dataset YAML): print the mAP before and after, and "
                  "whether the result is usable without fine-tuning");
  cmd->add_option("--threads", args->threads,
                  "Engine intra-op threads for --val (0: physical cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--calib", args->calib,
                  "Calibration images: removed channels are replaced by their mean activation");
  cmd->add_option("--calib-size", args->calib_size, "Calibration images to use (first N, sorted)")
      ->capture_default_str();
  cmd->add_option("--exclude", args->exclude,
                  "Nodes to leave untouched (comma-separated names, as in the graph)")
      ->delimiter(',');
  cmd->add_option("--channel-multiple", args->channel_multiple,
                  "Round kept channel counts to a multiple of this (1: exact ratio)")
      ->capture_default_str();
  cmd->add_flag("--verbose,-v", args->verbose, "List every pruned group and Conv");
  cmd->callback([=] {
    Prune(*args);
    *exit_code = 0;
  });
}

}  // namespace cvdeploy::cli
