// SPDX-License-Identifier: Apache-2.0
// The Predictor's stages (Prepare, Run, Decode) and their compositions. This file is the one
// preprocessing implementation that feeds the engine.
#include "cvdeploy/predictor.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <opencv2/imgproc.hpp>

#include "backends/backend.h"
#include "cvdeploy/error.h"
#include "predictor/workspace_pool.h"
#include "vision/letterbox.h"
#include "vision/postprocess.h"

namespace cvdeploy {
namespace {

using Clock = std::chrono::steady_clock;
double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Scratch of one in-flight batch: the engine input, resize scratch, the engine's output
// buffers (IO-bound by the backend) and its run context. Reused across batches.
struct Workspace {
  Tensor input;
  cv::Mat resize_scratch, converted;
  std::vector<Tensor> outputs;    // float32; Backend::Run reshapes them in place
  std::vector<TensorView> views;  // Decode's per-call view list (reused)
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

// Converts to 8-bit BGR if needed; returns the image to letterbox.
const cv::Mat& AsBgr(const cv::Mat& image, cv::Mat& converted) {
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

// Checks one caller tensor against the model's input: [B, 3, H, W] float32, H and W the
// model's unless its spatial axes are dynamic.
void CheckInputTensor(const TensorView& t, const ModelMeta& meta) {
  const std::vector<int64_t>& shape = t.shape();
  if (t.dtype() != DataType::kFloat32) {
    throw InvalidArgument("input tensor is " + std::string(DataTypeName(t.dtype())) +
                          ", the engine input is float32");
  }
  if (shape.size() != 4 || shape[1] != 3 || shape[0] < 1 || shape[2] < 1 || shape[3] < 1) {
    throw InvalidArgument("input shape " + ShapeString(shape) + " is not [B,3,H,W]");
  }
  if (!meta.dynamic && (shape[2] != meta.imgsz_h || shape[3] != meta.imgsz_w)) {
    throw InvalidArgument("input shape " + ShapeString(shape) +
                          " does not match the model's input [B,3," + std::to_string(meta.imgsz_h) +
                          "," + std::to_string(meta.imgsz_w) + "]");
  }
}

}  // namespace

struct Batch::State {
  core::Pool<Workspace>::Lease ws;
  std::vector<Letterbox> letterboxes;
  size_t size = 0;
  std::vector<int64_t> shape;  // engine input shape
  double prepare_ms = 0, run_ms = 0;
  bool ran = false;
};

Batch::Batch(std::unique_ptr<State> state) : state_(std::move(state)) {}
Batch::Batch(Batch&&) noexcept = default;
Batch& Batch::operator=(Batch&&) noexcept = default;
Batch::~Batch() = default;
size_t Batch::size() const { return state_->size; }
TensorView Batch::input() const { return state_->ws->input.view(); }
const std::vector<Letterbox>& Batch::letterboxes() const { return state_->letterboxes; }
double Batch::prepare_ms() const { return state_->prepare_ms; }
double Batch::run_ms() const { return state_->run_ms; }

struct Predictor::Impl {
  Model model;
  std::unique_ptr<backends::Backend> backend;
  std::string provider;
  core::Pool<Workspace> pool{[this] {
    auto ws = std::make_unique<Workspace>();
    ws->context = backend->NewContext();
    return ws;
  }};

