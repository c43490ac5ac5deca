// SPDX-License-Identifier: Apache-2.0
#include <algorithm>
#include <chrono>

#include "cvdeploy/eval.h"
#include "cvdeploy/image.h"

namespace cvdeploy {

Validation ValidateModel(const Predictor& predictor, const Dataset& dataset,
                         const PredictOptions& options, const std::function<void()>& step,
                         uint64_t max_pixels,
                         const std::function<void(const LabelledImage&, const Result&)>& on_result,
                         cv::Size decode_target) {
  using Clock = std::chrono::steady_clock;
  const ModelMeta& meta = predictor.meta();
  Evaluator evaluator(meta.names, meta.task);
  StageTimes sum;
  for (const LabelledImage& item : dataset.images) {
    const auto t0 = Clock::now();
    cv::Size original;
    const cv::Mat image = ReadImageForModel(item.image_path, decode_target, &original, max_pixels);
    const double decode = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    Result r = predictor.Predict(image, options);
    if (original != image.size()) RescaleResult(r, original);
    if (on_result) on_result(item, r);
    evaluator.Add(r, item.labels, original.width, original.height);
    sum.decode += decode;
    sum.preprocess += r.speed_ms.preprocess;
    sum.inference += r.speed_ms.inference;
    sum.postprocess += r.speed_ms.postprocess;
    if (step) step();
  }
  const double n = static_cast<double>(std::max<size_t>(1, dataset.images.size()));
  Validation v;
  v.report = evaluator.Compute();
  v.mean_ms = {sum.decode / n, sum.preprocess / n, sum.inference / n, sum.postprocess / n};
  return v;
}

}  // namespace cvdeploy
