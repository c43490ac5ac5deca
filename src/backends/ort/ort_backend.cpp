// SPDX-License-Identifier: Apache-2.0
#include <onnxruntime_cxx_api.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "backends/backend.h"
#include "cvdeploy/error.h"

namespace cvdeploy::backends {
namespace {

Ort::Env& Environment() {
  // One environment per process. Engine logs would break one-line CLI errors; every failure
  // reaches callers as an exception with the engine's message instead.
  static Ort::Env env(ORT_LOGGING_LEVEL_FATAL, "cvdeploy");
  return env;
}

int PhysicalCores() {
  // Count distinct (physical id, core id) pairs; fall back to logical CPUs.
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, physical = "0";
  while (std::getline(cpuinfo, line)) {
    auto value = [&] { return line.substr(line.find(':') + 1); };
    if (line.rfind("physical id", 0) == 0) physical = value();
    if (line.rfind("core id", 0) == 0) cores.emplace(physical, value());
  }
  const int logical = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return cores.empty() ? logical : std::min(logical, static_cast<int>(cores.size()));
}

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
      throw InvalidArgument("--device '" + device + "': device index must be a number");
    }
    spec.index = std::stoi(idx);
  }
  if (spec.kind != "cpu" && spec.kind != "cuda" && spec.kind != "tensorrt") {
    throw InvalidArgument("--device '" + device + "': expected cpu, cuda[:N] or tensorrt[:N]");
  }
  return spec;
}

class OrtContext : public RunContext {
 public:
  std::vector<Ort::Float16_t> half_input;
};

class OrtBackend : public Backend {
 public:
  OrtBackend(const std::vector<uint8_t>& bytes, const ModelInfo& info,
             const BackendOptions& options)
      : info_(info) {
    Environment();  // provider registration logs through the environment: create it first
    const DeviceSpec device = ParseDevice(options.device);
    Ort::SessionOptions so;
    so.SetIntraOpNumThreads(options.intra_op_threads > 0 ? options.intra_op_threads
                                                         : PhysicalCores());
    so.SetInterOpNumThreads(1);
    so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    if (!options.profile_prefix.empty()) so.EnableProfiling(options.profile_prefix.c_str());
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
      throw InvalidArgument("--device " + options.device +
                            ": execution provider not available in this ONNX Runtime build (" +
                            FirstLine(e.what()) + ")");
    }
    try {
      session_ = std::make_unique<Ort::Session>(Environment(), bytes.data(), bytes.size(), so);
    } catch (const Ort::Exception& e) {
      throw BadInput(info.path + ": ONNX Runtime cannot load the model: " + FirstLine(e.what()));
    }
    for (const auto& t : info.inputs) input_names_.push_back(t.name);
    for (const auto& t : info.outputs) output_names_.push_back(t.name);
    for (const auto& s : input_names_) input_ptrs_.push_back(s.c_str());
    for (const auto& s : output_names_) output_ptrs_.push_back(s.c_str());
    half_input_ = !info.inputs.empty() && info.inputs[0].type == "float16";
  }

  std::string Name() const override { return "onnxruntime"; }
  std::string Provider() const override { return provider_; }
  std::string Version() const override { return Ort::GetVersionString(); }
  std::unique_ptr<RunContext> NewContext() const override { return std::make_unique<OrtContext>(); }

  void Run(RunContext& context, const float* input, const std::vector<int64_t>& shape,
           std::vector<Tensor>& outputs) const override {
    auto& ctx = static_cast<OrtContext&>(context);
    const Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    size_t count = 1;
    for (int64_t d : shape) count *= static_cast<size_t>(d);
    Ort::Value in{nullptr};
    if (half_input_) {
      ctx.half_input.resize(count);
      for (size_t i = 0; i < count; ++i) ctx.half_input[i] = Ort::Float16_t(input[i]);
      in = Ort::Value::CreateTensor<Ort::Float16_t>(cpu, ctx.half_input.data(), count, shape.data(),
                                                    shape.size());
    } else {
      in = Ort::Value::CreateTensor<float>(cpu, const_cast<float*>(input), count, shape.data(),
                                           shape.size());
    }
    std::vector<Ort::Value> results;
    try {
      results = session_->Run(Ort::RunOptions{nullptr}, input_ptrs_.data(), &in, 1,
                              output_ptrs_.data(), output_ptrs_.size());
    } catch (const Ort::Exception& e) {
      throw RuntimeError(info_.path + ": inference failed: " + FirstLine(e.what()));
    }
    outputs.resize(results.size());
    for (size_t i = 0; i < results.size(); ++i) {
      auto type_shape = results[i].GetTensorTypeAndShapeInfo();
      outputs[i].shape = type_shape.GetShape();
      const size_t n = type_shape.GetElementCount();
      outputs[i].data.resize(n);
      switch (type_shape.GetElementType()) {
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
          std::copy_n(results[i].GetTensorData<float>(), n, outputs[i].data.data());
          break;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: {
          const auto* h = results[i].GetTensorData<Ort::Float16_t>();
          for (size_t j = 0; j < n; ++j) outputs[i].data[j] = h[j].ToFloat();
          break;
        }
        default:
          throw RuntimeError(info_.path + ": output '" + output_names_[i] +
                             "' has an element type other than float32/float16");
      }
    }
  }

  std::string EndProfiling() override {
    Ort::AllocatorWithDefaultOptions allocator;
    return session_->EndProfilingAllocated(allocator).get();
  }

 private:
  static std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

  ModelInfo info_;
  std::unique_ptr<Ort::Session> session_;
  std::string provider_;
  std::vector<std::string> input_names_, output_names_;
  std::vector<const char*> input_ptrs_, output_ptrs_;
  bool half_input_ = false;
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
    throw InvalidArgument("--device " + options.device + ": " + reason);
  }
  return std::make_unique<OrtBackend>(model_bytes, info, options);
}

}  // namespace cvdeploy::backends
