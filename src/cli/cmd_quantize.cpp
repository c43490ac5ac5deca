// SPDX-License-Identifier: Apache-2.0
// cvdeploy quantize --model M --calib DIR --out M_int8.onnx [--calib-size 100]
//                   [--method minmax|percentile|entropy] [--percentile 99.999]
//                   [--per-channel|--per-tensor] [--reduce-range] [--quantize-input-conv]
//                   [--exclude NODE,...]
//                   [--val DIR --max-map-drop 0.01 [--max-float-layers N] [--force]]
//                   [--save-calibration FILE | --load-calibration FILE]
// Static QDQ INT8 quantization. The result is checked (ONNX checker, shape inference) and
// loaded and run by ONNX Runtime before it is written; with --val an accuracy gate returns
// the most sensitive layers to float until the mAP50-95 drop is within the limit, and exits
// 5 without writing when it cannot be met (unless --force).
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "core/file_util.h"
#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "cvdeploy/predictor.h"
#include "optimize/calibration.h"
#include "optimize/onnx_model.h"
#include "optimize/quantize.h"
#include "optimize/quantize_gate.h"

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
  if (!args.val.empty() && !IsDirectory(args.val)) {
    throw BadInput("quantize: --val " + args.val + ": no such directory");
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

// "Conv 57, Sigmoid 51, ..." for the nodes named in `names`.
std::string CountByOp(const onnx::GraphProto& graph, const std::vector<std::string>& names) {
  std::map<std::string, std::string> op_of;
  for (const auto& node : graph.node()) op_of[node.name()] = node.op_type();
  std::map<std::string, int> counts;
  for (const auto& n : names) ++counts[op_of[n]];
  std::vector<std::pair<int, std::string>> sorted;
  for (const auto& [op, c] : counts) sorted.emplace_back(-c, op);
  std::sort(sorted.begin(), sorted.end());
  std::string s;
  for (const auto& [c, op] : sorted)
    s.append(s.empty() ? "" : ", ").append(op + " " + std::to_string(-c));
  return s.empty() ? "none" : s;
}

optimize::CalibrationTable GetCalibration(const QuantizeArgs& args,
                                          const onnx::ModelProto& prepared,
                                          const std::string& model_sha256) {
  optimize::CalibrationTable table;
  if (!args.load_calibration.empty()) {
    table = optimize::LoadCalibration(args.load_calibration);
    if (table.model_sha256 != model_sha256) {
      throw BadInput(args.load_calibration + ": calibration table of another model (sha256 " +
                     table.model_sha256.substr(0, 12) + ", " + args.model + " is " +
                     model_sha256.substr(0, 12) + ")");
    }
    return table;
  }
  const std::vector<std::string> tensors = optimize::CalibrationTensors(prepared);
  optimize::CalibrationOptions options;
  options.max_images = args.calib_size;
  options.threads = args.threads;
  std::unique_ptr<Progress> progress;
  int last_total = 0;
  options.progress = [&](int done, int total) {
    if (!progress || total != last_total) {
      progress = std::make_unique<Progress>("calibrate", total);
      last_total = total;
    }
    progress->Step();
    if (done == total) progress->Finish();
  };
  table = optimize::Calibrate(prepared, tensors, args.calib, options);
  // Tie the table to the file the user gave (the prepared graph is derived from it).
  table.model_sha256 = model_sha256;
  return table;
}

// ONNX checker and strict shape inference, then one ONNX Runtime run of the bytes.
void Verify(const onnx::ModelProto& model, const std::vector<uint8_t>& bytes,
            const std::string& name, int threads) {
  optimize::CheckModel(model, name);
  SessionOptions session;
  session.intra_op_threads = threads;
  auto predictor = Predictor::LoadFromMemory(bytes, name, session);
  const ModelMeta& meta = predictor->meta();
  std::vector<float> gray(3 * static_cast<size_t>(meta.imgsz_h) * meta.imgsz_w, 114.0f / 255);
  predictor->Infer(gray.data(), {1, 3, meta.imgsz_h, meta.imgsz_w});
}

int Quantize(const QuantizeArgs& args) {
  CheckUsage(args);
  const optimize::CalibrationMethod method = optimize::ParseCalibrationMethod(args.method);
  const std::vector<uint8_t> float_bytes = core::ReadModelBytes(args.model, args.max_model_bytes);
  const onnx::ModelProto model = optimize::ParseModel(float_bytes, args.model);
  const std::string sha = core::Sha256Hex(float_bytes.data(), float_bytes.size());
  const onnx::ModelProto prepared = optimize::PrepareForQuantization(model, args.model);
  const auto unknown = optimize::UnknownNodes(prepared.graph(), args.exclude);
  if (!unknown.empty()) {
    throw InvalidArgument("quantize: --exclude: no node named '" + unknown.front() + "' in " +
                          args.model);
  }
  std::optional<Dataset> dataset;
  if (!args.val.empty()) dataset = LoadYoloDataset(args.val);

  optimize::QuantizeOptions options;
  options.method = method;
  options.percentile = args.percentile;
  options.per_channel = args.per_channel;
  options.reduce_range = args.reduce_range;
  options.unify_concat = args.unify_concat;
  options.quantize_input_conv = args.quantize_input_conv;
  options.exclude = args.exclude;

  const optimize::CalibrationTable table = GetCalibration(args, prepared, sha);
  if (!args.save_calibration.empty()) optimize::SaveCalibration(table, args.save_calibration);
  optimize::QuantPlan plan = optimize::PlanQuantization(prepared, options);
  onnx::ModelProto quantized = optimize::ApplyQuantization(prepared, plan, table, options);

  std::optional<optimize::GateResult> gate;
  if (dataset) {
    optimize::GateOptions gate_options;
    gate_options.max_map_drop = args.max_map_drop;
    gate_options.max_float_layers = args.max_float_layers;
    gate_options.threads = args.threads;
    gate_options.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    gate = optimize::RunAccuracyGate(float_bytes, args.model, prepared, table, options, quantized,
                                     *dataset, gate_options);
    quantized = gate->model;
    plan = gate->plan;
  }

  nlohmann::ordered_json step;
  step["tool"] = "quantize";
  step["format"] = "QDQ";
  step["activations"] = "uint8 asymmetric";
  step["weights"] = std::string("int8 symmetric ") +
                    (args.per_channel ? "per-channel" : "per-tensor") +
                    (args.reduce_range ? " reduce-range" : "");
  step["method"] = optimize::ToString(method);
  if (method == optimize::CalibrationMethod::kPercentile) step["percentile"] = args.percentile;
  step["per_channel"] = args.per_channel;
  step["reduce_range"] = args.reduce_range;
  step["concat_shared_scale"] = args.unify_concat;
  step["quantize_input_conv"] = args.quantize_input_conv;
  step["calibration_images"] = table.images;
  step["opset"] = optimize::DefaultOpset(quantized);
  step["quantized_nodes"] = plan.quantized.size();
  // Quantized Resizes that ApplyQuantization rewrote as uint8 upsampling (no Resize left).
  int upsampling = 0;
  for (const auto& node : prepared.graph().node()) {
    upsampling += node.op_type() == "Resize" &&
                  std::find(plan.quantized.begin(), plan.quantized.end(), node.name()) !=
                      plan.quantized.end();
  }
  for (const auto& node : quantized.graph().node()) upsampling -= node.op_type() == "Resize";
  upsampling = std::max(upsampling, 0);
  step["uint8_upsampling"] = upsampling;
  std::map<std::string, std::vector<std::string>> float_by_reason;
  for (const auto& node : prepared.graph().node()) {
    auto it = plan.float_reason.find(node.name());
    if (it != plan.float_reason.end()) float_by_reason[it->second].push_back(node.name());
  }
  step["excluded"] = float_by_reason["decode"];
  if (!args.exclude.empty()) step["user_excluded"] = args.exclude;
  if (gate) {
    step["float_layers"] = gate->float_layers;
    step["map50_95_float"] = gate->map_float;
    step["map50_95_int8"] = gate->map_final;
    step["max_map_drop"] = args.max_map_drop;
    step["validation_images"] = dataset->images.size();
  }
  optimize::AddOptimizationRecord(quantized, step);
  const std::vector<uint8_t> bytes = optimize::SerializeModel(quantized);
  Verify(quantized, bytes, args.output, args.threads);

  std::string summary = "model      " + args.model +
                        Format(" (opset %d -> %d)\n", optimize::DefaultOpset(model),
                               optimize::DefaultOpset(quantized));
  summary += !args.load_calibration.empty()
                 ? Format("calibration %d images, loaded from %s\n", table.images,
                          args.load_calibration.c_str())
                 : Format("calibration %d images from %s, %zu tensors\n", table.images,
                          args.calib.c_str(), table.stats.size());
  summary += "method     " + std::string(optimize::ToString(method)) +
             (method == optimize::CalibrationMethod::kPercentile ? Format(" %g", args.percentile)
                                                                 : std::string()) +
             "; activations uint8 asymmetric, weights int8 symmetric " +
             (args.per_channel ? "per-channel" : "per-tensor") +
             (args.reduce_range ? " (reduce-range, 7-bit)" : "") + "\n";
  summary += Format("quantized  %zu nodes: ", plan.quantized.size()) +
             CountByOp(prepared.graph(), plan.quantized) + "\n";
  if (upsampling > 0) {
    summary +=
        Format("  %d nearest Resize run as uint8 Transpose/Reshape/Expand (byte copies, exact)\n",
               upsampling);
  }
  for (const auto& [reason, nodes] : float_by_reason) {
    summary += Format("float      %zu nodes (%s): ", nodes.size(), reason.c_str()) +
               CountByOp(prepared.graph(), nodes) + "\n";
  }
  if (!float_by_reason["decode"].empty()) {
    summary += "  decode:  " + Join(float_by_reason["decode"]) + "\n";
  }
  if (gate) {
    summary += Format(
        "accuracy   mAP50-95 float %.4f, int8 %.4f (drop %.4f, limit %.4f; %d validations)\n",
        gate->map_float, gate->map_final, gate->map_float - gate->map_final, args.max_map_drop,
        gate->validations);
    if (gate->map_final != gate->map_initial) {
      summary += Format("  fully quantized: mAP50-95 %.4f (drop %.4f)\n", gate->map_initial,
                        gate->map_float - gate->map_initial);
    }
    summary += "  layers kept float: " +
               (gate->float_layers.empty() ? std::string("none") : Join(gate->float_layers)) + "\n";
  }
  summary += Format("size       %zu -> %zu bytes\n", float_bytes.size(), bytes.size());

  if (gate && !gate->met) {
    std::fputs(summary.c_str(), stdout);
    std::fprintf(stderr,
                 "cvdeploy: quantize: the mAP50-95 drop %.4f exceeds --max-map-drop %.4f with %zu "
                 "layer(s) returned to float (--max-float-layers %d)%s\n",
                 gate->map_float - gate->map_final, args.max_map_drop, gate->float_layers.size(),
                 args.max_float_layers,
                 args.force ? "; writing it anyway (--force)" : "; nothing written (use --force)");
    if (!args.force) return ExitCodeOf(Outcome::kAccuracyGateNotMet);
    core::WriteFileAtomically(args.output, bytes);
    std::printf("wrote      %s (%zu bytes)\n", args.output.c_str(), bytes.size());
    return ExitCodeOf(Outcome::kAccuracyGateNotMet);
  }
  core::WriteFileAtomically(args.output, bytes);
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
