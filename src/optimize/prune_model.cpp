// SPDX-License-Identifier: Apache-2.0
// The prune tool around PruneChannels: checker, proof by execution in ONNX Runtime that the
// pruned graph runs and keeps its outputs, and the optimization record.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>

#include "backends/backend.h"
#include "cvdeploy/error.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "model/onnx_model.h"
#include "optimize/prune.h"
#include "vision/letterbox.h"

namespace cvdeploy::optimize {
namespace {

struct RunOutput {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;  // empty for non-float outputs
};

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Runs `bytes` once on pseudo-random float input in [0, 1) (the range of a normalized
// image), the same for every call; a dynamic dim is 1 for the batch, 64 elsewhere.
std::vector<RunOutput> RunOnce(const std::vector<uint8_t>& bytes, const std::string& name) {
  const auto session = backends::CreateOrtGraphBackend(bytes, name, {});
  std::vector<std::vector<float>> buffers;
  std::vector<NamedTensorView> inputs;
  std::mt19937 rng(20240605);
  std::uniform_real_distribution<float> uniform(0.f, 1.f);
  for (const TensorInfo& in : session->Info().inputs) {
    if (in.type != "float32") throw BadInput("input '" + in.name + "' is not float32");
    std::vector<int64_t> shape = in.shape;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] <= 0) shape[d] = d == 0 ? 1 : 64;
    }
    size_t count = 1;
    for (int64_t d : shape) count *= static_cast<size_t>(d);
    buffers.emplace_back(count);
    for (float& v : buffers.back()) v = uniform(rng);
    inputs.push_back({in.name, TensorView(DataType::kFloat32, shape, buffers.back().data())});
  }
  std::vector<RunOutput> outputs;
  session->RunNamed(inputs, {}, [&](const std::vector<backends::OutputView>& views) {
    for (const backends::OutputView& v : views) {
      RunOutput out{v.name, v.tensor.shape(), {}};
      if (v.engine_type == "float32") {
        const float* data = v.tensor.Data<float>();
        out.values.assign(data, data + v.tensor.elements());
      }
      outputs.push_back(std::move(out));
    }
  });
  return outputs;
}

PruneVerification Verify(const std::vector<uint8_t>& original, const std::vector<uint8_t>& pruned,
                         const std::string& name) {
  std::vector<RunOutput> before, after;
  try {
    before = RunOnce(original, name);
  } catch (const backends::EngineError& e) {
    throw BadInput(name + ": ONNX Runtime cannot run the model: " + e.engine_message());
  }
  try {
    after = RunOnce(pruned, name);
  } catch (const backends::EngineError& e) {
    throw RuntimeError(name +
                       ": the pruned model does not run in ONNX Runtime: " + e.engine_message());
  }
  PruneVerification v;
  for (size_t i = 0; i < before.size(); ++i) {
    const RunOutput& b = before[i];
    if (i >= after.size() || after[i].name != b.name || after[i].shape != b.shape) {
      throw RuntimeError(name + ": pruning changed output '" + b.name + "' " + ShapeText(b.shape) +
                         " (a bug of the prune tool)");
    }
    v.outputs.push_back(b.name + " " + ShapeText(b.shape));
    for (size_t k = 0; k < b.values.size() && k < after[i].values.size(); ++k) {
      v.max_abs_output = std::max(v.max_abs_output, std::fabs(static_cast<double>(b.values[k])));
      v.max_abs_diff = std::max(v.max_abs_diff,
                                std::fabs(static_cast<double>(b.values[k]) - after[i].values[k]));
    }
  }
  return v;
}

std::vector<std::string> ImagesIn(const std::string& dir, int max_images) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw BadInput(dir + ": not a directory of images");
  std::vector<std::string> paths;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (entry.is_regular_file() &&
        (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp")) {
      paths.push_back(entry.path().string());
    }
  }
  if (ec) throw BadInput(dir + ": cannot list the directory: " + ec.message());
  if (paths.empty()) throw BadInput(dir + ": no JPEG/PNG/BMP/WebP image in the directory");
  std::sort(paths.begin(), paths.end());
  if (max_images > 0 && static_cast<int>(paths.size()) > max_images) paths.resize(max_images);
  return paths;
}

