// SPDX-License-Identifier: Apache-2.0
// cvdeploy fp16 --model M.onnx --out M_fp16.onnx [--keep-io-types | --fp16-io]
//               [--float32-ops LIST] [--emulate]
// Float16 weights and compute; the result is checked (ONNX checker, shape inference) and run
// against the original with ONNX Runtime before anything is written.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/tools.h"

namespace cvdeploy::cli {
namespace {

struct Fp16Args {
  std::string model;
  uint64_t max_model_bytes = kDefaultMaxModelBytes;
  std::string output;
  bool keep_io_types = false;  // the default anyway; accepted for the documented usage line
  bool fp16_io = false;
  std::string float32_ops = "default";
  bool emulate = false;
};

std::string Format(const char* format, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), format, args...);
  return buf;
}

std::set<std::string> ParseOpList(const std::string& text) {
  if (text == "default") return DefaultFloat32Ops();
  std::set<std::string> ops;
  if (text == "none") return ops;
  std::stringstream in(text);
  for (std::string op; std::getline(in, op, ',');) {
    if (op.empty() || !std::all_of(op.begin(), op.end(), [](char c) { return std::isalnum(c); })) {
      throw InvalidArgument("fp16: --float32-ops '" + text +
                            "': expected operator types separated by commas (e.g. "
                            "Resize,Softmax), 'none' or 'default'");
    }
    ops.insert(op);
  }
  return ops;
}

std::string JoinSet(const std::set<std::string>& items) {
  std::string s;
  for (const auto& item : items) s.append(s.empty() ? "" : ",").append(item);
  return s.empty() ? "none" : s;
}

std::string CountsText(const std::map<std::string, int>& counts) {
  std::string s;
  for (const auto& [op, n] : counts) {
    s.append(s.empty() ? "" : ", ").append(op).append(" x").append(std::to_string(n));
  }
  return s.empty() ? "none" : s;
}

void Convert(const Fp16Args& args) {
  if (args.keep_io_types && args.fp16_io) {
    throw InvalidArgument("fp16: --keep-io-types and --fp16-io contradict each other");
  }
  if (args.emulate && args.fp16_io) {
    throw InvalidArgument("fp16: --emulate writes a float32 model; it cannot take --fp16-io");
  }
  Fp16Options options;
  options.keep_io_types = !args.fp16_io;
  options.float32_ops = ParseOpList(args.float32_ops);
  options.emulate = args.emulate;
  CheckOutputPath("fp16", args.model, "--out", args.output);

  const std::vector<uint8_t> bytes = ReadModelBytes(args.model, args.max_model_bytes);
  const Fp16Result result = ConvertToFloat16(bytes, args.model, options);
  const Fp16Report& report = result.report;
  const std::vector<uint8_t>& out_bytes = result.bytes;
  WriteFileAtomically(args.output, out_bytes);

  std::string s = "model      " + args.model + "\n";
  s += Format("float16    %d nodes %s; %d nodes with float tensors kept float32: %s\n",
              report.nodes_fp16, args.emulate ? "rounded to float16 (emulation)" : "in float16",
              static_cast<int>(report.float32_nodes.size()),
              CountsText(report.float32_op_counts).c_str());
  s += "float32    op list: " + JoinSet(options.float32_ops) + "\n";
  for (const auto& node : report.float32_nodes) s += "float32    " + node + "\n";
  s += Format(
      "constants  %d tensors, %lld values to float16; %lld clamped to +-65504, %lld flushed "
      "to zero; largest |value| %.4g\n",
      report.constants_converted, static_cast<long long>(report.values_converted),
      static_cast<long long>(report.overflow_clamped),
      static_cast<long long>(report.underflow_to_zero), report.max_abs_value);
  for (const auto& b : report.boundary_casts) s += "boundary   " + b + "\n";
  s += Format("casts      %d inserted%s\n", report.casts_inserted,
              args.emulate ? " (rounding steps)" : "");
  for (const auto& d : report.verified) {
    s += Format(
        "verified   ONNX Runtime CPU, pseudo-random input: %s max |diff| %.3g (largest "
        "|output| %.3g)\n",
        d.name.c_str(), d.max_diff, d.max_abs);
  }
  s += Format("wrote      %s (%zu bytes, %.2f of the input)\n", args.output.c_str(),
              out_bytes.size(), static_cast<double>(out_bytes.size()) / bytes.size());
  std::fputs(s.c_str(), stdout);
  std::string w;
  if (report.overflow_clamped > 0) {
    w += Format("warning: %lld weight values exceed float16's range and were clamped to +-65504\n",
                static_cast<long long>(report.overflow_clamped));
  }
  if (args.emulate) {
    w += "note: --emulate wrote a float32 model for accuracy checks; it is slower than the "
         "original and not meant for deployment\n";
  } else {
    w += "note: float16 is meant for GPU providers (--device cuda/tensorrt), where it halves "
         "weight and activation memory; on a CPU without float16 arithmetic ONNX Runtime runs "
         "these nodes with float32 kernels behind Casts: no faster than the float32 model "
         "(usually a little slower) and no smaller in memory\n";
  }
  std::fputs(w.c_str(), stderr);
}

}  // namespace

void RegisterFp16(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "fp16",
      "Convert weights and compute to float16 (for GPU providers); verified before writing");
  auto args = std::make_shared<Fp16Args>();
  cmd->add_option("--model", args->model, "float32 ONNX model to convert")->required();
  AddMaxModelBytes(*cmd, &args->max_model_bytes);
  cmd->add_option("--out,--output,-o", args->output, "Where to write the float16 model")
      ->required();
  cmd->add_flag("--keep-io-types", args->keep_io_types,
                "Keep graph inputs and outputs float32 with a Cast at each boundary (default)");
  cmd->add_flag("--fp16-io", args->fp16_io,
                "Make graph inputs and outputs float16 too (callers pass float16 data)");
  cmd->add_option("--float32-ops", args->float32_ops,
                  "Operator types kept in float32, comma-separated; 'none', or 'default' (" +
                      JoinSet(DefaultFloat32Ops()) + ")")
      ->capture_default_str();
  cmd->add_flag("--emulate", args->emulate,
                "Write a float32 model that rounds weights and activations to float16 "
                "precision, to measure float16 accuracy on a CPU (not for deployment)");
  cmd->callback([=] {
    Convert(*args);
    *exit_code = 0;
  });
}

}  // namespace cvdeploy::cli
