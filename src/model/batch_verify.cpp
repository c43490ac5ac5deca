// SPDX-License-Identifier: Apache-2.0
#include "model/batch_verify.h"

#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>

#include "cvdeploy/error.h"

namespace cvdeploy::model {
namespace {

// [a, b, a]: slot 0 vs slot 2 shows whether batch items mix, each slot vs the original run
// alone shows whether the rewrite kept the computation.
constexpr int kVerifyBatch = 3;
// The same input in two slots of one batch goes through the same kernels with the same
// (batch-wide) quantization parameters: anything beyond rounding noise means items mix.
constexpr double kWithinBatchRtol = 1e-5;
// Converted graph at batch > 1 vs the original at batch 1, relative to the output's largest
// |value|. Measured 0 (bit-identical) on every sample model; the margin covers kernels that
// block or vectorize differently per batch size, while a wrong rewrite moves values by the
// order of the output scale.
constexpr double kBatchRtol = 1e-3;

Error Fail(const std::string& name, const std::string& reason) {
  return BadInput(name + ": cannot make the batch axis dynamic: " + reason);
}

Ort::Env& Environment() {
  // ONNX Runtime keeps one environment per process (ref-counted): the backend's and this one
  // are the same object. Engine logs stay off; failures surface as exceptions.
  static Ort::Env env(ORT_LOGGING_LEVEL_FATAL, "cvdeploy");
  return env;
}

struct InputSpec {
  std::string name;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  std::vector<int64_t> item_shape;  // dims after the batch
  size_t item_size = 1;
};

struct HostTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<double> values;
};

using Batch = std::vector<std::vector<float>>;  // one flat buffer per graph input

std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string Sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2e", v);
  return buf;
}

std::string IntsText(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// Inputs as the converted session sees them; a dynamic non-batch axis gets 64, a multiple of
// every YOLO stride.
std::vector<InputSpec> InputSpecs(const Ort::Session& session, const std::string& name) {
  Ort::AllocatorWithDefaultOptions allocator;
  std::vector<InputSpec> specs(session.GetInputCount());
  for (size_t i = 0; i < specs.size(); ++i) {
    specs[i].name = session.GetInputNameAllocated(i, allocator).get();
    const Ort::TypeInfo type_info = session.GetInputTypeInfo(i);  // owns what `info` reads
    const auto info = type_info.GetTensorTypeAndShapeInfo();
    specs[i].type = info.GetElementType();
    if (specs[i].type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT &&
        specs[i].type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) {
      throw Fail(name, "cannot verify: input '" + specs[i].name + "' is not a float tensor");
    }
    const std::vector<int64_t> shape = info.GetShape();
    for (size_t d = 1; d < shape.size(); ++d) {
      specs[i].item_shape.push_back(shape[d] > 0 ? shape[d] : 64);
      specs[i].item_size *= static_cast<size_t>(specs[i].item_shape.back());
    }
  }
  return specs;
}

std::vector<HostTensor> Run(Ort::Session& session, const std::vector<InputSpec>& specs,
                            const Batch& batch_values, int batch, const std::string& name) {
  const Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<Ort::Value> inputs;
  std::vector<std::vector<Ort::Float16_t>> halves(specs.size());
  std::vector<std::vector<int64_t>> shapes(specs.size());
  std::vector<const char*> input_names;
  for (size_t i = 0; i < specs.size(); ++i) {
    shapes[i] = specs[i].item_shape;
    shapes[i].insert(shapes[i].begin(), batch);
    const std::vector<float>& v = batch_values[i];
    input_names.push_back(specs[i].name.c_str());
    if (specs[i].type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) {
      halves[i].reserve(v.size());
      for (float f : v) halves[i].push_back(Ort::Float16_t(f));
      inputs.push_back(Ort::Value::CreateTensor<Ort::Float16_t>(
          memory, halves[i].data(), halves[i].size(), shapes[i].data(), shapes[i].size()));
    } else {
      inputs.push_back(Ort::Value::CreateTensor<float>(
          memory, const_cast<float*>(v.data()), v.size(), shapes[i].data(), shapes[i].size()));
    }
  }
  Ort::AllocatorWithDefaultOptions allocator;
  std::vector<std::string> output_names;
  for (size_t i = 0; i < session.GetOutputCount(); ++i)
    output_names.push_back(session.GetOutputNameAllocated(i, allocator).get());
  std::vector<const char*> output_ptrs;
  for (const auto& s : output_names) output_ptrs.push_back(s.c_str());
  auto values = session.Run(Ort::RunOptions{}, input_names.data(), inputs.data(), inputs.size(),
                            output_ptrs.data(), output_ptrs.size());

  std::vector<HostTensor> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    out[i].name = output_names[i];
    const auto info = values[i].GetTensorTypeAndShapeInfo();
    out[i].shape = info.GetShape();
    const size_t n = info.GetElementCount();
    out[i].values.resize(n);
    auto copy = [&](auto tag) {
      const auto* p = values[i].GetTensorData<decltype(tag)>();
      for (size_t k = 0; k < n; ++k) out[i].values[k] = static_cast<double>(p[k]);
    };
    switch (info.GetElementType()) {
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
        copy(float{});
        break;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
        copy(double{});
        break;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
        copy(int64_t{});
        break;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
        copy(int32_t{});
        break;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
        copy(uint8_t{});
        break;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
        copy(int8_t{});
        break;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL:
        copy(bool{});
        break;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: {
        const auto* p = values[i].GetTensorData<Ort::Float16_t>();
        for (size_t k = 0; k < n; ++k) out[i].values[k] = p[k].ToFloat();
        break;
      }
      default:
        throw Fail(name, "cannot verify: output '" + output_names[i] +
                             "' has an element type the check does not read");
    }
  }
  return out;
}

