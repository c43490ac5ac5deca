// SPDX-License-Identifier: Apache-2.0
// cvdeploy::Quantize (cvdeploy/quantize.h): the whole static-quantization pipeline on one
// parsed graph: prepare, calibrate (or load the table), plan, apply, the optional accuracy
// gate, the optimization record, then checker + one ONNX Runtime run of the result.
#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "cvdeploy/file.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/quantize.h"
#include "cvdeploy/system.h"
#include "model/onnx_model.h"
#include "optimize/calibration.h"
#include "optimize/quantize.h"
#include "optimize/quantize_gate.h"

namespace cvdeploy {
namespace {

// Operator types of the nodes named in `names`, most frequent first (ties by name).
OpCounts CountByOp(const onnx::GraphProto& graph, const std::vector<std::string>& names) {
  std::map<std::string, std::string> op_of;
  for (const auto& node : graph.node()) op_of[node.name()] = node.op_type();
  std::map<std::string, int> counts;
  for (const auto& n : names) ++counts[op_of[n]];
  std::vector<std::pair<int, std::string>> sorted;
  for (const auto& [op, c] : counts) sorted.emplace_back(-c, op);
  std::sort(sorted.begin(), sorted.end());
  OpCounts out;
  for (const auto& [c, op] : sorted) out.emplace_back(op, -c);
  return out;
}

// Statistics of every tensor any plan of `prepared` may need, tied to the caller's bytes
// (`model_sha256`; the prepared graph is derived from them).
optimize::CalibrationTable CalibratePrepared(const onnx::ModelProto& prepared,
                                             const std::string& model_sha256,
                                             const std::string& image_dir, int max_images,
                                             int threads,
                                             const std::function<void(int, int)>& progress) {
  optimize::CalibrationOptions calibration;
  calibration.max_images = max_images;
  calibration.threads = threads;
  calibration.progress = progress;
  optimize::CalibrationTable table =
      optimize::Calibrate(prepared, optimize::CalibrationTensors(prepared), image_dir, calibration);
  table.model_sha256 = model_sha256;
  return table;
}

optimize::CalibrationTable GetCalibration(const QuantizeOptions& options, const std::string& name,
                                          const onnx::ModelProto& prepared,
                                          const std::string& model_sha256) {
  if (options.load_calibration.empty()) {
    return CalibratePrepared(prepared, model_sha256, options.calib_dir, options.calib_size,
                             options.threads, options.calibration_progress);
  }
  optimize::CalibrationTable table = optimize::LoadCalibration(options.load_calibration);
  if (table.model_sha256 != model_sha256) {
    throw BadInput(options.load_calibration + ": calibration table of another model (sha256 " +
                   table.model_sha256.substr(0, 12) + ", " + name + " is " +
                   model_sha256.substr(0, 12) + ")");
  }
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
  predictor->Infer(TensorView(DataType::kFloat32, {1, 3, meta.imgsz_h, meta.imgsz_w}, gray.data()));
}

optimize::IsaPlacement IsaPlacementFor(const QuantizeOptions& options) {
  return optimize::PlaceForIsa(options.target_isa.empty() ? DetectMachine().isa
                                                          : options.target_isa);
}

optimize::QuantizeOptions PlanOptions(const QuantizeOptions& options,
                                      const optimize::IsaPlacement& isa) {
  optimize::QuantizeOptions plan;
  plan.reduce_range_input_conv = isa.input_conv_reduce_range;
  plan.method = options.method;
  plan.percentile = options.percentile;
  plan.per_channel = options.per_channel;
  plan.reduce_range = options.reduce_range;
  plan.unify_concat = options.unify_concat;
  plan.quantize_input_conv = options.quantize_input_conv;
  plan.exclude = options.exclude;
  return plan;
}

// Quantized Resizes that ApplyQuantization rewrote as uint8 upsampling (no Resize left).
int CountUpsampling(const onnx::ModelProto& prepared, const onnx::ModelProto& quantized,
                    const optimize::QuantPlan& plan) {
  int upsampling = 0;
  for (const auto& node : prepared.graph().node()) {
    upsampling += node.op_type() == "Resize" &&
                  std::find(plan.quantized.begin(), plan.quantized.end(), node.name()) !=
                      plan.quantized.end();
  }
  for (const auto& node : quantized.graph().node()) upsampling -= node.op_type() == "Resize";
  return std::max(upsampling, 0);
}

// The "quantize" step of the optimization record.
nlohmann::ordered_json RecordStep(const QuantizeOptions& options,
                                  const optimize::QuantizeOptions& plan,
                                  const QuantizeReport& report, const onnx::ModelProto& quantized) {
  nlohmann::ordered_json step;
  step["tool"] = "quantize";
  step["format"] = "QDQ";
  step["activations"] = "uint8 asymmetric";
  step["weights"] = std::string("int8 symmetric ") +
                    (options.per_channel ? "per-channel" : "per-tensor") +
                    (options.reduce_range ? " reduce-range" : "");
  step["method"] = ToString(options.method);
  if (options.method == CalibrationMethod::kPercentile) step["percentile"] = options.percentile;
  step["per_channel"] = options.per_channel;
  step["reduce_range"] = options.reduce_range;
  nlohmann::ordered_json isa;
  isa["target"] = report.isa.target;
  isa["source"] = report.isa.host ? "host" : "--target-isa";
  isa["flags"] = report.isa.isa;
  isa["int8_arithmetic"] = report.isa.arithmetic;
  isa["activations"] = "uint8";
  isa["input_conv"] = !options.quantize_input_conv ? "float"
                      : options.reduce_range || plan.reduce_range_input_conv
                          ? "int8, 7-bit weights"
                          : "int8, 8-bit weights";
  isa["decisions"] = report.isa.decisions;
  step["isa"] = isa;
  step["concat_shared_scale"] = options.unify_concat;
  step["quantize_input_conv"] = options.quantize_input_conv;
  step["calibration_images"] = report.calibration_images;
  step["opset"] = optimize::DefaultOpset(quantized);
  step["quantized_nodes"] = report.quantized_nodes.size();
  step["uint8_upsampling"] = report.uint8_upsampling;
  std::vector<std::string> decode;
  for (const auto& f : report.float_nodes) {
    if (f.reason == "decode") decode = f.nodes;
  }
  step["excluded"] = decode;
  if (!options.exclude.empty()) step["user_excluded"] = options.exclude;
  if (report.gate) {
    step["float_layers"] = report.gate->float_layers;
    step["map50_95_float"] = report.gate->map_float;
    step["map50_95_int8"] = report.gate->map_final;
    step["max_map_drop"] = options.max_map_drop;
    step["validation_images"] = report.gate->validation_images;
  }
  return step;
}

}  // namespace

QuantizeResult Quantize(const std::vector<uint8_t>& model_bytes, const std::string& name,
                        const QuantizeOptions& options) {
  const onnx::ModelProto model = optimize::ParseModel(model_bytes, name);
  const std::string sha = Sha256Hex(model_bytes.data(), model_bytes.size());
  const onnx::ModelProto prepared = optimize::PrepareForQuantization(model, name);
  const auto unknown = optimize::UnknownNodes(prepared.graph(), options.exclude);
  if (!unknown.empty()) {
    throw InvalidArgument("quantize: --exclude: no node named '" + unknown.front() + "' in " +
                          name);
  }
  std::optional<Dataset> dataset;
  if (!options.val_dir.empty()) dataset = LoadYoloDataset(options.val_dir);

  const optimize::IsaPlacement isa = IsaPlacementFor(options);
  const optimize::QuantizeOptions plan_options = PlanOptions(options, isa);
  const optimize::CalibrationTable table = GetCalibration(options, name, prepared, sha);
  if (!options.save_calibration.empty()) optimize::SaveCalibration(table, options.save_calibration);
  optimize::QuantPlan plan = optimize::PlanQuantization(prepared, plan_options);
  onnx::ModelProto quantized = optimize::ApplyQuantization(prepared, plan, table, plan_options);

  QuantizeResult result;
  QuantizeReport& report = result.report;
  if (dataset) {
    optimize::GateOptions gate_options;
    gate_options.max_map_drop = options.max_map_drop;
    gate_options.max_float_layers = options.max_float_layers;
    gate_options.threads = options.threads;
    gate_options.log = options.log;
    optimize::GateResult gate = optimize::RunAccuracyGate(
        model_bytes, name, prepared, table, plan_options, quantized, *dataset, gate_options);
    quantized = std::move(gate.model);
    plan = std::move(gate.plan);
    QuantizeGateReport& g = report.gate.emplace();
    g.map_float = gate.map_float;
    g.map_initial = gate.map_initial;
    g.map_final = gate.map_final;
    g.met = gate.met;
    g.validations = gate.validations;
    g.validation_images = dataset->images.size();
    g.float_layers = std::move(gate.float_layers);
  }

  report.isa.target = isa.target;
  report.isa.host = options.target_isa.empty();
  report.isa.isa = isa.isa;
  report.isa.arithmetic = optimize::ToString(isa.arithmetic);
  report.isa.decisions = isa.decisions;
  report.opset_before = optimize::DefaultOpset(model);
  report.opset_after = optimize::DefaultOpset(quantized);
  report.calibration_images = table.images;
  report.calibration_tensors = table.stats.size();
  report.calibration_loaded = !options.load_calibration.empty();
  report.quantized_nodes = plan.quantized;
  report.quantized_ops = CountByOp(prepared.graph(), plan.quantized);
  report.uint8_upsampling = CountUpsampling(prepared, quantized, plan);
  std::map<std::string, std::vector<std::string>> float_by_reason;
  for (const auto& node : prepared.graph().node()) {
    auto it = plan.float_reason.find(node.name());
    if (it != plan.float_reason.end()) float_by_reason[it->second].push_back(node.name());
  }
  float_by_reason["decode"];  // listed even when empty, as the summary always was
  for (auto& [reason, nodes] : float_by_reason) {
    report.float_nodes.push_back({reason, nodes, CountByOp(prepared.graph(), nodes)});
  }

  optimize::AddOptimizationRecord(quantized, RecordStep(options, plan_options, report, quantized));
  result.bytes = optimize::SerializeModel(quantized);
  Verify(quantized, result.bytes, name, options.threads);
  report.bytes_before = model_bytes.size();
  report.bytes_after = result.bytes.size();
  return result;
}

CalibrateResult Calibrate(const std::vector<uint8_t>& model_bytes, const std::string& name,
                          const CalibrateOptions& options) {
  const onnx::ModelProto prepared =
      optimize::PrepareForQuantization(optimize::ParseModel(model_bytes, name), name);
  const optimize::CalibrationTable table =
      CalibratePrepared(prepared, Sha256Hex(model_bytes.data(), model_bytes.size()),
                        options.image_dir, options.max_images, options.threads, options.progress);
  CalibrateResult result;
  const std::string text = optimize::CalibrationTableText(table);
  result.bytes.assign(text.begin(), text.end());
  result.report.model_sha256 = table.model_sha256;
  result.report.images = table.images;
  result.report.image_names = table.image_names;
  result.report.tensors = table.stats.size();
  return result;
}

}  // namespace cvdeploy