  explicit Impl(Model m) : model(std::move(m)) {}
  const ModelMeta& meta() const { return model.meta(); }
  int SlotsFor(size_t n) const { return meta().batch > 0 ? meta().batch : static_cast<int>(n); }
  std::unique_ptr<Batch::State> NewState() {
    return std::make_unique<Batch::State>(Batch::State{pool.Acquire(), {}, 0, {}, 0, 0, false});
  }
};

Predictor::Predictor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Predictor::~Predictor() = default;

std::unique_ptr<Predictor> Predictor::Create(const Model& model, const SessionOptions& options) {
  if (options.intra_op_threads < 0) {
    throw InvalidArgument("threads must be >= 0, got " + std::to_string(options.intra_op_threads));
  }
  auto impl = std::make_unique<Impl>(model);
  backends::BackendOptions bo;
  bo.device = options.device;
  bo.intra_op_threads = options.intra_op_threads;
  bo.spin = options.spin == Spin::kOn;
  bo.graph_optimization = options.graph_optimization;
  bo.profile_prefix = options.profile_prefix;
  impl->backend = backends::CreateOrtBackend(model.bytes(), model.info(), bo);
  impl->provider = impl->backend->Provider();
  if (!options.keep_model_bytes) impl->model = model.WithoutBytes();
  return std::unique_ptr<Predictor>(new Predictor(std::move(impl)));
}

std::unique_ptr<Predictor> Predictor::Load(const std::string& path, const SessionOptions& options) {
  return Create(Model::FromFile(path, options), options);
}

std::unique_ptr<Predictor> Predictor::LoadFromMemory(const std::vector<uint8_t>& bytes,
                                                     const std::string& name,
                                                     const SessionOptions& options) {
  return Create(Model::FromMemory(bytes, name, options), options);
}

const Model& Predictor::model() const { return impl_->model; }
const std::string& Predictor::provider() const { return impl_->provider; }
std::string Predictor::engine_version() const { return impl_->backend->Version(); }
int Predictor::threads() const { return impl_->backend->Threads(); }
int Predictor::max_batch() const { return std::max(impl_->meta().batch, 0); }
std::string Predictor::EndProfiling() const { return impl_->backend->EndProfiling(); }

Batch Predictor::Prepare(const std::vector<cv::Mat>& images, const PredictOptions& options) const {
  const auto t0 = Clock::now();
  const ModelMeta& meta = impl_->meta();
  ValidateOptions(options, meta);
  if (images.empty()) throw InvalidArgument("a batch needs at least one image");
  if (meta.batch > 0 && images.size() > static_cast<size_t>(meta.batch)) {
    throw InvalidArgument("batch " + std::to_string(images.size()) +
                              " exceeds the model's fixed batch " + std::to_string(meta.batch),
                          "batch");
  }
  auto state = impl_->NewState();
  Workspace& ws = *state->ws;
  const size_t n = images.size();
  const int slots = impl_->SlotsFor(n);
  // Rect (stride-aligned) letterboxes on a dynamic-size model; several images of different
  // rect shapes are padded to the largest width and height among them (PredictBatch groups
  // images by shape before they get here, so it only pads a caller's own mixed batch).
  const int auto_stride = (meta.dynamic && options.rect) ? meta.stride : 0;
  const cv::Size target = options.imgsz > 0 ? cv::Size(options.imgsz, options.imgsz)
                                            : cv::Size(meta.imgsz_w, meta.imgsz_h);
  state->letterboxes.resize(n);
  cv::Size dst(0, 0);
  for (size_t i = 0; i < n; ++i) {
    if (images[i].empty()) throw InvalidArgument("empty image");
    state->letterboxes[i] = vision::ComputeLetterbox(images[i].size(), target, auto_stride);
    dst.width = std::max(dst.width, state->letterboxes[i].dst.width);
    dst.height = std::max(dst.height, state->letterboxes[i].dst.height);
  }
  for (Letterbox& lb : state->letterboxes) {
    if (lb.dst != dst) lb = vision::PadLetterbox(lb, dst);
  }
  const size_t per_image = 3 * static_cast<size_t>(dst.area());
  state->shape = {slots, 3, dst.height, dst.width};
  ws.input.Reshape(DataType::kFloat32, state->shape);
  float* input = ws.input.Data<float>();
  for (size_t i = 0; i < n; ++i) {
    const cv::Mat& bgr = AsBgr(images[i], ws.converted);
    vision::LetterboxToTensor(bgr, state->letterboxes[i], input + i * per_image, ws.resize_scratch,
                              impl_->backend->Threads());
  }
  // Unused slots of a fixed-batch model are zero-filled; their outputs are never decoded.
  std::fill(input + n * per_image, input + slots * per_image, 0.f);
  state->size = n;
  state->prepare_ms = MsSince(t0);
  return Batch(std::move(state));
}

Batch Predictor::PrepareTensors(const std::vector<TensorView>& inputs) const {
  const auto t0 = Clock::now();
  const ModelMeta& meta = impl_->meta();
  if (inputs.empty()) throw InvalidArgument("a batch needs at least one tensor");
  int64_t total = 0;
  for (const TensorView& t : inputs) {
    CheckInputTensor(t, meta);
    if (t.shape()[2] != inputs[0].shape()[2] || t.shape()[3] != inputs[0].shape()[3]) {
      throw InvalidArgument("input shapes " + ShapeString(inputs[0].shape()) + " and " +
                            ShapeString(t.shape()) + " cannot form one batch");
    }
    total += t.shape()[0];
  }
  std::vector<int64_t> shape = inputs[0].shape();
  shape[0] = total;
  if (meta.batch > 0 && total != meta.batch) {
    throw InvalidArgument("input shape " + ShapeString(shape) +
                          ": the model's batch axis is fixed at " + std::to_string(meta.batch));
  }
  auto state = impl_->NewState();
  Workspace& ws = *state->ws;
  state->shape = shape;
  ws.input.Reshape(DataType::kFloat32, shape);
  auto* dst = static_cast<uint8_t*>(ws.input.data());
  for (const TensorView& t : inputs) {  // the one copy from the caller's bytes
    std::memcpy(dst, t.data(), t.bytes());
    dst += t.bytes();
  }
  state->size = static_cast<size_t>(total);
  state->prepare_ms = MsSince(t0);
  return Batch(std::move(state));
}

std::vector<NamedTensorView> Predictor::Run(Batch& batch) const {
  const auto t0 = Clock::now();
  Batch::State& state = *batch.state_;
  Workspace& ws = *state.ws;
  impl_->backend->Run(*ws.context, ws.input, ws.outputs);  // ws.input has state.shape
  state.run_ms = MsSince(t0);
  state.ran = true;
  const std::vector<TensorInfo>& names = impl_->model.info().outputs;
  std::vector<NamedTensorView> outputs;
  outputs.reserve(ws.outputs.size());
  for (size_t i = 0; i < ws.outputs.size(); ++i) {
    outputs.push_back(
        {i < names.size() ? names[i].name : "output" + std::to_string(i), ws.outputs[i].view()});
  }
  return outputs;
}

std::vector<Result> Predictor::Decode(const std::vector<NamedTensorView>& outputs,
                                      const Batch& batch, const PredictOptions& options) const {
  return Decode(outputs, batch, std::vector<PredictOptions>(batch.size(), options));
}

std::vector<Result> Predictor::Decode(const std::vector<NamedTensorView>& outputs,
                                      const Batch& batch,
                                      const std::vector<PredictOptions>& options) const {
  Batch::State& state = *batch.state_;  // views scratch only; the batch is not changed
  if (state.letterboxes.size() != state.size) {
    throw InvalidArgument("a batch made from tensors has no image geometry to decode with");
  }
  if (options.size() != state.size) {
    throw InvalidArgument("decode: " + std::to_string(state.size) + " images but " +
                          std::to_string(options.size()) + " option sets");
  }
  for (const PredictOptions& o : options) ValidateOptions(o, impl_->meta());
  std::vector<TensorView>& views = state.ws->views;  // the batch's own scratch (one thread)
  views.clear();
  for (const NamedTensorView& o : outputs) views.push_back(o.tensor);
  const double n = static_cast<double>(state.size);
  std::vector<Result> results(state.size);
  for (size_t i = 0; i < state.size; ++i) {
    const auto t0 = Clock::now();
    Result& r = results[i];
    const Letterbox& lb = state.letterboxes[i];
    r.width = lb.src.width;
    r.height = lb.src.height;
    r.task = impl_->meta().task;
    r.detections = vision::Postprocess(views, static_cast<int>(i), impl_->meta(), lb, options[i]);
    r.speed_ms.preprocess = state.prepare_ms / n;
    r.speed_ms.inference = state.run_ms / n;
    r.speed_ms.postprocess = MsSince(t0);
  }
  return results;
}

Result Predictor::Predict(const cv::Mat& image, const PredictOptions& options) const {
  Batch batch = Prepare({image}, options);
  return std::move(Decode(Run(batch), batch, options)[0]);
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
    ValidateOptions(o, impl_->meta());
    if (o.imgsz != options[0].imgsz || o.rect != options[0].rect) {
      throw InvalidArgument("a batch must use one imgsz and one rect setting");
    }
  }
  // Rect letterboxes of different shapes: one engine call per shape (in order of first
  // appearance), which measured faster than padding them to one shape (docs/performance.md,
  // "Rect batches"); results go back to the callers' order.
  std::vector<std::vector<size_t>> groups;
  const ModelMeta& meta = impl_->meta();
  if (meta.dynamic && options[0].rect && images.size() > 1) {
    const int side = options[0].imgsz;
    const cv::Size target = side > 0 ? cv::Size(side, side) : cv::Size(meta.imgsz_w, meta.imgsz_h);
    std::vector<std::pair<cv::Size, std::vector<size_t>>> by_shape;
    for (size_t i = 0; i < images.size(); ++i) {
      if (images[i].empty()) throw InvalidArgument("empty image");
      const cv::Size dst = vision::ComputeLetterbox(images[i].size(), target, meta.stride).dst;
      auto it = std::find_if(by_shape.begin(), by_shape.end(),
                             [&](const auto& g) { return g.first == dst; });
      if (it == by_shape.end()) it = by_shape.insert(by_shape.end(), {dst, {}});
      it->second.push_back(i);
    }
    for (auto& g : by_shape) groups.push_back(std::move(g.second));
  } else {
    groups.emplace_back(images.size());
    for (size_t i = 0; i < images.size(); ++i) groups.back()[i] = i;
  }
  std::vector<Result> results(images.size());
  // Fixed batch B: chunks of B, the last one zero-padded. Dynamic batch: one call per group.
  for (const std::vector<size_t>& group : groups) {
    const size_t chunk = max_batch() > 0 ? static_cast<size_t>(max_batch()) : group.size();
    for (size_t begin = 0; begin < group.size(); begin += chunk) {
      const size_t end = std::min(group.size(), begin + chunk);
      std::vector<cv::Mat> part;
      std::vector<PredictOptions> part_options;
      for (size_t k = begin; k < end; ++k) {
        part.push_back(images[group[k]]);
        part_options.push_back(options[group[k]]);
      }
      Batch batch = Prepare(part, part_options[0]);
      std::vector<Result> decoded = Decode(Run(batch), batch, part_options);
      for (size_t k = begin; k < end; ++k) results[group[k]] = std::move(decoded[k - begin]);
    }
  }
  return results;
}

std::vector<Predictor::Output> Predictor::Infer(const TensorView& input) const {
  Batch batch = PrepareTensors({input});
  std::vector<Output> outputs;
  for (const NamedTensorView& o : Run(batch)) {
    outputs.push_back({o.name, Tensor::CopyOf(o.tensor)});
  }
  return outputs;
}

ModelInfo ReadModelInfo(const std::string& path, uint64_t max_model_bytes) {
  ModelOptions options;
  options.max_model_bytes = max_model_bytes;
  return Model::FromFile(path, options).info();
}

}  // namespace cvdeploy