double AbsDiff(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) {
    return std::isnan(a) && std::isnan(b) ? 0.0 : std::numeric_limits<double>::infinity();
  }
  return a == b ? 0.0 : std::fabs(a - b);
}

// Max |difference| between item `slot` of `out` and item `ref_slot` of `ref` (same item size).
double SlotDiff(const HostTensor& out, int slot, const HostTensor& ref, int ref_slot = 0) {
  const size_t n = ref.values.size() / static_cast<size_t>(ref.shape[0]);
  double m = 0;
  for (size_t k = 0; k < n; ++k) {
    m = std::max(m, AbsDiff(out.values[slot * n + k], ref.values[ref_slot * n + k]));
  }
  return m;
}

// Every output of a batched run must be [batch, <the batch-1 shape after axis 0>].
void CheckShapes(const std::vector<HostTensor>& ref, const std::vector<HostTensor>& out, int batch,
                 const std::string& name) {
  for (size_t k = 0; k < out.size(); ++k) {
    std::vector<int64_t> expected = ref[k].shape;
    if (!expected.empty() && expected[0] == 1 && out[k].shape.size() == expected.size() &&
        out[k].shape[0] == batch &&
        std::equal(expected.begin() + 1, expected.end(), out[k].shape.begin() + 1)) {
      continue;
    }
    if (!expected.empty()) expected[0] = batch;
    throw Fail(name, "output '" + ref[k].name + "' is " + IntsText(out[k].shape) + " at batch " +
                         std::to_string(batch) + ", expected " + IntsText(expected) +
                         ": its first axis does not follow the batch");
  }
}

}  // namespace

