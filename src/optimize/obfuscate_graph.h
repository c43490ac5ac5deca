// SPDX-License-Identifier: Apache-2.0
// The graph rewrites behind cvdeploy::Obfuscate (cvdeploy/obfuscate.h): dummy layers that are
// exact identities in float32, and the renaming/stripping pass. Both edit a parsed ModelProto in
// place and fill the matching fields of the report; neither runs the model (the caller checks
// and verifies the result with VerifyBitIdentical). Deterministic: every random choice comes from
// the given seed through a fixed generator (std::mt19937_64, raw draws only, so every standard
// library agrees).
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "cvdeploy/obfuscate.h"

namespace cvdeploy::optimize {

// Throws Error(kBadInput) "NAME: cannot obfuscate: REASON" for what the rewrites do not handle:
// control-flow subgraphs (If/Loop/Scan graph attributes), model-local functions, training
// info, initializers stored as external data.
void CheckObfuscatable(const onnx::ModelProto& model, const std::string& name);

// Every node name and tensor name the graph mentions (nodes, their inputs and outputs,
// initializers, sparse initializers, graph inputs/outputs, value_info).
std::set<std::string> GraphNames(const onnx::GraphProto& graph);

// Inserts `count` dummy layers at seeded sites: float32 intermediate values (not graph outputs,
// not next to QuantizeLinear/DequantizeLinear). Each is bit-exact on every float32 value,
// NaN, infinities and signed zeros included: Mul(x, 1), Div(x, 1), Sub(x, +0), Add(x, -0),
// Max(x, x), Min(x, x), a Transpose and its inverse, a Reshape to [N, -1] and back. New nodes
// and constants get temporary names (RenameAndStrip replaces them). Throws Error(kBadInput)
// when count > 0 and the graph has no site.
void InsertDummyLayers(onnx::ModelProto& model, int count, uint64_t seed, const std::string& name,
                       ObfuscateReport& report);

// Renames every node and every tensor except the graph inputs and outputs to "t" + 8 hex
// digits (seeded, unique, never one of `reserved`), drops initializers listed as graph inputs
// (IR >= 4), clears doc strings, producer, domain, model version, graph name, symbolic dims of
// value_info, quantization annotations and the metadata not in options.keep_metadata, and
// shuffles the initializers when asked.
void RenameAndStrip(onnx::ModelProto& model, const ObfuscateOptions& options,
                    const std::set<std::string>& reserved, ObfuscateReport& report);

// Loads `original` and `candidate` in ONNX Runtime (CPU, the serving session policy), runs both
// on one input drawn from options.seed (uniform in [0, 1); dynamic dims: batch 1 and the
// model's imgsz) and compares every output byte for byte; fills report.verified and
// report.engine, and the latency fields when options.latency_runs > 0. Throws Error(kRuntime)
// naming the output and the first differing element, or when either model does not load or run.
void VerifyBitIdentical(const Model& original, const std::vector<uint8_t>& candidate,
                        const ObfuscateOptions& options, ObfuscateReport& report);

}  // namespace cvdeploy::optimize
