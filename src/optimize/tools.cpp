// SPDX-License-Identifier: Apache-2.0
// The public model tools of cvdeploy/tools.h on top of the graph rewrites of this module:
// each rewrites, verifies by running the result, and returns {bytes, report}.
#include "cvdeploy/tools.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>

#include "cvdeploy/error.h"
#include "cvdeploy/predictor.h"
#include "optimize/fp16.h"
#include "optimize/graph_edit.h"
#include "optimize/prune.h"
#include "optimize/spatial_edit.h"

namespace cvdeploy {
namespace {

// The converted model may differ from the original by float16 rounding; a broken rewrite
// (wrong types, dropped nodes) moves outputs by the order of their own scale.
constexpr double kFp16VerifyRtol = 0.05;

std::string Format(const char* format, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), format, args...);
  return buf;
}

// Runs both models on one pseudo-random image-like input with ONNX Runtime (CPU) and returns
// the largest difference per output. Throws Error(kRuntime) when the converted model does
// not run, changes an output's shape, or differs beyond float16 rounding.
std::vector<OutputDifference> VerifyFloat16(const std::vector<uint8_t>& original,
                                            const std::vector<uint8_t>& converted,
                                            const std::string& name) {
  auto before = Predictor::LoadFromMemory(original, name);
  std::unique_ptr<Predictor> after;
  try {
    after = Predictor::LoadFromMemory(converted, name + " (float16)");
  } catch (const Error& e) {
    throw RuntimeError(std::string("fp16: the converted model does not load: ") + e.what());
  }
  std::vector<int64_t> shape = before->info().inputs.at(0).shape;
  const ModelMeta& meta = before->meta();
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] <= 0) shape[d] = d == 0 ? 1 : (d == 2 ? meta.imgsz_h : meta.imgsz_w);
  }
  size_t count = 1;
  for (int64_t d : shape) count *= static_cast<size_t>(d);
  std::vector<float> input(count);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (float& v : input) v = uniform(rng);
  const TensorView view(DataType::kFloat32, shape, input.data());
  const std::vector<Predictor::Output> ref = before->Infer(view);
  const std::vector<Predictor::Output> out = after->Infer(view);
  std::vector<OutputDifference> diffs;
  for (size_t k = 0; k < ref.size(); ++k) {
    OutputDifference d{ref[k].name};
    if (k >= out.size() || out[k].tensor.shape() != ref[k].tensor.shape()) {
      throw RuntimeError("fp16: output '" + ref[k].name +
                         "' of the converted model has another shape than the original");
    }
    const float* r = ref[k].tensor.Data<float>();
    const float* o = out[k].tensor.Data<float>();
    for (size_t i = 0; i < ref[k].tensor.elements(); ++i) {
      d.max_abs = std::max(d.max_abs, std::fabs(static_cast<double>(r[i])));
      const double diff = std::fabs(static_cast<double>(o[i]) - r[i]);
      d.max_diff = std::isfinite(diff) ? std::max(d.max_diff, diff) : INFINITY;
    }
    if (!(d.max_diff <= kFp16VerifyRtol * d.max_abs)) {
      throw RuntimeError(
          Format("fp16: output '%s' of the converted model differs from the original by up to %.3g "
                 "(largest |output| %.3g): more than float16 rounding explains",
                 d.name.c_str(), d.max_diff, d.max_abs));
    }
    diffs.push_back(d);
  }
  return diffs;
}

}  // namespace

DynamicBatchResult MakeBatchDynamic(const std::vector<uint8_t>& model_bytes,
                                    const std::string& name) {
  DynamicBatchResult result;
  result.bytes = optimize::MakeBatchDynamic(model_bytes, name, &result.report);
  return result;
}

DynamicShapeResult MakeShapeDynamic(const std::vector<uint8_t>& model_bytes,
                                    const std::string& name) {
  DynamicShapeResult result;
  result.bytes = optimize::MakeSpatialDynamic(model_bytes, name, &result.report);
  return result;
}

Fp16Result ConvertToFloat16(const std::vector<uint8_t>& model_bytes, const std::string& name,
                            const Fp16Options& options) {
  Fp16Result result;
  result.bytes = optimize::ConvertToFloat16(model_bytes, name, options, &result.report);
  result.report.verified = VerifyFloat16(model_bytes, result.bytes, name);
  return result;
}

PruneResult Prune(const std::vector<uint8_t>& model_bytes, const std::string& name,
                  const PruneOptions& options) {
  PruneResult result;
  PruneVerification verification;
  result.bytes = optimize::PruneModel(model_bytes, name, options, &result.report, &verification);
  result.report.verification = std::move(verification);
  return result;
}

}  // namespace cvdeploy
