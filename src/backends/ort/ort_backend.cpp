// SPDX-License-Identifier: Apache-2.0
// The ONNX Runtime implementation of Backend: device parsing, the session, Run's IO binding.
// Environment, session policy, error wrapper and float16 conversion are in ort_env.h; the
// generic RunNamed in ort_run.h; the capability rules in ort_support.cpp.
#include <onnxruntime_cxx_api.h>

#include <algorithm>

#include "backends/backend.h"
#include "backends/ort/ort_env.h"
#include "backends/ort/ort_run.h"
#include "cvdeploy/error.h"
#include "cvdeploy/tensor.h"

namespace cvdeploy::backends {
namespace {

using ort::CpuMemory;
using ort::Environment;

struct DeviceSpec {
  std::string kind;  // cpu, cuda, tensorrt
  int index = 0;
};

DeviceSpec ParseDevice(const std::string& device) {
  DeviceSpec spec;
  const auto colon = device.find(':');
  spec.kind = device.substr(0, colon);
  if (colon != std::string::npos) {
    const std::string idx = device.substr(colon + 1);
    if (idx.empty() || idx.find_first_not_of("0123456789") != std::string::npos) {
      throw InvalidArgument("device '" + device + "': device index must be a number", "device");
    }
    spec.index = std::stoi(idx);
  }
  if (spec.kind != "cpu" && spec.kind != "cuda" && spec.kind != "tensorrt") {
    throw InvalidArgument("device '" + device + "': expected cpu, cuda[:N] or tensorrt[:N]",
                          "device");
  }
  return spec;
}

// Per-caller engine state: an IO binding whose input and output values wrap the caller's
// buffers. Values are re-created only when a buffer moves or a shape changes, so a
// steady-state Run allocates nothing on our side and ORT writes outputs in place.
class OrtContext : public RunContext {
 public:
  explicit OrtContext(Ort::Session& session) : binding(session) {}
  Ort::IoBinding binding;
  Ort::RunOptions run_options;
  std::vector<Ort::Float16_t> half_input;
  Ort::Value input_value{nullptr};
  const void* bound_input = nullptr;
  std::vector<int64_t> bound_input_shape;
  std::vector<Ort::Value> output_values;
  std::vector<const float*> bound_outputs;  // nullptr: bound to ORT-allocated memory
  std::vector<std::vector<int64_t>> bound_output_shapes;
};

class OrtBackend : public Backend {
 public:
  // `read_io`: the graph's inputs and outputs come from the engine, not from `info` (a graph
  // backend for the model tools, whose `info` only names it).
  OrtBackend(const std::vector<uint8_t>& bytes, const ModelInfo& info,
             const BackendOptions& options, bool read_io = false)
      : info_(info), device_(options.device) {
    Environment();  // provider registration logs through the environment: create it first
    const DeviceSpec device = ParseDevice(options.device);
    threads_ = ort::ResolveThreads(options.intra_op_threads);
    Ort::SessionOptions so = ort::SessionPolicy(threads_, options.spin, options.graph_optimization);
    profiling_ = !options.profile_prefix.empty();
    if (profiling_) so.EnableProfiling(options.profile_prefix.c_str());
    provider_ = "CPUExecutionProvider";
    try {
      if (device.kind == "cuda") {
        OrtCUDAProviderOptions cuda{};
        cuda.device_id = device.index;
        so.AppendExecutionProvider_CUDA(cuda);
        provider_ = "CUDAExecutionProvider";
      } else if (device.kind == "tensorrt") {
        OrtTensorRTProviderOptions trt{};
        trt.device_id = device.index;
        so.AppendExecutionProvider_TensorRT(trt);
        provider_ = "TensorrtExecutionProvider";
      }
    } catch (const Ort::Exception& e) {
      throw InvalidArgument("device '" + options.device + "'" +
                                ": execution provider not available in this ONNX Runtime build (" +
                                FirstLine(e.what()) + ")",
                            "device");
    }
    try {
      session_ = std::make_unique<Ort::Session>(Environment(), bytes.data(), bytes.size(), so);
    } catch (const Ort::Exception& e) {
      throw ort::FromOrt(ErrorCode::kBadInput, info.path + ": ONNX Runtime cannot load the model",
                         e);
    }
    if (read_io) {
      info_.inputs = ort::SessionInputs(*session_);
      info_.outputs = ort::SessionOutputs(*session_);
    }
    for (const auto& t : info_.inputs) input_names_.push_back(t.name);
    for (const auto& t : info_.outputs) output_names_.push_back(t.name);
    for (const auto& s : input_names_) input_ptrs_.push_back(s.c_str());
    for (const auto& s : output_names_) output_ptrs_.push_back(s.c_str());
    half_input_ = !info_.inputs.empty() && info_.inputs[0].type == "float16";
  }