// The engine input of one image. A model the Predictor accepts (every YOLO model) is
// preprocessed by Predictor::Prepare, the one preprocessing implementation, so the statistics
// are those of inference. A graph it refuses (not a YOLO model, e.g. a synthetic test graph)
// is letterboxed to its fixed input size by the same letterbox code; its dynamic axes cannot
// be guessed and are refused.
class ImageInputs {
 public:
  ImageInputs(const std::vector<uint8_t>& original, std::vector<int64_t> graph_shape,
              const std::string& image_dir)
      : shape_(std::move(graph_shape)) {
    try {
      predictor_ = Predictor::LoadFromMemory(original, image_dir);
      return;
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kBadInput) throw;
    }
    if (shape_.size() != 4 || shape_[2] <= 0 || shape_[3] <= 0) {
      throw BadInput(image_dir +
                     ": the model is not a YOLO model and its input has no fixed image size");
    }
    shape_[0] = 1;
    plain_.resize(static_cast<size_t>(3 * shape_[2] * shape_[3]));
  }

  // The image at `path` as a float32 NCHW view, valid until the next call.
  TensorView Get(const std::string& path) {
    const cv::Mat bgr = ReadImage(path);
    if (predictor_) {
      batch_.reset();  // its scratch back to the pool first
      batch_.emplace(predictor_->Prepare({bgr}));
      return batch_->input();
    }
    const vision::LetterboxInfo info = vision::ComputeLetterbox(
        bgr.size(), cv::Size(static_cast<int>(shape_[3]), static_cast<int>(shape_[2])));
    vision::LetterboxToTensor(bgr, info, plain_.data(), scratch_);
    return TensorView(DataType::kFloat32, shape_, plain_.data());
  }

 private:
  std::unique_ptr<Predictor> predictor_;
  std::optional<Batch> batch_;
  std::vector<int64_t> shape_;
  std::vector<float> plain_;
  cv::Mat scratch_;
};

ActivationStats Measure(const std::vector<uint8_t>& original, const std::vector<uint8_t>& bytes,
                        const std::vector<std::string>& tensors,
                        const std::vector<std::string>& images, const std::string& image_dir,
                        int* images_used) {
  const auto session = backends::CreateOrtGraphBackend(bytes, image_dir, {});
  if (session->Info().inputs.empty() || session->Info().inputs[0].shape.size() != 4) {
    throw BadInput(image_dir + ": the model input is not an NCHW image");
  }
  const std::string input_name = session->Info().inputs[0].name;
  ImageInputs inputs(original, session->Info().inputs[0].shape, image_dir);
  std::map<std::string, std::vector<double>> sums, squares;  // per-image means of x and x^2
  for (const std::string& path : images) {
    const TensorView input = inputs.Get(path);
    session->RunNamed(
        {{input_name, input}}, tensors, [&](const std::vector<backends::OutputView>& values) {
          for (size_t t = 0; t < tensors.size(); ++t) {
            const std::vector<int64_t>& dims = values[t].tensor.shape();
            if (dims.size() < 2) continue;
            const int64_t channels = dims[1];
            const int64_t per =
                static_cast<int64_t>(values[t].tensor.elements()) / (dims[0] * channels);
            const float* data = values[t].tensor.Data<float>();
            std::vector<double>& sum = sums[tensors[t]];
            std::vector<double>& square = squares[tensors[t]];
            sum.resize(static_cast<size_t>(channels), 0.0);
            square.resize(static_cast<size_t>(channels), 0.0);
            for (int64_t c = 0; c < channels; ++c) {
              double s = 0, s2 = 0;
              for (int64_t k = 0; k < per; ++k) {
                const double v = data[c * per + k];
                s += v;
                s2 += v * v;
              }
              sum[static_cast<size_t>(c)] += s / static_cast<double>(per);
              square[static_cast<size_t>(c)] += s2 / static_cast<double>(per);
            }
          }
        });
  }
  ActivationStats stats;
  const double n = static_cast<double>(images.size());
  for (const auto& [name, sum] : sums) {
    ChannelStats& cs = stats[name];
    for (size_t c = 0; c < sum.size(); ++c) {
      const double mean = sum[c] / n;
      cs.mean.push_back(mean);
      cs.std.push_back(std::sqrt(std::max(0.0, squares[name][c] / n - mean * mean)));
    }
  }
  if (images_used) *images_used = static_cast<int>(images.size());
  return stats;
}

}  // namespace

