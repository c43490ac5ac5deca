// SPDX-License-Identifier: Apache-2.0
// The narrow interface every inference engine implements. Call sites never test which
// engine or execution provider is underneath.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cvdeploy/error.h"
#include "cvdeploy/model.h"
#include "cvdeploy/options.h"
#include "cvdeploy/tensor.h"

namespace cvdeploy::backends {

// Every session of a backend gets the measured thread policy (docs/performance.md): these
// intra-op threads, one inter-op thread, threads that block instead of spinning between runs
// unless `spin` (SessionOptions::spin, resolved by the front end), and the graph optimization
// level asked for (all by default).
struct BackendOptions {
  std::string device = "cpu";  // cpu | cuda[:N] | tensorrt[:N]
  int intra_op_threads = 0;    // <= 0: physical cores
  bool spin = false;           // engine threads busy-wait for work (Spin::kOn)
  GraphOptimization graph_optimization = GraphOptimization::kAll;
  std::string profile_prefix;  // non-empty: write the engine's per-operator profile
};

// An engine failure: kBadInput where the engine rejects a model, kRuntime where a run fails.
// what() is a complete message ("<model>: ONNX Runtime cannot load the model: <engine
// text>"); engine_message() is the engine's text alone (first line), for a caller that puts
// it into a message of its own.
class EngineError : public Error {
 public:
  EngineError(ErrorCode code, const std::string& message, std::string engine_message)
      : Error(code, message), engine_message_(std::move(engine_message)) {}
  const std::string& engine_message() const noexcept { return engine_message_; }

 private:
  std::string engine_message_;
};

// Answer of a capability query: whether Backend::Run can run a model, why not, and what is
// worth a warning where it can.
struct Support {
  bool ok = true;
  std::string reason;              // ok == false: why not (names the tensor and its type)
  std::vector<std::string> notes;  // ok == true: it runs, but e.g. slower than expected
};

// One output of Backend::RunNamed, valid only during the visitor call. `tensor` is a float32
// view: the engine's own buffer for float32 (no copy); converted for float16 (exact), bool
// and integer types (exact up to 2^24) and float64 (rounded). For a tensor type without a
// float32 value (string, bfloat16, ...) the view has the shape but no data (empty()); for a
// non-tensor output it is a default view.
struct OutputView : NamedTensorView {
  std::string engine_type;  // the engine's element type: "float32", "float16", "int64", ...
};

// Receives every requested output of one RunNamed call at once, in request order (so it can
// work on them in parallel).
using OutputsVisitor = std::function<void(const std::vector<OutputView>& outputs)>;

// Per-caller scratch for one Run at a time: input staging and engine-side bindings.
// Created by the backend; owned by the caller; never shared between concurrent calls.
class RunContext {
 public:
  virtual ~RunContext() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string Name() const = 0;      // "onnxruntime"
  virtual std::string Provider() const = 0;  // execution provider in use
  virtual std::string Version() const = 0;
  virtual int Threads() const = 0;  // intra-op threads of one run
  virtual std::unique_ptr<RunContext> NewContext() const = 0;
  // Runs on an NCHW float32 `input` (read only during the call). `outputs` gets one float32
  // Tensor per model output; keep them across calls: Run reshapes them in place (the storage
  // stays while it is large enough, and the engine writes into it), so a steady-state caller
  // does not allocate. Thread-safe across distinct contexts. Throws Error(kInvalidArgument)
  // when `input` is not float32, Error(kRuntime) with the engine's message on failure.
  virtual void Run(RunContext& context, const TensorView& input,
                   std::vector<Tensor>& outputs) const = 0;
  // Ends profiling and returns the profile file path ("" when profiling was off).
  virtual std::string EndProfiling() const { return ""; }

  // The model: as given to CreateOrtBackend; for CreateOrtGraphBackend, the graph's inputs
  // and outputs as the engine reads them (element types, shapes with -1 for dynamic dims),
  // `path` its name and nothing else filled.
  virtual const ModelInfo& Info() const = 0;
  // Capability query: whether Run (one NCHW image input, float outputs) works for `info` on
  // this backend's provider, with notes on what is worth a warning.
  virtual Support Supports(const ModelInfo& info) const = 0;
  // The generic run of the model tools: feeds `inputs` by name (float32 views, read only
  // during the call; converted where the graph declares float16), computes the outputs named
  // in `output_names` (every graph output when empty) and hands them to `visit` before
  // returning. Any graph, any number of inputs; no RunContext needed. Thread-safe. Throws
  // Error(kInvalidArgument) for an input that is not float32, EngineError(kRuntime) when the
  // run fails; exceptions of `visit` pass through unchanged.
  virtual void RunNamed(const std::vector<NamedTensorView>& inputs,
                        const std::vector<std::string>& output_names,
                        const OutputsVisitor& visit) const = 0;
};

// Capability query before a load: whether Backend::Run of an ONNX Runtime backend on
// `device` can run the model `info` describes. CreateOrtBackend refuses what this refuses.
Support OrtSupports(const ModelInfo& info, const std::string& device);

// Whether this build of the engine can use the provider named by a --device value.
bool OrtDeviceAvailable(const std::string& device, std::string* reason);

// Creates an ONNX Runtime session from model bytes. Throws Error(kBadInput) when the engine
// rejects the model (an EngineError) or OrtSupports refuses it, Error(kInvalidArgument) for an
// unknown/unavailable device.
std::unique_ptr<Backend> CreateOrtBackend(const std::vector<uint8_t>& model_bytes,
                                          const ModelInfo& info, const BackendOptions& options);

// Creates an ONNX Runtime session for any ONNX graph (not necessarily a YOLO model: a tool's
// modified or augmented graph), with the same session policy. Info() then holds the graph's
// inputs and outputs as the engine reads them; `name` prefixes error messages. Throws
// EngineError(kBadInput) when the engine rejects the graph, Error(kInvalidArgument) for an
// unknown/unavailable device.
std::unique_ptr<Backend> CreateOrtGraphBackend(const std::vector<uint8_t>& model_bytes,
                                               const std::string& name,
                                               const BackendOptions& options);

}  // namespace cvdeploy::backends
