// SPDX-License-Identifier: Apache-2.0
// Shared by the TorchGraph tests: bus.jpg letterboxed by the project's letterbox, ONNX
// Runtime runs through the project's graph backend, model bytes cached per process.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/ort/ort_env.h"
#include "cvdeploy/file.h"
#include "cvdeploy/quantize.h"
#include "model/onnx_model.h"
#include "support/assets.h"
#include "vision/letterbox.h"

namespace cvdeploy::testing {

// bus.jpg letterboxed to h x w: [1, 3, h, w] float in [0, 1].
inline torch::Tensor BusImage(int64_t h, int64_t w) {
  cv::Mat bgr = cv::imread(Asset("images/bus.jpg"), cv::IMREAD_COLOR);
  if (bgr.empty()) throw std::runtime_error("cannot read bus.jpg");
  vision::LetterboxInfo lb =
      vision::ComputeLetterbox(bgr.size(), cv::Size(static_cast<int>(w), static_cast<int>(h)));
  torch::Tensor x = torch::empty({1, 3, h, w});
  cv::Mat scratch;
  vision::LetterboxToTensor(bgr, lb, x.data_ptr<float>(), scratch);
  return x;
}

inline const std::vector<uint8_t>& ModelBytes(const std::string& file) {
  static std::map<std::string, std::vector<uint8_t>> cache;
  auto it = cache.find(file);
  if (it == cache.end()) it = cache.emplace(file, ReadFileBytes(Asset("models/" + file))).first;
  return it->second;
}

// Runs `bytes` in ONNX Runtime on one float input; returns the named outputs as tensors.
inline std::map<std::string, torch::Tensor> RunOrt(const std::vector<uint8_t>& bytes,
                                                   const std::string& input, const torch::Tensor& x,
                                                   const std::vector<std::string>& outputs) {
  backends::BackendOptions options;
  options.intra_op_threads = 2;
  auto backend = backends::CreateOrtGraphBackend(bytes, "ort", options);
  torch::Tensor c = x.to(torch::kFloat).contiguous();
  std::vector<int64_t> shape(c.sizes().begin(), c.sizes().end());
  std::vector<NamedTensorView> in{{input, TensorView(DataType::kFloat32, shape, c.data_ptr())}};
  std::map<std::string, torch::Tensor> result;
  backend->RunNamed(in, outputs, [&](const std::vector<backends::OutputView>& views) {
    for (const auto& v : views) {
      const auto& s = v.tensor.shape();
      result[v.name] = torch::from_blob(const_cast<float*>(v.tensor.Data<float>()),
                                        std::vector<int64_t>(s.begin(), s.end()), torch::kFloat)
                           .clone();
    }
  });
  return result;
}

// The same with every ONNX Runtime graph optimization off: each QuantizeLinear,
// DequantizeLinear and Conv runs as written (float), not fused into integer kernels.
inline std::map<std::string, torch::Tensor> RunOrtUnfused(const std::vector<uint8_t>& bytes,
                                                          const std::string& input,
                                                          const torch::Tensor& x,
                                                          const std::vector<std::string>& outputs) {
  Ort::SessionOptions options = backends::ort::SessionPolicy(2);
  options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_DISABLE_ALL);
  Ort::Session session(backends::ort::Environment(), bytes.data(), bytes.size(), options);
  torch::Tensor c = x.to(torch::kFloat).contiguous();
  std::vector<int64_t> shape(c.sizes().begin(), c.sizes().end());
  Ort::Value in =
      Ort::Value::CreateTensor<float>(backends::ort::CpuMemory(), c.data_ptr<float>(),
                                      static_cast<size_t>(c.numel()), shape.data(), shape.size());
  const char* in_name = input.c_str();
  std::vector<const char*> out_names;
  for (const auto& o : outputs) out_names.push_back(o.c_str());
  auto values =
      session.Run(Ort::RunOptions{nullptr}, &in_name, &in, 1, out_names.data(), out_names.size());
  std::map<std::string, torch::Tensor> result;
  for (size_t i = 0; i < outputs.size(); ++i) {
    auto info = values[i].GetTensorTypeAndShapeInfo();
    result[outputs[i]] =
        torch::from_blob(values[i].GetTensorMutableData<float>(), info.GetShape(), torch::kFloat)
            .clone();
  }
  return result;
}

