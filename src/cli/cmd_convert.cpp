// SPDX-License-Identifier: Apache-2.0
// cvdeploy convert --model IN.onnx --output OUT.onnx [--dynamic-batch] [--dynamic-shape]
// [--dynamic]
// Graph rewrites, each verified by running the result with ONNX Runtime before anything is
// written. Conversions are flags applied in a fixed order to the model bytes, so further
// ones (--fp16, ...) are one more flag and one more step in Convert().
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/tools.h"

namespace cvdeploy::cli {
namespace {

struct ConvertArgs {
  std::string model;
  uint64_t max_model_bytes = kDefaultMaxModelBytes;
  std::string output;
  bool dynamic_batch = false;
  bool dynamic_shape = false;
  bool dynamic = false;  // both of the above

  bool AnyConversion() const { return dynamic_batch || dynamic_shape || dynamic; }
};

void CheckUsage(const ConvertArgs& args) {
  if (!args.AnyConversion()) {
    throw InvalidArgument(
        "convert: no conversion requested; give at least one of: --dynamic-batch, "
        "--dynamic-shape, --dynamic");
  }
  CheckOutputPath("convert", args.model, "--output", args.output);
}

std::string Format(const char* format, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), format, args...);
  return buf;
}

// Summary lines (stdout, printed once the output is written) and warnings (stderr).
void DescribeDynamicBatch(const DynamicBatchReport& r, std::string& summary,
                          std::string& warnings) {
  for (const auto& in : r.inputs) summary += "input      " + in + "\n";
  for (const auto& note : r.notes) summary += "rewrite    " + note + "\n";
  summary += Format(
      "verified   ONNX Runtime, %s vs the original at batch 1: max |diff| %.2e (allowed %.2e, "
      "largest |output| %.2e); same input twice in one batch: max |diff| %.2e\n",
      r.batch_dependent ? "batch 2 of one input" : "batch 3 of random inputs", r.max_diff_vs_batch1,
      r.tolerance_vs_batch1, r.max_abs_output, r.max_diff_within_batch);
  if (r.batch_dependent) {
    warnings += Format(
        "warning: outputs depend on the other images of a batch (DynamicQuantizeLinear scales "
        "span the batch): batch 3 of random inputs differs from batch 1 by up to %.2e (largest "
        "|output| %.2e)\n",
        r.max_diff_from_batch_mates, r.max_abs_output);
  }
}

void DescribeDynamicShape(const DynamicShapeReport& r, std::string& summary) {
  summary += "input      " + r.input + "\n";
  for (const auto& note : r.notes) summary += "rewrite    " + note + "\n";
  summary += Format(
      "verified   ONNX Runtime, %lldx%lld (HxW, export size) vs the original: max |diff| %.2e "
      "(allowed %.0e, largest |output| %.2e)\n",
      static_cast<long long>(r.export_height), static_cast<long long>(r.export_width),
      r.max_diff_at_export, r.tolerance, r.max_abs_output);
  for (const auto& run : r.other_sizes) {
    std::string outputs;
    for (const auto& o : run.outputs) outputs += (outputs.empty() ? "" : ", ") + o;
    summary += Format("verified   runs at %lldx%lld (HxW): ", static_cast<long long>(run.height),
                      static_cast<long long>(run.width));
    summary += outputs + "\n";
  }
}

void Convert(const ConvertArgs& args) {
  CheckUsage(args);
  std::vector<uint8_t> bytes = ReadModelBytes(args.model, args.max_model_bytes);
  std::string summary = "model      " + args.model + "\n", warnings;
  // Batch first: the spatial check runs the batch-converted graph against the original.
  if (args.dynamic_batch || args.dynamic) {
    DynamicBatchResult result = MakeBatchDynamic(bytes, args.model);
    bytes = std::move(result.bytes);
    DescribeDynamicBatch(result.report, summary, warnings);
  }
  if (args.dynamic_shape || args.dynamic) {
    DynamicShapeResult result = MakeShapeDynamic(bytes, args.model);
    bytes = std::move(result.bytes);
    DescribeDynamicShape(result.report, summary);
  }
  WriteFileAtomically(args.output, bytes);
  summary += "wrote      " + args.output + " (" + std::to_string(bytes.size()) + " bytes)\n";
  std::fputs(summary.c_str(), stdout);
  std::fputs(warnings.c_str(), stderr);
}

}  // namespace

void RegisterConvert(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "convert",
      "Rewrite a model (dynamic batch axis, dynamic height/width); the result is verified before "
      "writing");
  auto args = std::make_shared<ConvertArgs>();
  cmd->add_option("--model", args->model, "ONNX model to convert")->required();
  AddMaxModelBytes(*cmd, &args->max_model_bytes);
  cmd->add_option("--output,-o", args->output, "Where to write the converted model")->required();
  cmd->add_flag("--dynamic-batch", args->dynamic_batch,
                "Make axis 0 of every input and output a dynamic 'batch' dimension");
  cmd->add_flag("--dynamic-shape", args->dynamic_shape,
                "Make the input's height and width dynamic (Ultralytics detect/segment/pose/OBB "
                "exports): anchors and strides computed in the graph, for rectangular inference");
  cmd->add_flag("--dynamic", args->dynamic, "Both --dynamic-batch and --dynamic-shape");
  cmd->callback([=] {
    Convert(*args);
    *exit_code = 0;
  });
}

}  // namespace cvdeploy::cli
