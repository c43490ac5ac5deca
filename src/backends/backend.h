// SPDX-License-Identifier: Apache-2.0
// The narrow interface every inference engine implements. Call sites never test which
// engine or execution provider is underneath.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cvdeploy/model.h"

namespace cvdeploy::backends {

// An output tensor converted to float32. Buffers are reused across runs: Run() resizes
// `data` in place, so a steady-state caller does not allocate.
struct Tensor {
  std::vector<float> data;
  std::vector<int64_t> shape;
};

struct BackendOptions {
  std::string device = "cpu";  // cpu | cuda[:N] | tensorrt[:N]
  int intra_op_threads = 0;    // 0: physical cores
  std::string profile_prefix;  // non-empty: write the engine's per-operator profile
};

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
  // Runs on an NCHW float32 input of `shape`. Thread-safe across distinct contexts.
  // Throws Error(kRuntime) with the engine's message on failure.
  virtual void Run(RunContext& context, const float* input, const std::vector<int64_t>& shape,
                   std::vector<Tensor>& outputs) const = 0;
  // Ends profiling and returns the profile file path ("" when profiling was off).
  virtual std::string EndProfiling() const { return ""; }
};

// Whether this build of the engine can use the provider named by a --device value.
bool OrtDeviceAvailable(const std::string& device, std::string* reason);

// Creates an ONNX Runtime session from model bytes. Throws Error(kBadInput) when the engine
// rejects the model, Error(kInvalidArgument) for an unknown/unavailable device.
std::unique_ptr<Backend> CreateOrtBackend(const std::vector<uint8_t>& model_bytes,
                                          const ModelInfo& info, const BackendOptions& options);

}  // namespace cvdeploy::backends
