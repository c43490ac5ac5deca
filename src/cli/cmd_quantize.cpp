// SPDX-License-Identifier: Apache-2.0
// cvdeploy quantize --model M --calib DIR --out M_int8.onnx [--calib-size 100]
//                   [--method minmax|percentile|entropy] [--percentile 99.999]
//                   [--per-channel|--per-tensor] [--reduce-range] [--quantize-input-conv]
//                   [--exclude NODE,...] [--target-isa FLAG,...]
//                   [--val DIR --max-map-drop 0.01 [--max-float-layers N] [--force]]
//                   [--save-calibration FILE | --load-calibration FILE]
// Static QDQ INT8 quantization. The result is checked (ONNX checker, shape inference) and
// loaded and run by ONNX Runtime before it is written; with --val an accuracy gate returns
// the most sensitive layers to float until the mAP50-95 drop is within the limit, and exits
// 5 without writing when it cannot be met (unless --force).
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/options.h"
#include "cli/output_path.h"
#include "cli/progress.h"
#include "cvdeploy/dataset_yaml.h"
#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "cvdeploy/file.h"
#include "cvdeploy/quantize.h"

namespace cvdeploy::cli {
namespace {

struct QuantizeArgs {
  std::string model;
  uint64_t max_model_bytes = kDefaultMaxModelBytes;
  std::string calib;
  std::string output;
  int calib_size = 100;
  std::string method = "percentile";
  double percentile = 99.999;
  bool per_channel = true;
  bool reduce_range = false;
  bool quantize_input_conv = false;
  bool unify_concat = true;
  std::vector<std::string> exclude;
  std::string target_isa;
  std::string val;
  double max_map_drop = 0.01;
  int max_float_layers = 16;
  bool force = false;
  std::string save_calibration;
  std::string load_calibration;
  int threads = 0;
};

std::string Format(const char* format, auto... args) {
  char buf[1024];
  std::snprintf(buf, sizeof(buf), format, args...);
  return buf;
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void CheckUsage(const QuantizeArgs& args) {
  CheckOutputPath("quantize", args.model, "--out", args.output);
  if (args.calib.empty() == args.load_calibration.empty()) {
    throw InvalidArgument(
        "quantize: give either --calib DIR (calibration images) or --load-calibration FILE");
  }
  if (!args.calib.empty() && !IsDirectory(args.calib)) {
    throw BadInput("quantize: --calib " + args.calib + ": no such directory");
  }
  if (args.calib_size < 1) {
    throw InvalidArgument(Format("quantize: --calib-size %d: must be at least 1", args.calib_size));
  }
  if (!(args.percentile > 50 && args.percentile <= 100)) {
    throw InvalidArgument(
        Format("quantize: --percentile %g: must be in (50, 100]", args.percentile));
  }
  if (!(args.max_map_drop >= 0 && args.max_map_drop < 1)) {
    throw InvalidArgument(
        Format("quantize: --max-map-drop %g: must be in [0, 1)", args.max_map_drop));
  }
  if (args.max_float_layers < 1) {
    throw InvalidArgument(
        Format("quantize: --max-float-layers %d: must be at least 1", args.max_float_layers));
  }
  if (!args.val.empty() && !IsDirectory(args.val) && !IsDatasetYaml(args.val)) {
    throw BadInput("quantize: --val " + args.val + ": no such directory or dataset YAML");
  }
  if (args.val.empty() && args.force) {
    throw InvalidArgument("quantize: --force only applies to the accuracy gate (--val DIR)");
  }
}

std::string Join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string s;
  for (const auto& item : items) s.append(s.empty() ? "" : sep).append(item);
  return s;
}

// "Conv 57, Sigmoid 51, ..."
std::string OpsText(const OpCounts& ops) {
  std::string s;
  for (const auto& [op, n] : ops)
    s.append(s.empty() ? "" : ", ").append(op + " " + std::to_string(n));
  return s.empty() ? "none" : s;
}

std::string Summary(const QuantizeArgs& args, const QuantizeOptions& options,
                    const QuantizeReport& r) {
  std::string summary =
      "model      " + args.model + Format(" (opset %d -> %d)\n", r.opset_before, r.opset_after);
  summary += r.calibration_loaded
                 ? Format("calibration %d images, loaded from %s\n", r.calibration_images,
                          args.load_calibration.c_str())
                 : Format("calibration %d images from %s, %zu tensors\n", r.calibration_images,
                          args.calib.c_str(), r.calibration_tensors);
  summary += "method     " + std::string(ToString(options.method)) +
             (options.method == CalibrationMethod::kPercentile ? Format(" %g", args.percentile)
                                                               : std::string()) +
             "; activations uint8 asymmetric, weights int8 symmetric " +
             (args.per_channel ? "per-channel" : "per-tensor") +
             (args.reduce_range ? " (reduce-range, 7-bit)" : "") + "\n";
  summary += "isa        " + r.isa.target + " (" +
             (r.isa.host ? std::string("this host") : "--target-isa " + args.target_isa) +
             "), int8 arithmetic: " + r.isa.arithmetic + "\n";
  for (const auto& d : r.isa.decisions) summary += "  " + d + "\n";
  summary +=
      Format("quantized  %zu nodes: ", r.quantized_nodes.size()) + OpsText(r.quantized_ops) + "\n";
  if (r.uint8_upsampling > 0) {
    summary +=
        Format("  %d nearest Resize run as uint8 Transpose/Reshape/Expand (byte copies, exact)\n",
               r.uint8_upsampling);
  }
  const std::vector<std::string>* decode = nullptr;
  for (const FloatNodes& f : r.float_nodes) {
    summary += Format("float      %zu nodes (%s): ", f.nodes.size(), f.reason.c_str()) +
               OpsText(f.ops) + "\n";
    if (f.reason == "decode") decode = &f.nodes;
  }
  if (decode && !decode->empty()) summary += "  decode:  " + Join(*decode) + "\n";
  if (r.gate) {
    const QuantizeGateReport& g = *r.gate;
    summary += Format(
        "accuracy   mAP50-95 float %.4f, int8 %.4f (drop %.4f, limit %.4f; %d validations)\n",
        g.map_float, g.map_final, g.map_float - g.map_final, args.max_map_drop, g.validations);
    if (g.map_final != g.map_initial) {
      summary += Format("  fully quantized: mAP50-95 %.4f (drop %.4f)\n", g.map_initial,
                        g.map_float - g.map_initial);
    }
    summary += "  layers kept float: " +
               (g.float_layers.empty() ? std::string("none") : Join(g.float_layers)) + "\n";
  }
  summary += Format("size       %zu -> %zu bytes\n", r.bytes_before, r.bytes_after);
  return summary;
}

int Quantize(const QuantizeArgs& args) {
  CheckUsage(args);
  QuantizeOptions options;
  options.method = ParseCalibrationMethod(args.method);
  options.calib_dir = args.calib;
  options.calib_size = args.calib_size;
  options.load_calibration = args.load_calibration;
  options.save_calibration = OutputPath("--save-calibration", args.save_calibration);
  options.percentile = args.percentile;
  options.per_channel = args.per_channel;
  options.reduce_range = args.reduce_range;
  options.unify_concat = args.unify_concat;
  options.quantize_input_conv = args.quantize_input_conv;
  options.exclude = args.exclude;
  if (!args.target_isa.empty()) options.target_isa = ParseIsaFlags(args.target_isa);
  options.val_dir = args.val;
  options.max_map_drop = args.max_map_drop;
  options.max_float_layers = args.max_float_layers;
  options.threads = args.threads;
  options.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  std::unique_ptr<Progress> progress;
  int last_total = 0;
  options.calibration_progress = [&](int done, int total) {
    if (!progress || total != last_total) {
      progress = std::make_unique<Progress>("calibrate", total);
      last_total = total;
    }
    progress->Step();
    if (done == total) progress->Finish();
  };

  const std::vector<uint8_t> float_bytes = ReadModelBytes(args.model, args.max_model_bytes);
  const QuantizeResult result = cvdeploy::Quantize(float_bytes, args.model, options);
  const QuantizeReport& report = result.report;
  const std::vector<uint8_t>& bytes = result.bytes;
  std::string summary = Summary(args, options, report);

  if (report.gate && !report.gate->met) {
    const QuantizeGateReport& gate = *report.gate;
    std::fputs(summary.c_str(), stdout);
    std::fprintf(stderr,
                 "cvdeploy: quantize: the mAP50-95 drop %.4f exceeds --max-map-drop %.4f with %zu "
                 "layer(s) returned to float (--max-float-layers %d)%s\n",
                 gate.map_float - gate.map_final, args.max_map_drop, gate.float_layers.size(),
                 args.max_float_layers,
                 args.force ? "; writing it anyway (--force)" : "; nothing written (use --force)");
    if (!args.force) return ExitCodeOf(Outcome::kAccuracyGateNotMet);
    WriteFileAtomically(args.output, bytes);
    std::printf("wrote      %s (%zu bytes)\n", args.output.c_str(), bytes.size());
    return ExitCodeOf(Outcome::kAccuracyGateNotMet);
  }
  WriteFileAtomically(args.output, bytes);
  summary += "verified   ONNX checker and shape inference; ONNX Runtime loads and runs it\n";
  summary += "wrote      " + args.output + Format(" (%zu bytes)\n", bytes.size());
  std::fputs(summary.c_str(), stdout);
  return 0;
}

}  // namespace

void RegisterQuantize(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "quantize",
      "Static INT8 quantization (QDQ) with calibration images and an optional accuracy gate");
  auto args = std::make_shared<QuantizeArgs>();
  cmd->add_option("--model", args->model, "Float ONNX model")->required();
  AddMaxModelBytes(*cmd, &args->max_model_bytes);
  cmd->add_option("--calib", args->calib, "Directory of calibration images");
  cmd->add_option("--out,--output,-o", args->output, "Where to write the quantized model")
      ->required();
  cmd->add_option("--calib-size", args->calib_size, "Calibration images (first N, sorted)")
      ->capture_default_str();
  cmd->add_option("--method", args->method, "Range calibration: minmax, percentile or entropy")
      ->capture_default_str();
  cmd->add_option("--percentile", args->percentile, "Percentile of the percentile method")
      ->capture_default_str();
  cmd->add_flag("--per-channel,!--per-tensor", args->per_channel,
                "Weight scales per output channel (default) or one per tensor");
  cmd->add_flag("--reduce-range,!--full-range", args->reduce_range,
                "7-bit weights: no int16 saturation in the kernels of x86 CPUs without VNNI, "
                "at some precision cost (default: 8-bit, --full-range)");
  cmd->add_flag("--quantize-input-conv", args->quantize_input_conv,
                "Also quantize the Conv on the image (slower in int8 and saturation-prone; "
                "kept float by default)");
  cmd->add_flag("--concat-shared-scale,!--concat-requantize", args->unify_concat,
                "Concat inputs share the Concat's scale (default: byte copies) or keep their own "
                "(requantized by the Concat)");
  cmd->add_option("--exclude", args->exclude, "Node names to keep float (comma-separated)")
      ->delimiter(',');
  cmd->add_option("--target-isa", args->target_isa,
                  "Quantize for a CPU with these ISA flags (comma-separated, as `doctor` lists "
                  "them: avx2, avx512_vnni, avx_vnni, amx_int8, neon, ...; default: this host)");
  cmd->add_option("--val", args->val,
                  "Labelled dataset (images/, labels/): validate float and int8, gate on the drop");
  cmd->add_option("--max-map-drop", args->max_map_drop, "Largest mAP50-95 drop allowed with --val")
      ->capture_default_str();
  cmd->add_option("--max-float-layers", args->max_float_layers,
                  "Most layers the gate returns to float")
      ->capture_default_str();
  cmd->add_flag("--force", args->force, "Write the model even when the gate fails (exit 5)");
  cmd->add_option("--save-calibration", args->save_calibration,
                  "Write the calibration statistics to FILE (JSON)");
  cmd->add_option("--load-calibration", args->load_calibration,
                  "Use statistics saved by --save-calibration instead of calibrating");
  cmd->add_option("--threads", args->threads, "Engine intra-op threads (0: physical cores)");
  cmd->callback([args, exit_code] { *exit_code = Quantize(*args); });
}

}  // namespace cvdeploy::cli