ActivationStats MeasureActivations(const std::vector<uint8_t>& model_bytes,
                                   const std::string& image_dir, int max_images, int* images_used) {
  const std::vector<std::string> images = ImagesIn(image_dir, max_images);
  onnx::ModelProto model = ParseModel(model_bytes, image_dir);
  std::set<std::string> outputs, initializers;
  for (const auto& o : model.graph().output()) outputs.insert(o.name());
  for (const auto& i : model.graph().initializer()) initializers.insert(i.name());
  std::vector<std::string> tensors;
  for (const auto& node : model.graph().node()) {
    if (node.op_type() != "Conv" || initializers.count(node.input(0))) continue;
    if (std::find(tensors.begin(), tensors.end(), node.input(0)) != tensors.end()) continue;
    tensors.push_back(node.input(0));
    if (outputs.count(node.input(0))) continue;
    auto* v = model.mutable_graph()->add_output();
    v->set_name(node.input(0));
    v->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  }
  try {
    return Measure(model_bytes, SerializeModel(model), tensors, images, image_dir, images_used);
  } catch (const backends::EngineError& e) {
    throw BadInput(image_dir + ": ONNX Runtime cannot run the model to measure activations: " +
                   e.engine_message());
  }
}

std::vector<uint8_t> PruneModel(const std::vector<uint8_t>& model_bytes, const std::string& name,
                                const PruneOptions& options, PruneReport* report,
                                PruneVerification* verification) {
  onnx::ModelProto model = ParseModel(model_bytes, name);
  ActivationStats stats;
  int images = 0;
  if (!options.calib_dir.empty())
    stats = MeasureActivations(model_bytes, options.calib_dir, options.calib_size, &images);
  PruneReport r = PruneChannels(model, options, name, images ? &stats : nullptr);
  r.calib_images = images;
  CheckModel(model, name);

  nlohmann::ordered_json skipped = nlohmann::ordered_json::array();
  int pruned_groups = 0;
  for (const PruneGroup& g : r.groups) {
    if (g.skip_reason.empty()) {
      ++pruned_groups;
      continue;
    }
    nlohmann::ordered_json entry = {{"convs", g.convs}, {"channels", g.channels}};
    if (!g.piece.empty()) entry["piece"] = g.piece;
    entry["reason"] = g.skip_reason;
    skipped.push_back(std::move(entry));
  }
  nlohmann::ordered_json step = {{"tool", "prune"},
                                 {"ratio", options.ratio},
                                 {"method", ToString(options.method)},
                                 {"channel_multiple", options.channel_multiple},
                                 {"mean_compensation_images", r.calib_images},
                                 {"convs_compensated", r.convs_compensated},
                                 {"exclude", options.exclude},
                                 {"params_before", r.before.params},
                                 {"params_after", r.after.params},
                                 {"flops_before", r.before.flops},
                                 {"flops_after", r.after.flops},
                                 {"flops_definition", "2 x MACs of Conv/ConvTranspose/MatMul/Gemm"},
                                 {"groups_pruned", pruned_groups},
                                 {"channels_removed", r.channels_removed},
                                 {"skipped_groups", std::move(skipped)}};
  AddOptimizationRecord(model, std::move(step));
  std::vector<uint8_t> bytes = SerializeModel(model);
  PruneVerification v = Verify(model_bytes, bytes, name);
  if (report) *report = std::move(r);
  if (verification) *verification = std::move(v);
  return bytes;
}

}  // namespace cvdeploy::optimize
