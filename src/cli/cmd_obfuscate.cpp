// SPDX-License-Identifier: Apache-2.0
// cvdeploy obfuscate --model M.onnx --out M_obf.onnx [--seed N] [--dummy-layers K]
//                    [--strip-metadata-except KEYS] [--reorder-initializers] [--latency-runs N]
// Opaque names, no doc strings or producer, only the metadata asked for, optional dummy layers;
// the result is checked and proven bit-identical in ONNX Runtime before anything is written.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/obfuscate.h"

namespace cvdeploy::cli {
namespace {

struct ObfuscateArgs {
  std::string model;
  uint64_t max_model_bytes = kDefaultMaxModelBytes;
  std::string output;
  std::string seed;  // empty: a random one, printed
  int dummy_layers = 0;
  std::string keep = "default";
  bool reorder_initializers = false;
  int latency_runs = 20;
};

std::string Format(const char* format, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), format, args...);
  return buf;
}

std::string Join(const std::vector<std::string>& items, const char* empty = "none") {
  std::string s;
  for (const auto& item : items) s.append(s.empty() ? "" : ", ").append(item);
  return s.empty() ? empty : s;
}

uint64_t ParseSeed(const std::string& text) {
  const bool digits =
      !text.empty() && text.size() <= 20 &&
      std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(c) != 0; });
  if (!digits || (text.size() == 20 && text > "18446744073709551615")) {
    throw InvalidArgument("obfuscate: --seed '" + text +
                          "': expected an unsigned 64-bit integer (0..18446744073709551615)");
  }
  return std::stoull(text);
}

std::vector<std::string> ParseKeys(const std::string& text) {
  if (text == "default") return DefaultKeptMetadata();
  std::vector<std::string> keys;
  if (text == "none") return keys;
  std::stringstream in(text);
  for (std::string key; std::getline(in, key, ',');) {
    if (key.empty() || !std::all_of(key.begin(), key.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
        })) {
      throw InvalidArgument("obfuscate: --strip-metadata-except '" + text +
                            "': expected metadata keys separated by commas (e.g. "
                            "task,names,imgsz,stride), 'none' or 'default'");
    }
    keys.push_back(key);
  }
  return keys;
}

std::string Report(const ObfuscateArgs& args, const ObfuscateReport& r, size_t in_bytes,
                   size_t out_bytes) {
  std::string s = "model        " + args.model + "\n";
  s += Format("seed         %llu%s\n", static_cast<unsigned long long>(r.seed),
              args.seed.empty() ? " (random; pass --seed to reproduce this output)" : "");
  s += Format("renamed      %d nodes, %d initializers, %d intermediate values, %d value_info\n",
              r.nodes_renamed, r.initializers_renamed, r.values_renamed, r.value_infos_renamed);
  if (r.initializer_inputs_removed > 0) {
    s += Format("inputs       %d initializers listed as graph inputs removed from the inputs\n",
                r.initializer_inputs_removed);
  }
  s += Format("stripped     %d doc strings; %s\n", r.doc_strings_removed,
              Join(r.cleared, "no producer, domain or graph name").c_str());
  std::vector<std::string> kinds;
  for (const auto& [kind, n] : r.dummy_kinds) kinds.push_back(kind + " x" + std::to_string(n));
  s += Format("dummy layers %d inserted (%d nodes: %d -> %d)%s%s\n", r.dummy_layers,
              r.dummy_nodes_added, r.nodes_before, r.nodes_after, kinds.empty() ? "" : ": ",
              Join(kinds, "").c_str());
  s += std::string("initializers ") + (r.initializers_reordered ? "shuffled" : "order kept") + "\n";
  s += "metadata     kept: " + Join(r.metadata_kept) + "\n";
  s += "metadata     dropped: " + Join(r.metadata_dropped) + "\n";
  for (const auto& line : r.verified) s += "verified     " + line + "\n";
  s += "engine       " + r.engine + "\n";
  if (r.latency_runs > 0) {
    s += Format(
        "latency      original %.2f ms, obfuscated %.2f ms (%.3fx; median of %d "
        "interleaved runs each, engine only; a short measurement, not a benchmark)\n",
        r.original_ms, r.obfuscated_ms, r.obfuscated_ms / r.original_ms, r.latency_runs);
  }
  s += Format("wrote        %s (%zu bytes, %.3f of the input)\n", args.output.c_str(), out_bytes,
              static_cast<double>(out_bytes) / static_cast<double>(in_bytes));
  return s;
}

void Run(const ObfuscateArgs& args) {
  ObfuscateOptions options;
  options.seed = args.seed.empty()
                     ? (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}()
                     : ParseSeed(args.seed);
  options.dummy_layers = args.dummy_layers;
  options.keep_metadata = ParseKeys(args.keep);
  options.reorder_initializers = args.reorder_initializers;
  options.latency_runs = args.latency_runs;
  CheckOutputPath("obfuscate", args.model, "--out", args.output);

  ModelOptions model_options;
  model_options.max_model_bytes = args.max_model_bytes;
  const Model model = Model::FromFile(args.model, model_options);
  const ObfuscateResult result = Obfuscate(model, options);
  WriteFileAtomically(args.output, result.bytes);
  std::fputs(Report(args, result.report, model.bytes().size(), result.bytes.size()).c_str(),
             stdout);
  std::fputs(
      "note: obfuscation hides names, not structure: operator types, topology, weights and "
      "shapes stay readable, and ONNX Runtime's optimizer removes most dummy layers; encrypt "
      "with a model package for confidentiality\n",
      stderr);
}

}  // namespace

void RegisterObfuscate(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "obfuscate",
      "Rename nodes and tensors to opaque names, strip doc strings and metadata, optionally add "
      "dummy layers; verified bit-identical before writing");
  auto args = std::make_shared<ObfuscateArgs>();
  cmd->add_option("--model", args->model, "ONNX model to obfuscate")->required();
  AddMaxModelBytes(*cmd, &args->max_model_bytes);
  cmd->add_option("--out,--output,-o", args->output, "Where to write the obfuscated model")
      ->required();
  cmd->add_option("--seed", args->seed,
                  "Seed of every random choice (same seed and model: same output); default: "
                  "random, printed");
  cmd->add_option("--dummy-layers", args->dummy_layers,
                  "Identity layers to insert (bit-exact; each one or two nodes)")
      ->check(CLI::Range(0, kMaxDummyLayers))
      ->capture_default_str();
  cmd->add_option("--strip-metadata-except", args->keep,
                  "Metadata keys to keep, comma-separated; 'none', or 'default' (" +
                      Join(DefaultKeptMetadata()) + ": what cvdeploy needs to run the model)")
      ->capture_default_str();
  cmd->add_flag("--reorder-initializers", args->reorder_initializers,
                "Shuffle the order of the initializers (seeded)");
  cmd->add_option("--latency-runs", args->latency_runs,
                  "Interleaved timed runs of each model for the latency line (0: skip)")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  cmd->callback([=] {
    Run(*args);
    *exit_code = 0;
  });
}

}  // namespace cvdeploy::cli