inline double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.detach().to(torch::kDouble) - b.detach().to(torch::kDouble)).abs().max().item<double>();
}

// The float bound of the forward checks. Values up to 1 in magnitude (scores, probabilities,
// mask prototypes mostly) must be within 1e-3 of ONNX Runtime. Box and keypoint coordinates
// are pixels up to ~640, where float32 rounding alone is larger than 1e-3: measured against
// the exact result (the interpreter in float64), ORT's float32 error is 0.4e-3..1.6e-3 px and
// the interpreter's 0.8e-3..3.5e-3 px (libtorch's convolution and activation kernels round
// differently; disabling oneDNN does not change it). So every element must be within
// 1e-3 + 1e-5 x the output's largest magnitude (about 80 float32 ulps of that magnitude:
// 7.4e-3 px at 640), and the interpreter's float32 error is printed beside ORT's.
// Returns max |ours - ort|.
inline double ExpectCloseToOrt(const torch::Tensor& ours, const torch::Tensor& ort,
                               const torch::Tensor& exact, const std::string& label) {
  torch::Tensor d = (ours.detach().to(torch::kDouble) - ort.to(torch::kDouble)).abs();
  const double ort_error = (ort.to(torch::kDouble) - exact).abs().max().item<double>();
  const double our_error = (ours.detach().to(torch::kDouble) - exact).abs().max().item<double>();
  const double small = d.masked_select(ort.abs() <= 1).max().item<double>();
  const double all = d.max().item<double>(), range = ort.abs().max().item<double>();
  std::printf(
      "%s: max |interpreter - ORT| %.3g (values <= 1: %.3g; largest |value| %.3g); "
      "float32 error against float64: interpreter %.3g, ORT %.3g\n",
      label.c_str(), all, small, range, our_error, ort_error);
  EXPECT_LE(small, 1e-3) << label;
  EXPECT_LE(all, 1e-3 + 1e-5 * range) << label;
  EXPECT_LE(our_error, 1e-3 + 1e-5 * range) << label;
  return all;
}

// Quantiles of |a - b| over all elements.
struct DiffStats {
  double within_1e3 = 0;  // fraction of elements with |a - b| <= 1e-3
  double p99 = 0, p999 = 0, max = 0;
};

inline DiffStats Stats(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor d = (a.detach().to(torch::kDouble) - b.detach().to(torch::kDouble)).abs().flatten();
  torch::Tensor sorted = std::get<0>(d.sort());
  const int64_t n = sorted.numel();
  return {(d <= 1e-3).to(torch::kDouble).mean().item<double>(), sorted[n * 99 / 100].item<double>(),
          sorted[n * 999 / 1000].item<double>(), sorted[n - 1].item<double>()};
}

// The model with intermediate tensors `names` added as graph outputs (typed by ONNX shape
// inference), so that ONNX Runtime returns them.
inline std::vector<uint8_t> WithOutputs(const std::vector<uint8_t>& bytes,
                                        const std::vector<std::string>& names) {
  onnx::ModelProto m = model::ParseModel(bytes, "model");
  model::InferShapes(m);
  for (const std::string& name : names) {
    bool found = false;
    for (const auto& vi : m.graph().value_info()) {
      if (vi.name() != name) continue;
      *m.mutable_graph()->add_output() = vi;
      found = true;
    }
    if (!found) throw std::runtime_error("no value_info for " + name);
  }
  return model::SerializeModel(m);
}

// A directory holding symbolic links to the first n coco128 images (calibration).
inline std::string CalibrationDir(size_t n) {
  std::string dir = MakeTempDir("torch_graph_calib");
  for (const std::string& stem : CocoStems(n))
    std::filesystem::create_symlink(Asset("datasets/coco128/images/" + stem + ".jpg"),
                                    std::filesystem::path(dir) / (stem + ".jpg"));
  return dir;
}

}  // namespace cvdeploy::testing

namespace cvdeploy::testing {

// quantize's QDQ model of yolov8n-dq (4 calibration images), made once per process.
inline const std::vector<uint8_t>& QuantizedYolov8n() {
  static const std::vector<uint8_t> bytes = [] {
    QuantizeOptions options;
    options.calib_dir = CalibrationDir(4);
    options.calib_size = 4;
    return Quantize(ModelBytes("yolov8n-dq.onnx"), "yolov8n-dq", options).bytes;
  }();
  return bytes;
}

}  // namespace cvdeploy::testing
