// SPDX-License-Identifier: Apache-2.0
// The one place that sets ONNX Runtime up: the process's environment, the session policy
// every session gets, the wrapper that turns the engine's exceptions into cvdeploy errors,
// and the float16 conversion. Internal to src/backends/ort/: nothing outside src/backends/
// includes an ONNX Runtime header.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <cstddef>
#include <string>

#include "backends/backend.h"
#include "cvdeploy/options.h"

namespace cvdeploy::backends::ort {

// One environment per process. Engine logs would break one-line CLI errors; every failure
// reaches callers as an exception with the engine's message instead. Thread-safe.
Ort::Env& Environment();

// Intra-op threads a session gets for `requested`: itself when > 0, else the physical cores
// (at least 1).
int ResolveThreads(int requested);

// The session policy of every session: `threads` intra-op threads (resolved already), one
// inter-op thread, the graph optimization level `level` (all by default), and spinning as
// `spin` says: on sets session.intra_op/inter_op.allow_spinning to 1 and
// session.force_spinning_stop to 0 (the engine's own default); off sets them to 0, 0 and 1.
Ort::SessionOptions SessionPolicy(int threads, bool spin = false,
                                  GraphOptimization level = GraphOptimization::kAll);

// The engine's message, first line only (ONNX Runtime appends stack-like detail lines).
std::string EngineMessage(const Ort::Exception& e);

// The one wrapper of engine failures: EngineError(code, "<context>: <engine message>").
// kBadInput where the engine rejects a model, kRuntime where a run fails.
EngineError FromOrt(ErrorCode code, const std::string& context, const Ort::Exception& e);

// The project's element-type name ("float32", "float16", "int64", ...; as ModelInfo spells
// them) of an engine element type.
std::string ElementTypeName(ONNXTensorElementDataType type);

// float32 <-> IEEE float16, round to nearest even (ONNX Runtime's own conversion).
void ToHalf(const float* in, size_t count, Ort::Float16_t* out);
void ToFloat(const Ort::Float16_t* in, size_t count, float* out);

// CPU memory description for tensors that wrap caller buffers.
const Ort::MemoryInfo& CpuMemory();

}  // namespace cvdeploy::backends::ort