void VerifyDynamicBatch(const std::vector<uint8_t>& original, const std::vector<uint8_t>& converted,
                        bool scales_span_batch, const std::string& name,
                        DynamicBatchReport& report) {
  Ort::SessionOptions so;
  so.SetIntraOpNumThreads(1);  // deterministic, and never competing with the caller's threads
  so.SetInterOpNumThreads(1);
  so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
  std::unique_ptr<Ort::Session> before, after;
  try {
    before = std::make_unique<Ort::Session>(Environment(), original.data(), original.size(), so);
  } catch (const Ort::Exception& e) {
    throw Fail(name, "ONNX Runtime cannot load the original model: " + FirstLine(e.what()));
  }
  try {
    after = std::make_unique<Ort::Session>(Environment(), converted.data(), converted.size(), so);
  } catch (const Ort::Exception& e) {
    throw Fail(name, "ONNX Runtime cannot load the converted graph: " + FirstLine(e.what()));
  }
  const std::vector<InputSpec> specs = InputSpecs(*after, name);

  // Deterministic inputs uniform in [0, 1), the range of a normalized image.
  std::mt19937 rng(20240611u);
  std::uniform_real_distribution<float> uniform(0.f, 1.f);
  Batch a(specs.size()), b(specs.size()), mixed(specs.size()), same(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    for (auto* item : {&a[i], &b[i]}) {
      item->resize(specs[i].item_size);
      for (float& v : *item) v = uniform(rng);
    }
    for (const auto* item : {&a[i], &b[i], &a[i]})
      mixed[i].insert(mixed[i].end(), item->begin(), item->end());
    for (const auto* item : {&a[i], &a[i]})
      same[i].insert(same[i].end(), item->begin(), item->end());
  }

  std::vector<HostTensor> ref_a, ref_b, out_mixed, out_same;
  try {
    ref_a = Run(*before, specs, a, 1, name);
    ref_b = Run(*before, specs, b, 1, name);
  } catch (const Ort::Exception& e) {
    throw Fail(name, "ONNX Runtime cannot run the original model: " + FirstLine(e.what()));
  }
  try {
    out_mixed = Run(*after, specs, mixed, kVerifyBatch, name);
    // Identical items give identical batch-wide quantization scales: this run isolates the
    // rewrite from the batch-mate effect of DynamicQuantizeLinear.
    if (scales_span_batch) out_same = Run(*after, specs, same, 2, name);
  } catch (const Ort::Exception& e) {
    throw Fail(name, "ONNX Runtime cannot run the converted graph at batch " +
                         std::to_string(kVerifyBatch) + ": " + FirstLine(e.what()));
  }
  CheckShapes(ref_a, out_mixed, kVerifyBatch, name);
  if (scales_span_batch) CheckShapes(ref_a, out_same, 2, name);

  report.verify_batch = kVerifyBatch;
  report.batch_dependent = scales_span_batch;
  for (size_t k = 0; k < out_mixed.size(); ++k) {
    const std::string& output = ref_a[k].name;
    double scale = 0;
    for (const auto* r : {&ref_a[k], &ref_b[k]})
      for (double v : r->values) scale = std::max(scale, std::fabs(v));
    const double unit = std::max(1.0, scale);
    const double within = SlotDiff(out_mixed[k], 0, out_mixed[k], 2);
    const double mates =
        std::max({SlotDiff(out_mixed[k], 0, ref_a[k]), SlotDiff(out_mixed[k], 1, ref_b[k]),
                  SlotDiff(out_mixed[k], 2, ref_a[k])});
    const double exact = scales_span_batch ? std::max(SlotDiff(out_same[k], 0, ref_a[k]),
                                                      SlotDiff(out_same[k], 1, ref_a[k]))
                                           : mates;
    report.max_diff_within_batch = std::max(report.max_diff_within_batch, within);
    report.max_diff_vs_batch1 = std::max(report.max_diff_vs_batch1, exact);
    report.max_diff_from_batch_mates = std::max(report.max_diff_from_batch_mates, mates);
    report.max_abs_output = std::max(report.max_abs_output, scale);
    report.tolerance_vs_batch1 = std::max(report.tolerance_vs_batch1, kBatchRtol * unit);
    if (!(within <= kWithinBatchRtol * unit)) {
      throw Fail(name, "output '" + output +
                           "': the same input in slots 0 and 2 of one batch gives outputs "
                           "differing by " +
                           Sci(within) + " (batch items mix)");
    }
    if (!(exact <= kBatchRtol * unit)) {
      throw Fail(name, "output '" + output + "' at batch " +
                           std::to_string(scales_span_batch ? 2 : kVerifyBatch) +
                           " differs from the original at batch 1 by " + Sci(exact) + " (allowed " +
                           Sci(kBatchRtol * unit) + ", output scale " + Sci(scale) + ")");
    }
  }
}

}  // namespace cvdeploy::model
