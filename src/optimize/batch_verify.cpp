// SPDX-License-Identifier: Apache-2.0
#include "optimize/batch_verify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>

#include "backends/backend.h"
#include "cvdeploy/error.h"

namespace cvdeploy::optimize {
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

struct InputSpec {
  std::string name;
  std::vector<int64_t> item_shape;  // dims after the batch
  size_t item_size = 1;
};

struct HostTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<double> values;
};

using Batch = std::vector<std::vector<float>>;  // one flat buffer per graph input

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

// Inputs as the converted session sees them (a float16 one gets the values converted by the
// backend); a dynamic non-batch axis gets 64, a multiple of every YOLO stride.
std::vector<InputSpec> InputSpecs(const backends::Backend& session, const std::string& name) {
  const std::vector<TensorInfo>& inputs = session.Info().inputs;
  std::vector<InputSpec> specs(inputs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    specs[i].name = inputs[i].name;
    if (inputs[i].type != "float32" && inputs[i].type != "float16") {
      throw Fail(name, "cannot verify: input '" + specs[i].name + "' is not a float tensor");
    }
    const std::vector<int64_t>& shape = inputs[i].shape;
    for (size_t d = 1; d < shape.size(); ++d) {
      specs[i].item_shape.push_back(shape[d] > 0 ? shape[d] : 64);
      specs[i].item_size *= static_cast<size_t>(specs[i].item_shape.back());
    }
  }
  return specs;
}

// Every output of `session` on `batch_values` at `batch`, widened to double.
std::vector<HostTensor> Run(const backends::Backend& session, const std::vector<InputSpec>& specs,
                            const Batch& batch_values, int batch, const std::string& name) {
  std::vector<NamedTensorView> inputs(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    std::vector<int64_t> shape = specs[i].item_shape;
    shape.insert(shape.begin(), batch);
    inputs[i] = {specs[i].name,
                 TensorView(DataType::kFloat32, std::move(shape), batch_values[i].data())};
  }
  std::vector<HostTensor> out;
  session.RunNamed(inputs, {}, [&](const std::vector<backends::OutputView>& views) {
    for (const backends::OutputView& v : views) {
      if (v.tensor.empty() && v.tensor.elements() > 0) {
        throw Fail(name, "cannot verify: output '" + v.name +
                             "' has an element type the check does not read");
      }
      const float* data = v.tensor.Data<float>();
      out.push_back(
          {v.name, v.tensor.shape(), std::vector<double>(data, data + v.tensor.elements())});
    }
  });
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
  backends::BackendOptions so;
  so.intra_op_threads = 1;  // deterministic, and never competing with the caller's threads
  std::unique_ptr<backends::Backend> before, after;
  try {
    before = backends::CreateOrtGraphBackend(original, name, so);
  } catch (const backends::EngineError& e) {
    throw Fail(name, "ONNX Runtime cannot load the original model: " + e.engine_message());
  }
  try {
    after = backends::CreateOrtGraphBackend(converted, name, so);
  } catch (const backends::EngineError& e) {
    throw Fail(name, "ONNX Runtime cannot load the converted graph: " + e.engine_message());
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
  } catch (const backends::EngineError& e) {
    throw Fail(name, "ONNX Runtime cannot run the original model: " + e.engine_message());
  }
  try {
    out_mixed = Run(*after, specs, mixed, kVerifyBatch, name);
    // Identical items give identical batch-wide quantization scales: this run isolates the
    // rewrite from the batch-mate effect of DynamicQuantizeLinear.
    if (scales_span_batch) out_same = Run(*after, specs, same, 2, name);
  } catch (const backends::EngineError& e) {
    throw Fail(name, "ONNX Runtime cannot run the converted graph at batch " +
                         std::to_string(kVerifyBatch) + ": " + e.engine_message());
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

}  // namespace cvdeploy::optimize
