// SPDX-License-Identifier: Apache-2.0
// Model obfuscation (`cvdeploy obfuscate`): renames every node, initializer and intermediate
// value of an ONNX model to opaque names drawn from a seeded generator, strips doc strings,
// producer and graph names and the metadata not needed to run the model, optionally inserts
// dummy layers that leave every output bit-identical, and optionally shuffles the initializers.
// Graph input and output names and shapes stay (they are the model's API).
//
// Obfuscation hides names, not structure: operator types, the graph topology, every weight and
// every shape stay readable, and an attacker who runs ONNX Runtime's optimizer removes most
// dummy layers. It is not encryption (model packages are: cvdeploy pack). docs/optimization.md
// "Obfuscation" says what is hidden and what is not.
//
// Contract: Obfuscate returns bytes that passed the ONNX checker and strict shape inference and
// whose every output, run by ONNX Runtime (CPU, the serving session policy) on a seeded
// pseudo-random input, is bit-identical (memcmp) to the original's; otherwise it throws.
// Nothing is written to disk. Thread-safe (no shared state besides ONNX Runtime's environment).
// The same model and options give the same bytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cvdeploy/model.h"

namespace cvdeploy {

// Metadata keys kept by default: those cvdeploy reads to run a model (task, names, imgsz,
// stride, kpt_shape, batch, end2end, half). Everything else (author, date, version, license,
// docs, args, description, cvdeploy_optimizations, ...) is dropped.
std::vector<std::string> DefaultKeptMetadata();

struct ObfuscateOptions {
  // Seeds every random choice (names, dummy sites and kinds, initializer order). Same seed and
  // model -> same bytes; another seed -> other names.
  uint64_t seed = 0;
  // Dummy layers to insert (0..kMaxDummyLayers); each is one or two nodes.
  int dummy_layers = 0;
  // Metadata keys to keep (values unchanged); every other metadata entry is dropped. Keys
  // absent from the model are ignored.
  std::vector<std::string> keep_metadata = DefaultKeptMetadata();
  // Shuffle the initializer list (seeded); otherwise it keeps its order (the dummy layers'
  // constants are placed at seeded positions in it either way).
  bool reorder_initializers = false;
  // > 0: after verification, time both models (ONNX Runtime, this many interleaved runs each,
  // median) and fill the latency fields of the report. Reported, never asserted.
  int latency_runs = 0;
};

inline constexpr int kMaxDummyLayers = 10000;

struct ObfuscateReport {
  uint64_t seed = 0;
  int nodes_renamed = 0;         // every node of the result (dummy layers included)
  int initializers_renamed = 0;  // every initializer of the result
  int values_renamed = 0;        // intermediate values (node outputs that are not graph outputs)
  int value_infos_renamed = 0;   // graph.value_info entries (their symbolic dims cleared)
  int initializer_inputs_removed = 0;  // initializers also listed as graph inputs (IR >= 4)
  int doc_strings_removed = 0;
  std::vector<std::string> cleared;  // "producer_name 'pytorch'", "graph name 'main_graph'", ...
  // Dummy layers: total, by kind ("Max(x, x)": 3), nodes added to the graph, and each site
  // ("Transpose+Transpose after '/model.2/Concat_output_0'", in the original's names).
  int dummy_layers = 0;
  int dummy_nodes_added = 0;
  std::map<std::string, int> dummy_kinds;
  std::vector<std::string> dummy_sites;
  bool initializers_reordered = false;
  std::vector<std::string> metadata_kept, metadata_dropped;  // keys, in the original's order
  int nodes_before = 0, nodes_after = 0;
  // Verification: one line per output, e.g. "output0 [1, 84, 8400] float32: 705600 values
  // bit-identical", and the engine that ran it.
  std::vector<std::string> verified;
  std::string engine;
  // Latency (latency_runs > 0): medians in milliseconds of interleaved runs on one input.
  int latency_runs = 0;
  double original_ms = 0, obfuscated_ms = 0;
};

struct ObfuscateResult {
  std::vector<uint8_t> bytes;
  ObfuscateReport report;
};

// Obfuscates `model` (its bytes must be held: not Model::WithoutBytes). Throws
// Error(kInvalidArgument) for bad options (dummy_layers out of range) or a model without
// bytes, Error(kBadInput) "NAME: cannot obfuscate: REASON" for a model this tool does not
// handle (control-flow subgraphs, model-local functions, training info, external data), and
// Error(kRuntime) when the result fails the checker, does not run, or any output is not
// bit-identical to the original's (the message names the output and the first difference).
ObfuscateResult Obfuscate(const Model& model, const ObfuscateOptions& options);

}  // namespace cvdeploy
