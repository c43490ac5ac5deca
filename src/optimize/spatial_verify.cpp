// SPDX-License-Identifier: Apache-2.0
// Proof by execution that a graph whose height and width were made dynamic computes what the
// original computed at the export size, and runs with consistent output shapes at others.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>

#include "backends/backend.h"
#include "cvdeploy/error.h"
#include "optimize/spatial_edit.h"

namespace cvdeploy::optimize {
namespace {

// At the export size the rewritten graph runs the same float operations on the same values
// (the grid and strides are small integers, exact in float32): measured 0 on every sample
// model. 1e-4 is the contract of `convert --dynamic-shape`.
constexpr double kExportTolerance = 1e-4;
// Sizes tried besides the export's: Ultralytics' rect letterboxes of a 4:3 photo and a 16:9
// frame at 640, and a small square.
constexpr int64_t kOtherSizes[][2] = {{480, 640}, {384, 640}, {320, 320}};

Error Fail(const std::string& name, const std::string& reason) {
  return BadInput(name + ": cannot make height/width dynamic: " + reason);
}

std::string IntsText(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s.append(", ");
    s.append(std::to_string(v[i]));
  }
  return s + "]";
}

struct HostTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

std::vector<HostTensor> Run(const backends::Backend& session, const std::string& input,
                            const std::vector<int64_t>& shape, const std::vector<float>& values,
                            const std::string& name) {
  std::vector<NamedTensorView> inputs{
      {input, TensorView(DataType::kFloat32, shape, values.data())}};
  std::vector<HostTensor> out;
  session.RunNamed(inputs, {}, [&](const std::vector<backends::OutputView>& views) {
    for (const backends::OutputView& v : views) {
      if (v.tensor.empty() && v.tensor.elements() > 0) {
        throw Fail(name, "cannot verify: output '" + v.name +
                             "' has an element type the check does not read");
      }
      const float* data = v.tensor.Data<float>();
      out.push_back(
          {v.name, v.tensor.shape(), std::vector<float>(data, data + v.tensor.elements())});
    }
  });
  return out;
}

std::vector<float> RandomImage(const std::vector<int64_t>& shape, uint32_t seed) {
  size_t count = 1;
  for (int64_t d : shape) count *= static_cast<size_t>(d);
  std::vector<float> v(count);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(0.f, 1.f);
  for (float& x : v) x = uniform(rng);
  return v;
}

int64_t AnchorCount(const DynamicShapeReport& r, int64_t h, int64_t w) {
  int64_t n = 0;
  for (int64_t s : r.strides) n += ((h + s - 1) / s) * ((w + s - 1) / s);
  return n;
}

// The shape an output of the export size `ref` must have at h x w: the anchor axis follows
// the anchor count, a rank-4 map (segment prototypes) follows the input at its scale.
std::vector<int64_t> ExpectedShape(const DynamicShapeReport& r, std::vector<int64_t> ref, int64_t h,
                                   int64_t w) {
  for (int64_t& d : ref) {
    if (d == r.export_anchors) d = AnchorCount(r, h, w);
  }
  if (ref.size() == 4 && ref[2] > 0 && ref[3] > 0 && r.export_height % ref[2] == 0 &&
      r.export_width % ref[3] == 0 && r.export_height / ref[2] == r.export_width / ref[3]) {
    const int64_t scale = r.export_height / ref[2];
    ref[2] = h / scale, ref[3] = w / scale;
  }
  return ref;
}

}  // namespace

void VerifyDynamicShape(const std::vector<uint8_t>& original, const std::vector<uint8_t>& converted,
                        const std::string& name, DynamicShapeReport& report) {
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
  const TensorInfo& in = before->Info().inputs.at(0);
  std::vector<int64_t> shape = in.shape;
  if (shape.size() != 4) throw Fail(name, "cannot verify: the input is not rank 4");
  if (shape[0] < 0) shape[0] = 1;
  const std::vector<float> image = RandomImage(shape, 20261204u);

  std::vector<HostTensor> ref, out;
  try {
    ref = Run(*before, in.name, shape, image, name);
  } catch (const backends::EngineError& e) {
    throw Fail(name, "ONNX Runtime cannot run the original model: " + e.engine_message());
  }
  try {
    out = Run(*after, in.name, shape, image, name);
  } catch (const backends::EngineError& e) {
    throw Fail(name, "ONNX Runtime cannot run the converted graph at the export size: " +
                         e.engine_message());
  }
  report.tolerance = kExportTolerance;
  report.max_diff_at_export = 0;
  report.max_abs_output = 0;
  for (size_t k = 0; k < ref.size(); ++k) {
    if (k >= out.size() || out[k].shape != ref[k].shape) {
      throw Fail(name, "output '" + ref[k].name + "' of the converted graph is " +
                           (k < out.size() ? IntsText(out[k].shape) : std::string("missing")) +
                           " at the export size, the original's is " + IntsText(ref[k].shape));
    }
    for (size_t i = 0; i < ref[k].values.size(); ++i) {
      const double a = ref[k].values[i], b = out[k].values[i];
      report.max_abs_output = std::max(report.max_abs_output, std::fabs(a));
      const double diff = std::fabs(a - b);
      report.max_diff_at_export = std::isfinite(diff) ? std::max(report.max_diff_at_export, diff)
                                                      : std::numeric_limits<double>::infinity();
    }
  }
  if (!(report.max_diff_at_export <= kExportTolerance)) {
    char buf[200];
    std::snprintf(buf, sizeof(buf),
                  "at the export size the converted graph differs from the original by up to "
                  "%.3g (allowed %.1g)",
                  report.max_diff_at_export, kExportTolerance);
    throw Fail(name, buf);
  }

  report.other_sizes.clear();
  for (const auto& hw : kOtherSizes) {
    std::vector<int64_t> s = shape;
    s[2] = hw[0], s[3] = hw[1];
    try {
      out = Run(*after, in.name, s, RandomImage(s, 7u), name);
    } catch (const backends::EngineError& e) {
      throw Fail(name, "ONNX Runtime cannot run the converted graph at " + std::to_string(hw[0]) +
                           "x" + std::to_string(hw[1]) + ": " + e.engine_message());
    }
    DynamicShapeRun run{hw[0], hw[1], {}};
    for (size_t k = 0; k < ref.size(); ++k) {
      const std::vector<int64_t> expected = ExpectedShape(report, ref[k].shape, hw[0], hw[1]);
      if (k >= out.size() || out[k].shape != expected) {
        throw Fail(name, "output '" + ref[k].name + "' is " +
                             (k < out.size() ? IntsText(out[k].shape) : std::string("missing")) +
                             " at " + std::to_string(hw[0]) + "x" + std::to_string(hw[1]) +
                             ", expected " + IntsText(expected));
      }
      for (float v : out[k].values) {
        if (!std::isfinite(v)) {
          throw Fail(name, "output '" + ref[k].name + "' has non-finite values at " +
                               std::to_string(hw[0]) + "x" + std::to_string(hw[1]));
        }
      }
      run.outputs.push_back(ref[k].name + " " + IntsText(out[k].shape));
    }
    report.other_sizes.push_back(std::move(run));
  }
}

}  // namespace cvdeploy::optimize
