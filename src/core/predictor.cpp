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

static_assert(kDefaultMaxModelBytes == core::kDefaultMaxModelBytes);
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
  std::vector<vision::TensorView> views;
  std::unique_ptr<backends::RunContext> context;
};

void ValidateOptions(const PredictOptions& o, const ModelMeta& meta) {
  if (!(o.conf >= 0.f && o.conf <= 1.f)) {
    throw InvalidArgument("conf must be in [0, 1], got " + std::to_string(o.conf));
  }
  if (!(o.iou >= 0.f && o.iou <= 1.f)) {
    throw InvalidArgument("iou must be in [0, 1], got " + std::to_string(o.iou));
  }
  if (o.max_det <= 0)
    throw InvalidArgument("max_det must be positive, got " + std::to_string(o.max_det));
  if (o.imgsz < 0) throw InvalidArgument("imgsz must be positive, got " + std::to_string(o.imgsz));
  if (o.imgsz == 0) return;
  if (!meta.dynamic && (o.imgsz != meta.imgsz_h || o.imgsz != meta.imgsz_w)) {
    throw InvalidArgument("imgsz " + std::to_string(o.imgsz) + " differs from the model's fixed " +
                          std::to_string(meta.imgsz_h) + "x" + std::to_string(meta.imgsz_w) +
                          " input");
  }
  if (meta.dynamic && o.imgsz % meta.stride != 0) {
    throw InvalidArgument("imgsz " + std::to_string(o.imgsz) + " is not a multiple of the stride " +
                          std::to_string(meta.stride));
  }
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

  // Letterboxes images[0, n) into ws.input for an engine call of batch `slots` (>= n).
  // Returns the input shape.
  // `imgsz` 0: the model's size.
  std::vector<int64_t> Preprocess(const cv::Mat* images, size_t n, int slots, Workspace& ws,
                                  int imgsz = 0) const {
    const ModelMeta& meta = info.meta;
    // Rectangular (stride-aligned) input only for a single image on a dynamic-size model.
    const int auto_stride = (meta.dynamic && slots == 1) ? meta.stride : 0;
    const cv::Size target =
        imgsz > 0 ? cv::Size(imgsz, imgsz) : cv::Size(meta.imgsz_w, meta.imgsz_h);
    ws.letterboxes.resize(n);
    for (size_t i = 0; i < n; ++i) {
      ws.letterboxes[i] = vision::ComputeLetterbox(images[i].size(), target, auto_stride);
    }
    const cv::Size dst = ws.letterboxes[0].dst;
    const size_t per_image = 3 * static_cast<size_t>(dst.area());
    ws.input.resize(per_image * slots);
    for (size_t i = 0; i < n; ++i) {
      const cv::Mat& bgr = AsBgr(images[i], ws.converted);
      vision::LetterboxToTensor(bgr, ws.letterboxes[i], ws.input.data() + i * per_image,
                                ws.resize_scratch, backend->Threads());
    }
    // Unused slots of a fixed-batch model are zero-filled; their outputs are ignored.
    std::fill(ws.input.begin() + static_cast<long>(n * per_image), ws.input.end(), 0.f);
    return {slots, 3, dst.height, dst.width};
  }

  // Runs images[0, n) as one engine call of batch `slots` (>= n) into results[0, n), image i
  // postprocessed with options[i] (all with the same imgsz).
  void RunChunk(const cv::Mat* images, size_t n, int slots, const PredictOptions* options,
                Workspace& ws, Result* results) const {
    auto t0 = Clock::now();
    const std::vector<int64_t> shape = Preprocess(images, n, slots, ws, options[0].imgsz);
    auto t1 = Clock::now();
    backend->Run(*ws.context, ws.input.data(), shape, ws.outputs);
    auto t2 = Clock::now();
    const double preprocess = std::chrono::duration<double, std::milli>(t1 - t0).count();
    const double inference = std::chrono::duration<double, std::milli>(t2 - t1).count();

    ws.views.clear();
    for (const auto& t : ws.outputs) ws.views.push_back({t.data.data(), t.shape});
    for (size_t i = 0; i < n; ++i) {
      auto t3 = Clock::now();
      Result& r = results[i];
      r.width = images[i].cols;
      r.height = images[i].rows;
      r.task = info.meta.task;
      r.detections = vision::Postprocess(ws.views, static_cast<int>(i), info.meta,
                                         ws.letterboxes[i], options[i]);
      r.speed_ms.preprocess = preprocess / n;
      r.speed_ms.inference = inference / n;
      r.speed_ms.postprocess = MsSince(t3);
    }
  }

  int SlotsFor(size_t n) const {
    return info.meta.batch > 0 ? info.meta.batch : static_cast<int>(n);
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
  bo.profile_prefix = options.profile_prefix;
  impl->backend = backends::CreateOrtBackend(bytes, impl->info, bo);
  impl->provider = impl->backend->Provider();
  return std::unique_ptr<Predictor>(new Predictor(std::move(impl)));
}

std::unique_ptr<Predictor> Predictor::Load(const std::string& path, const SessionOptions& options) {
  return LoadFromMemory(core::ReadModelBytes(path, options.max_model_bytes), path, options);
}

const ModelInfo& Predictor::info() const { return impl_->info; }
const std::string& Predictor::provider() const { return impl_->provider; }
std::string Predictor::engine_version() const { return impl_->backend->Version(); }
int Predictor::threads() const { return impl_->backend->Threads(); }
std::string Predictor::EndProfiling() const { return impl_->backend->EndProfiling(); }

namespace {

class BareEngine : public EngineProbe {
 public:
  BareEngine(const Predictor::Impl& impl, std::vector<int64_t> shape, std::unique_ptr<Workspace> ws)
      : impl_(impl), shape_(std::move(shape)), ws_(std::move(ws)) {}
  double Run() override {
    auto t0 = Clock::now();
    impl_.backend->Run(*ws_->context, ws_->input.data(), shape_, ws_->outputs);
    return MsSince(t0);
  }

 private:
  const Predictor::Impl& impl_;
  std::vector<int64_t> shape_;
  std::unique_ptr<Workspace> ws_;
};

}  // namespace

std::unique_ptr<EngineProbe> Predictor::NewEngineProbe(const std::vector<cv::Mat>& images) const {
  if (images.empty()) throw InvalidArgument("engine probe needs at least one image");
  const int batch = impl_->info.meta.batch;
  if (batch > 0 && images.size() > static_cast<size_t>(batch)) {
    throw InvalidArgument("batch " + std::to_string(images.size()) +
                              " exceeds the model's fixed batch " + std::to_string(batch),
                          "batch");
  }
  auto ws = std::make_unique<Workspace>();
  ws->context = impl_->backend->NewContext();
  auto shape = impl_->Preprocess(images.data(), images.size(), impl_->SlotsFor(images.size()), *ws);
  return std::make_unique<BareEngine>(*impl_, std::move(shape), std::move(ws));
}

Result Predictor::Predict(const cv::Mat& image, const PredictOptions& options) const {
  ValidateOptions(options, impl_->info.meta);
  Result result;
  auto ws = impl_->pool.Acquire();
  impl_->RunChunk(&image, 1, impl_->SlotsFor(1), &options, *ws, &result);
  return result;
}

std::vector<Result> Predictor::PredictBatch(const std::vector<cv::Mat>& images,
                                            const PredictOptions& options) const {
  return PredictBatch(images, std::vector<PredictOptions>(images.size(), options));
}

std::vector<Result> Predictor::PredictBatch(const std::vector<cv::Mat>& images,
                                            const std::vector<PredictOptions>& options) const {
  if (options.size() != images.size()) {
    throw InvalidArgument("PredictBatch: " + std::to_string(images.size()) + " images but " +
                          std::to_string(options.size()) + " option sets");
  }
  for (const auto& o : options) {
    ValidateOptions(o, impl_->info.meta);
    if (o.imgsz != options[0].imgsz) throw InvalidArgument("a batch must use one imgsz");
  }
  std::vector<Result> results(images.size());
  if (images.empty()) return results;
  auto ws = impl_->pool.Acquire();
  const int model_batch = impl_->info.meta.batch;
  // Fixed batch B: chunks of B, the last one zero-padded. Dynamic batch: one call; a
  // dynamic-size model then letterboxes every image to the full imgsz so shapes agree.
  const size_t chunk = model_batch > 0 ? static_cast<size_t>(model_batch) : images.size();
  for (size_t begin = 0; begin < images.size(); begin += chunk) {
    const size_t n = std::min(images.size(), begin + chunk) - begin;
    impl_->RunChunk(images.data() + begin, n, impl_->SlotsFor(n), options.data() + begin, *ws,
                    results.data() + begin);
  }
  return results;
}

std::vector<OutputTensor> Predictor::Infer(const float* input,
                                           const std::vector<int64_t>& shape) const {
  const ModelMeta& meta = impl_->info.meta;
  auto dims = [&] {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
    return s + "]";
  };
  if (shape.size() != 4 || shape[1] != 3 || shape[0] < 1 || shape[2] < 1 || shape[3] < 1) {
    throw InvalidArgument("input shape " + dims() + " is not [B,3,H,W]");
  }
  if (!meta.dynamic && (shape[2] != meta.imgsz_h || shape[3] != meta.imgsz_w)) {
    throw InvalidArgument("input shape " + dims() + " does not match the model's input [B,3," +
                          std::to_string(meta.imgsz_h) + "," + std::to_string(meta.imgsz_w) + "]");
  }
  if (meta.batch > 0 && shape[0] != meta.batch) {
    throw InvalidArgument("input shape " + dims() + ": the model's batch axis is fixed at " +
                          std::to_string(meta.batch));
  }
  auto ws = impl_->pool.Acquire();
  impl_->backend->Run(*ws->context, input, shape, ws->outputs);
  std::vector<OutputTensor> outputs(ws->outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    outputs[i].name =
        i < impl_->info.outputs.size() ? impl_->info.outputs[i].name : "output" + std::to_string(i);
    outputs[i].shape = ws->outputs[i].shape;
    outputs[i].data = ws->outputs[i].data;
  }
  return outputs;
}

ModelInfo ReadModelInfo(const std::string& path, uint64_t max_model_bytes) {
  return model::ParseModelInfo(core::ReadModelBytes(path, max_model_bytes), path, SessionOptions{});
}

}  // namespace cvdeploy