  std::string Name() const override { return "onnxruntime"; }
  std::string Provider() const override { return provider_; }
  std::string Version() const override { return Ort::GetVersionString(); }
  int Threads() const override { return threads_; }
  std::unique_ptr<RunContext> NewContext() const override {
    return std::make_unique<OrtContext>(*session_);
  }

  void Run(RunContext& context, const TensorView& input,
           std::vector<Tensor>& outputs) const override {
    if (input.dtype() != DataType::kFloat32) {
      throw InvalidArgument(info_.path + ": the engine input is " +
                            std::string(DataTypeName(input.dtype())) + ", not float32");
    }
    auto& ctx = static_cast<OrtContext&>(context);
    const std::vector<int64_t>& shape = input.shape();
    try {
      BindInput(ctx, input);
      BindOutputs(ctx, shape.empty() ? 1 : shape[0], outputs);
      session_->Run(ctx.run_options, ctx.binding);
    } catch (const Ort::Exception& e) {
      // A failed run may leave bindings half-updated: rebind everything next time.
      ctx.bound_input = nullptr;
      ctx.bound_outputs.clear();
      throw ort::FromOrt(ErrorCode::kRuntime, info_.path + ": inference failed", e);
    }
    CollectUnboundOutputs(ctx, outputs);
  }

  std::string EndProfiling() const override {
    if (!profiling_) return "";
    Ort::AllocatorWithDefaultOptions allocator;
    return session_->EndProfilingAllocated(allocator).get();
  }

  const ModelInfo& Info() const override { return info_; }
  Support Supports(const ModelInfo& info) const override { return OrtSupports(info, device_); }
  void RunNamed(const std::vector<NamedTensorView>& inputs,
                const std::vector<std::string>& output_names,
                const OutputsVisitor& visit) const override {
    ort::RunNamed(*session_, info_.inputs, info_.outputs, info_.path, inputs, output_names, visit);
  }

 private:
  static std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

  // `input` is float32 (checked by Run).
  void BindInput(OrtContext& ctx, const TensorView& input) const {
    const std::vector<int64_t>& shape = input.shape();
    const size_t count = input.elements();
    const float* values = input.Data<float>();
    if (half_input_) {
      ctx.half_input.resize(count);
      ort::ToHalf(values, count, ctx.half_input.data());
    }
    const void* data = half_input_ ? static_cast<const void*>(ctx.half_input.data()) : values;
    if (data == ctx.bound_input && shape == ctx.bound_input_shape) return;
    if (half_input_) {
      ctx.input_value = Ort::Value::CreateTensor<Ort::Float16_t>(CpuMemory(), ctx.half_input.data(),
                                                                 count, shape.data(), shape.size());
    } else {
      ctx.input_value = Ort::Value::CreateTensor<float>(CpuMemory(), const_cast<float*>(values),
                                                        count, shape.data(), shape.size());
    }
    ctx.binding.BindInput(input_ptrs_[0], ctx.input_value);
    ctx.bound_input = data;
    ctx.bound_input_shape = shape;
  }

  // Output shape for a batch when everything but the batch axis is static; empty otherwise.
  std::vector<int64_t> StaticOutputShape(size_t i, int64_t batch) const {
    const TensorInfo& t = info_.outputs[i];
    if (t.type != "float32" || t.shape.empty()) return {};
    std::vector<int64_t> shape = t.shape;
    shape[0] = batch;
    for (size_t d = 1; d < shape.size(); ++d) {
      if (shape[d] <= 0) return {};
    }
    return shape;
  }

