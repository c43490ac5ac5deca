// SPDX-License-Identifier: Apache-2.0
// cvdeploy::Obfuscate (cvdeploy/obfuscate.h): dummy layers, renaming and stripping
// (optimize/obfuscate_graph.h), then the proof: the ONNX checker, and both models run by ONNX
// Runtime on one seeded input with every output compared byte for byte.
#include "cvdeploy/obfuscate.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <set>

#include "backends/backend.h"
#include "cvdeploy/error.h"
#include "model/onnx_model.h"
#include "optimize/obfuscate_graph.h"

namespace cvdeploy::optimize {
namespace {

using Clock = std::chrono::steady_clock;

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// One seeded input per graph input, uniform in [0, 1) (a normalized image's range); dynamic
// dims get batch 1 and the model's imgsz.
struct Inputs {
  std::vector<std::vector<float>> data;
  std::vector<NamedTensorView> views;
};

Inputs MakeInputs(const Model& model, uint64_t seed) {
  const ModelInfo& info = model.info();
  Inputs inputs;
  inputs.data.resize(info.inputs.size());
  std::mt19937 rng(static_cast<uint32_t>(seed ^ (seed >> 32)) ^ 0x5eedu);
  std::uniform_real_distribution<float> uniform(0.f, 1.f);
  for (size_t i = 0; i < info.inputs.size(); ++i) {
    std::vector<int64_t> shape = info.inputs[i].shape;
    size_t count = 1;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] <= 0) shape[d] = d == 0 ? 1 : (d == 2 ? info.meta.imgsz_h : info.meta.imgsz_w);
      count *= static_cast<size_t>(shape[d]);
    }
    inputs.data[i].resize(count);
    for (float& v : inputs.data[i]) v = uniform(rng);
    inputs.views.push_back(
        {info.inputs[i].name, TensorView(DataType::kFloat32, shape, inputs.data[i].data())});
  }
  return inputs;
}

struct HostOutput {
  std::string name, type;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // the float32 view's bytes (the engine's own for float32)
};

std::vector<HostOutput> Run(const backends::Backend& session, const Inputs& inputs) {
  std::vector<HostOutput> out;
  session.RunNamed(inputs.views, {}, [&](const std::vector<backends::OutputView>& views) {
    for (const backends::OutputView& v : views) {
      const auto* p = static_cast<const uint8_t*>(v.tensor.data());
      out.push_back({v.name, v.engine_type, v.tensor.shape(),
                     p ? std::vector<uint8_t>(p, p + v.tensor.bytes()) : std::vector<uint8_t>{}});
    }
  });
  return out;
}

