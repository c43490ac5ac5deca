// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/predictor.h"

#include <chrono>
#include <opencv2/imgproc.hpp>

#include "backends/backend.h"
#include "core/file_util.h"
#include "core/workspace_pool.h"
#include "cvdeploy/error.h"
#include "model/model_info.h"
#include "vision/letterbox.h"
#include "vision/postprocess.h"

namespace cvdeploy {
namespace {

using Clock = std::chrono::steady_clock;
double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Scratch of one in-flight call.
struct Workspace {
  std::vector<float> input;
  cv::Mat resize_scratch, converted;
  std::vector<backends::Tensor> outputs;
  std::vector<vision::LetterboxInfo> letterboxes;
  std::unique_ptr<backends::RunContext> context;
};

void ValidateOptions(const PredictOptions& o) {
  if (!(o.conf >= 0.f && o.conf <= 1.f)) {
    throw InvalidArgument("conf must be in [0, 1], got " + std::to_string(o.conf));
  }
  if (!(o.iou >= 0.f && o.iou <= 1.f)) {
    throw InvalidArgument("iou must be in [0, 1], got " + std::to_string(o.iou));
  }
  if (o.max_det <= 0)
    throw InvalidArgument("max_det must be positive, got " + std::to_string(o.max_det));
}

}  // namespace

struct Predictor::Impl {
  ModelInfo info;
  std::unique_ptr<backends::Backend> backend;
  std::string provider;
  core::Pool<Workspace> pool{[this] {
    auto ws = std::make_unique<Workspace>();
    ws->context = backend->NewContext();
    return ws;
  }};

  // Converts to 8-bit BGR if needed; returns the image to letterbox.
  const cv::Mat& AsBgr(const cv::Mat& image, cv::Mat& converted) const {
    if (image.empty()) throw InvalidArgument("empty image");
    if (image.depth() != CV_8U) throw InvalidArgument("image must be 8-bit per channel");
    if (image.channels() == 3) return image;
    if (image.channels() == 1) {
      cv::cvtColor(image, converted, cv::COLOR_GRAY2BGR);
    } else if (image.channels() == 4) {
      cv::cvtColor(image, converted, cv::COLOR_BGRA2BGR);
    } else {
      throw InvalidArgument("image has " + std::to_string(image.channels()) + " channels");
    }
    return converted;
  }

  // Runs images[begin, end) as one engine call of batch `slots` (>= end - begin).
  void RunChunk(const std::vector<cv::Mat>& images, size_t begin, size_t end, int slots,
                const PredictOptions& options, Workspace& ws, std::vector<Result>& results) const {
    const ModelMeta& meta = info.meta;
    const size_t n = end - begin;
    auto t0 = Clock::now();
    // Rectangular (stride-aligned) input only for a single image on a dynamic-size model.
    const int auto_stride = (meta.dynamic && slots == 1) ? meta.stride : 0;
    ws.letterboxes.resize(n);
    for (size_t i = 0; i < n; ++i) {
      ws.letterboxes[i] = vision::ComputeLetterbox(
          images[begin + i].size(), cv::Size(meta.imgsz_w, meta.imgsz_h), auto_stride);
    }
    const cv::Size dst = ws.letterboxes[0].dst;
    const size_t per_image = 3 * static_cast<size_t>(dst.area());
    ws.input.resize(per_image * slots);
    for (size_t i = 0; i < n; ++i) {
      const cv::Mat& bgr = AsBgr(images[begin + i], ws.converted);
      vision::LetterboxToTensor(bgr, ws.letterboxes[i], ws.input.data() + i * per_image,
                                ws.resize_scratch);
    }
    // Unused slots of a fixed-batch model are zero-filled; their outputs are ignored.
    std::fill(ws.input.begin() + static_cast<long>(n * per_image), ws.input.end(), 0.f);
    const double preprocess = MsSince(t0);

    auto t1 = Clock::now();
    backend->Run(*ws.context, ws.input.data(), {slots, 3, dst.height, dst.width}, ws.outputs);
    const double inference = MsSince(t1);

    std::vector<vision::TensorView> views;
    views.reserve(ws.outputs.size());
    for (const auto& t : ws.outputs) views.push_back({t.data.data(), t.shape});
    for (size_t i = 0; i < n; ++i) {
      auto t2 = Clock::now();
      Result& r = results[begin + i];
      r.width = images[begin + i].cols;
      r.height = images[begin + i].rows;
      r.task = meta.task;
      r.detections =
          vision::Postprocess(views, static_cast<int>(i), meta, ws.letterboxes[i], options);
      r.speed_ms.preprocess = preprocess / n;
      r.speed_ms.inference = inference / n;
      r.speed_ms.postprocess = MsSince(t2);
    }
  }
};

Predictor::Predictor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Predictor::~Predictor() = default;

std::unique_ptr<Predictor> Predictor::LoadFromMemory(const std::vector<uint8_t>& bytes,
                                                     const std::string& name,
                                                     const SessionOptions& options) {
  if (options.intra_op_threads < 0) {
    throw InvalidArgument("threads must be >= 0, got " + std::to_string(options.intra_op_threads));
  }
  auto impl = std::make_unique<Impl>();
  impl->info = model::ParseModelInfo(bytes, name, options);
  backends::BackendOptions bo;
  bo.device = options.device;
  bo.intra_op_threads = options.intra_op_threads;
  impl->backend = backends::CreateOrtBackend(bytes, impl->info, bo);
  impl->provider = impl->backend->Provider();
  return std::unique_ptr<Predictor>(new Predictor(std::move(impl)));
}

std::unique_ptr<Predictor> Predictor::Load(const std::string& path, const SessionOptions& options) {
  return LoadFromMemory(core::ReadFileBytes(path), path, options);
}

const ModelInfo& Predictor::info() const { return impl_->info; }
const std::string& Predictor::provider() const { return impl_->provider; }

Result Predictor::Predict(const cv::Mat& image, const PredictOptions& options) const {
  return PredictBatch({image}, options).front();
}

std::vector<Result> Predictor::PredictBatch(const std::vector<cv::Mat>& images,
                                            const PredictOptions& options) const {
  ValidateOptions(options);
  std::vector<Result> results(images.size());
  if (images.empty()) return results;
  auto ws = impl_->pool.Acquire();
  const int model_batch = impl_->info.meta.batch;
  // Fixed batch B: chunks of B, the last one zero-padded. Dynamic batch: one call; a
  // dynamic-size model then letterboxes every image to the full imgsz so shapes agree.
  const size_t chunk = model_batch > 0 ? static_cast<size_t>(model_batch) : images.size();
  for (size_t begin = 0; begin < images.size(); begin += chunk) {
    const size_t end = std::min(images.size(), begin + chunk);
    const int slots = model_batch > 0 ? model_batch : static_cast<int>(end - begin);
    impl_->RunChunk(images, begin, end, slots, options, *ws, results);
  }
  return results;
}

ModelInfo ReadModelInfo(const std::string& path) {
  return model::ParseModelInfo(core::ReadFileBytes(path), path, SessionOptions{});
}

}  // namespace cvdeploy