  // Float32 outputs of a known shape are written by ORT straight into `outputs`; others
  // (dynamic spatial size, float16) are left to ORT's allocator and converted afterwards.
  // Tensor::Reshape keeps the storage while it is large enough, so the same buffer stays
  // bound run after run and ORT's values are re-created only when it moves or the shape
  // changes.
  void BindOutputs(OrtContext& ctx, int64_t batch, std::vector<Tensor>& outputs) const {
    const size_t n = output_names_.size();
    outputs.resize(n);
    if (ctx.bound_outputs.size() != n) {
      ctx.bound_outputs.assign(n, nullptr);
      ctx.bound_output_shapes.assign(n, {});
      ctx.output_values.clear();
      for (size_t i = 0; i < n; ++i) ctx.output_values.emplace_back(nullptr);
    }
    for (size_t i = 0; i < n; ++i) {
      std::vector<int64_t> shape = StaticOutputShape(i, batch);
      if (shape.empty()) {
        // Rebound before every run: after a run the binding holds the value ORT allocated,
        // and the next run would take it as pre-allocated and fail when the shape changes
        // (a dynamic-size model fed rect letterboxes of different sizes).
        ctx.binding.BindOutput(output_ptrs_[i], CpuMemory());
        ctx.bound_outputs[i] = nullptr;
        ctx.bound_output_shapes[i] = {-1};
        continue;
      }
      Tensor& out = outputs[i];
      if (out.dtype() != DataType::kFloat32 || out.shape() != shape) {
        out.Reshape(DataType::kFloat32, shape);
      }
      float* buffer = out.Data<float>();
      if (ctx.bound_outputs[i] == buffer && ctx.bound_output_shapes[i] == shape) continue;
      ctx.output_values[i] = Ort::Value::CreateTensor<float>(CpuMemory(), buffer, out.elements(),
                                                             shape.data(), shape.size());
      ctx.binding.BindOutput(output_ptrs_[i], ctx.output_values[i]);
      ctx.bound_outputs[i] = buffer;
      ctx.bound_output_shapes[i] = std::move(shape);
    }
  }

  void CollectUnboundOutputs(OrtContext& ctx, std::vector<Tensor>& outputs) const {
    if (std::all_of(ctx.bound_outputs.begin(), ctx.bound_outputs.end(),
                    [](const float* p) { return p != nullptr; })) {
      return;
    }
    std::vector<Ort::Value> values = ctx.binding.GetOutputValues();
    for (size_t i = 0; i < values.size() && i < outputs.size(); ++i) {
      if (ctx.bound_outputs[i] != nullptr) continue;
      auto type_shape = values[i].GetTensorTypeAndShapeInfo();
      Tensor& out = outputs[i];
      out.Reshape(DataType::kFloat32, type_shape.GetShape());
      const size_t count = type_shape.GetElementCount();
      switch (type_shape.GetElementType()) {
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
          std::copy_n(values[i].GetTensorData<float>(), count, out.Data<float>());
          break;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16:
          ort::ToFloat(values[i].GetTensorData<Ort::Float16_t>(), count, out.Data<float>());
          break;
        default:
          throw RuntimeError(info_.path + ": output '" + output_names_[i] +
                             "' has an element type other than float32/float16");
      }
    }
  }

  ModelInfo info_;
  std::string device_;
  std::unique_ptr<Ort::Session> session_;
  std::string provider_;
  std::vector<std::string> input_names_, output_names_;
  std::vector<const char*> input_ptrs_, output_ptrs_;
  bool half_input_ = false;
  int threads_ = 1;
  bool profiling_ = false;
};

}  // namespace

bool OrtDeviceAvailable(const std::string& device, std::string* reason) {
  const DeviceSpec spec = ParseDevice(device);
  if (spec.kind == "cpu") return true;
  const std::string wanted =
      spec.kind == "cuda" ? "CUDAExecutionProvider" : "TensorrtExecutionProvider";
  for (const std::string& p : Ort::GetAvailableProviders()) {
    if (p == wanted) return true;
  }
  if (reason) *reason = wanted + " is not compiled into this ONNX Runtime library";
  return false;
}

std::unique_ptr<Backend> CreateOrtBackend(const std::vector<uint8_t>& model_bytes,
                                          const ModelInfo& info, const BackendOptions& options) {
  std::string reason;
  if (!OrtDeviceAvailable(options.device, &reason)) {
    throw InvalidArgument("device '" + options.device + "': " + reason, "device");
  }
  const Support support = OrtSupports(info, options.device);
  if (!support.ok) throw BadInput(info.path + ": " + support.reason);
  return std::make_unique<OrtBackend>(model_bytes, info, options);
}

std::unique_ptr<Backend> CreateOrtGraphBackend(const std::vector<uint8_t>& model_bytes,
                                               const std::string& name,
                                               const BackendOptions& options) {
  // The constructor refuses an unknown device or a provider missing from this build.
  ModelInfo info;
  info.path = name;
  return std::make_unique<OrtBackend>(model_bytes, info, options, /*read_io=*/true);
}

}  // namespace cvdeploy::backends