// Throws Error(kRuntime) naming the first output (and element) that is not bit-identical.
std::vector<std::string> CompareOutputs(const std::vector<HostOutput>& ref,
                                        const std::vector<HostOutput>& out,
                                        const std::string& name) {
  const std::string prefix = name + ": the obfuscated model ";
  if (out.size() != ref.size()) {
    throw RuntimeError(prefix + "has " + std::to_string(out.size()) + " outputs, the original " +
                       std::to_string(ref.size()));
  }
  std::vector<std::string> lines;
  for (size_t k = 0; k < ref.size(); ++k) {
    const HostOutput& r = ref[k];
    const HostOutput& o = out[k];
    if (o.name != r.name || o.shape != r.shape || o.type != r.type) {
      throw RuntimeError(prefix + "changed output '" + r.name + "' " + r.type + " " +
                         ShapeText(r.shape) + " into '" + o.name + "' " + o.type + " " +
                         ShapeText(o.shape));
    }
    if (r.bytes.empty() && !r.shape.empty()) {
      throw RuntimeError(prefix + "cannot be verified: output '" + r.name + "' has type " + r.type +
                         ", which the check does not read");
    }
    if (o.bytes != r.bytes) {
      size_t i = 0;
      while (i + 4 <= r.bytes.size() && std::memcmp(&r.bytes[i], &o.bytes[i], 4) == 0) i += 4;
      float a = 0, b = 0;
      std::memcpy(&a, &r.bytes[i], 4);
      std::memcpy(&b, &o.bytes[i], 4);
      char buf[160];
      std::snprintf(buf, sizeof(buf), "element %zu is %.9g, the original's %.9g", i / 4, b, a);
      throw RuntimeError(prefix + "is not bit-identical to the original: output '" + r.name + "' " +
                         buf + " (refusing to write it)");
    }
    lines.push_back(r.name + " " + ShapeText(r.shape) + " " + r.type + ": " +
                    std::to_string(r.bytes.size() / 4) + " values bit-identical" +
                    (r.type == "float32" ? "" : " (compared as float32)"));
  }
  return lines;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double TimedRun(const backends::Backend& session, const Inputs& inputs) {
  const auto start = Clock::now();
  session.RunNamed(inputs.views, {}, [](const std::vector<backends::OutputView>&) {});
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Interleaved (original, obfuscated, obfuscated, original, ...) so that drift of the machine's load
// hits both alike; the verification runs were the warm-up.
void MeasureLatency(const backends::Backend& before, const backends::Backend& after,
                    const Inputs& inputs, int runs, ObfuscateReport& report) {
  std::vector<double> a, b;
  for (int i = 0; i < runs; ++i) {
    if (i % 2 == 0) {
      a.push_back(TimedRun(before, inputs));
      b.push_back(TimedRun(after, inputs));
    } else {  // ABBA: neither model always runs right after the other
      b.push_back(TimedRun(after, inputs));
      a.push_back(TimedRun(before, inputs));
    }
  }
  report.latency_runs = runs;
  report.original_ms = Median(a);
  report.obfuscated_ms = Median(b);
}

std::unique_ptr<backends::Backend> Load(const std::vector<uint8_t>& bytes, const std::string& name,
                                        const char* which) {
  try {
    return backends::CreateOrtGraphBackend(bytes, name, backends::BackendOptions{});
  } catch (const backends::EngineError& e) {
    throw RuntimeError(name + ": ONNX Runtime cannot load the " + which +
                       " model: " + e.engine_message());
  }
}

}  // namespace

void VerifyBitIdentical(const Model& model, const std::vector<uint8_t>& obfuscated,
                        const ObfuscateOptions& options, ObfuscateReport& report) {
  const std::string& name = model.info().path;
  const auto before = Load(model.bytes(), name, "original");
  const auto after = Load(obfuscated, name, "obfuscated");
  const Inputs inputs = MakeInputs(model, options.seed);
  std::vector<HostOutput> ref, out;
  try {
    ref = Run(*before, inputs);
    out = Run(*after, inputs);
  } catch (const backends::EngineError& e) {
    throw RuntimeError(name + ": ONNX Runtime cannot run the model: " + e.engine_message());
  }
  report.verified = CompareOutputs(ref, out, name);
  report.engine = before->Name() + " " + before->Version() + " " + before->Provider() + ", " +
                  std::to_string(before->Threads()) +
                  " threads, all graph optimizations, seeded input in [0, 1)";
  if (options.latency_runs > 0)
    MeasureLatency(*before, *after, inputs, options.latency_runs, report);
}

}  // namespace cvdeploy::optimize

namespace cvdeploy {

std::vector<std::string> DefaultKeptMetadata() {
  return {"task", "names", "imgsz", "stride", "kpt_shape", "batch", "end2end", "half"};
}

ObfuscateResult Obfuscate(const Model& model, const ObfuscateOptions& options) {
  const std::string& name = model.info().path;
  if (options.dummy_layers < 0 || options.dummy_layers > kMaxDummyLayers) {
    throw InvalidArgument("obfuscate: dummy_layers " + std::to_string(options.dummy_layers) +
                              " is out of range 0.." + std::to_string(kMaxDummyLayers),
                          "dummy_layers");
  }
  if (options.latency_runs < 0) {
    throw InvalidArgument("obfuscate: latency_runs must not be negative", "latency_runs");
  }
  if (model.bytes().empty()) {
    throw InvalidArgument(name + ": cannot obfuscate a model description without its bytes");
  }
  onnx::ModelProto proto = model::ParseModel(model.bytes(), name);
  optimize::CheckObfuscatable(proto, name);
  ObfuscateResult result;
  ObfuscateReport& report = result.report;
  report.seed = options.seed;
  report.nodes_before = proto.graph().node_size();
  const std::set<std::string> original_names = optimize::GraphNames(proto.graph());
  optimize::InsertDummyLayers(proto, options.dummy_layers, options.seed, name, report);
  optimize::RenameAndStrip(proto, options, original_names, report);
  report.nodes_after = proto.graph().node_size();
  model::CheckModel(proto, name);
  result.bytes = model::SerializeModel(proto);
  optimize::VerifyBitIdentical(model, result.bytes, options, report);
  return result;
}

}  // namespace cvdeploy
