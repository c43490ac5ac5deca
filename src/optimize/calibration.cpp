// SPDX-License-Identifier: Apache-2.0
#include "optimize/calibration.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "backends/backend.h"
#include "core/file_util.h"
#include "core/json_limits.h"
#include "cvdeploy/error.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "model/onnx_model.h"
#include "optimize/calibration_math.h"

namespace cvdeploy::optimize {
namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "cvdeploy-calibration";
constexpr int kVersion = 1;
constexpr int kMinBins = 16;
constexpr int kMaxBins = 1 << 20;

std::string Quoted(const std::string& name) {
  std::string s = "'";
  s.append(name).append("'");
  return s;
}

std::string LowerExtension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

// The image files directly in `dir`, sorted, at most `max_images`.
std::vector<std::string> CalibrationImages(const std::string& dir, int max_images) {
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  if (!fs::exists(status)) throw BadInput(dir + ": No such file or directory");
  if (!fs::is_directory(status)) throw BadInput(dir + ": not a directory of calibration images");
  static const std::set<std::string> kExtensions = {".jpg", ".jpeg", ".png", ".bmp", ".webp"};
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && kExtensions.count(LowerExtension(it->path()))) {
      files.push_back(it->path().string());
    }
  }
  if (ec) throw BadInput(dir + ": cannot list directory: " + ec.message());
  if (files.empty()) {
    throw BadInput(dir +
                   ": no calibration images (.jpg, .jpeg, .png, .bmp, .webp) in the directory");
  }
  std::sort(files.begin(), files.end());
  if (files.size() > static_cast<size_t>(max_images)) files.resize(static_cast<size_t>(max_images));
  return files;
}

std::string ElementTypeName(int32_t type) {
  const std::string name = onnx::TensorProto_DataType_Name(type);
  return name.empty() ? "type " + std::to_string(type) : name;
}

// Element types the graph declares or shape inference derives, by tensor name.
std::unordered_map<std::string, int32_t> ElementTypes(const onnx::ModelProto& model) {
  onnx::ModelProto inferred = model;
  try {
    InferShapes(inferred);
  } catch (const std::exception&) {
    // Types stay unknown where inference fails; the engine then reports a mismatch.
  }
  std::unordered_map<std::string, int32_t> types;
  const auto add = [&](const onnx::ValueInfoProto& v) {
    if (v.type().has_tensor_type() && v.type().tensor_type().elem_type() != 0) {
      types[v.name()] = v.type().tensor_type().elem_type();
    }
  };
  const onnx::GraphProto& g = inferred.graph();
  for (const auto& v : g.input()) add(v);
  for (const auto& v : g.output()) add(v);
  for (const auto& v : g.value_info()) add(v);
  return types;
}

// What one requested tensor's values come from.
struct Request {
  enum class Source { kInput, kConstant, kOutput } source = Source::kOutput;
  std::string name;
  std::vector<float> constant;  // kConstant: the value
  size_t output = 0;            // kOutput: index among the copy's graph outputs
};

// The model's image input: [N, 3, H, W] float with N 1 or dynamic.
struct ImageInput {
  std::string name;
};

ImageInput FindImageInput(const onnx::GraphProto& graph) {
  std::unordered_set<std::string> initializers;
  for (const auto& t : graph.initializer()) initializers.insert(t.name());
  std::vector<const onnx::ValueInfoProto*> inputs;
  for (const auto& v : graph.input()) {
    if (!initializers.count(v.name())) inputs.push_back(&v);
  }
  if (inputs.size() != 1) {
    throw BadInput("calibration needs a model with one image input; this one has " +
                   std::to_string(inputs.size()) + " inputs");
  }
  const onnx::ValueInfoProto& v = *inputs[0];
  const auto& type = v.type().tensor_type();
  if (type.elem_type() != onnx::TensorProto::FLOAT) {
    throw BadInput("calibration needs a float model; input " + Quoted(v.name()) + " is " +
                   ElementTypeName(type.elem_type()));
  }
  const auto& dims = type.shape().dim();
  const auto fixed = [&](int i) { return dims[i].has_dim_value() ? dims[i].dim_value() : -1; };
  if (dims.size() != 4 || (fixed(1) != -1 && fixed(1) != 3)) {
    throw BadInput("calibration needs an image input [N, 3, H, W]; input " + Quoted(v.name()) +
                   " has another shape");
  }
  if (fixed(0) > 1) {
    throw BadInput("calibration runs one image at a time; input " + Quoted(v.name()) +
                   " has a fixed batch of " + std::to_string(fixed(0)));
  }
  return ImageInput{v.name()};
}

// Calls fn(i) for i in [0, n) on up to `threads` threads.
void ParallelFor(size_t n, int threads, const std::function<void(size_t)>& fn) {
  const auto workers = static_cast<size_t>(std::clamp<int>(threads, 1, 64));
  if (workers == 1 || n < 2) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::mutex mutex;
  std::exception_ptr error;
  const auto work = [&] {
    try {
      for (size_t i = next++; i < n; i = next++) fn(i);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(mutex);
      if (!error) error = std::current_exception();
      next = n;
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < std::min(workers, n); ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

// Entropy calibration adapted to asymmetric uint8. TensorRT searches one threshold t on the
// histogram of |x| with 128 levels, the positive half of symmetric int8. Here the interval is
// [lo, hi] with zero inside, and its 256 levels are shared by the two sides in proportion to
// their extents (-min and max). Each side is searched on its own histogram of |x| with its
// share of the levels: a two-sided, roughly symmetric tensor (a Conv output) gets TensorRT's
// 128 per side; a one-sided one (Sigmoid, ReLU) gets all 256 on its side, since simulating
// 128 there would overstate the rounding error and clip too much. A side whose share is under
// kMinSearchLevels (the tail of a SiLU, >= -0.2785, next to a positive side of several units)
// is kept whole: it costs few levels and clipping it would gain the other side little. Two
// limits of the method remain: a side is never clipped below `levels` histogram bins (one bin
// per level; with the default resolution about 1/8 to 1/16 of its extent), and a large spike
// of equal values (the exact zeros of a ReLU) pulls the threshold down, because spreading a
// level's mass evenly over its bins, as the KL model of quantization does, penalizes a spike
// more the more bins a level holds. YOLO's SiLU/Sigmoid activations have no such spike.
TensorRange ComputeRange(const TensorStats& stats, CalibrationMethod method, double percentile) {
  if (method == CalibrationMethod::kPercentile && !(percentile > 50 && percentile <= 100)) {
    throw InvalidArgument("calibration percentile " + std::to_string(percentile) +
                          " is outside (50, 100]");
  }
  const std::string problem = calib::CheckStats(stats);
  if (!problem.empty()) throw BadInput("calibration statistics: " + problem);
  std::pair<double, double> interval{stats.min, stats.max};
  if (method == CalibrationMethod::kPercentile) {
    interval = calib::PercentileInterval(stats, percentile);
  } else if (method == CalibrationMethod::kEntropy) {
    interval = calib::EntropyInterval(stats);
  }
  TensorRange range;
  // "+ 0.0" turns a -0 (an unclipped empty negative side) into +0.
  range.lo = static_cast<float>(std::min(interval.first, 0.0) + 0.0);
  range.hi = static_cast<float>(std::max(interval.second, 0.0) + 0.0);
  if (!(range.hi > range.lo)) {
    // Only an all-zero tensor gets here. Any scale represents it; a unit one (as ONNX
    // Runtime's quantizer uses for an empty range) keeps the bias of a consuming Conv, whose
    // scale is input scale x weight scale, far from int32 overflow.
    range.lo = 0;
    range.hi = 1;
  }
  return range;
}

std::string CalibrationModelSha256(const onnx::ModelProto& model) {
  const std::vector<uint8_t> bytes = SerializeModel(model);
  return core::Sha256Hex(bytes.data(), bytes.size());
}

CalibrationTable Calibrate(const onnx::ModelProto& model, const std::vector<std::string>& tensors,
                           const std::string& image_dir, const CalibrationOptions& options) {
  if (options.max_images < 1) {
    throw InvalidArgument("calibration needs at least 1 image, got max_images " +
                          std::to_string(options.max_images));
  }
  if (options.num_bins < kMinBins || options.num_bins > kMaxBins) {
    throw InvalidArgument("calibration histogram bins " + std::to_string(options.num_bins) +
                          " outside [" + std::to_string(kMinBins) + ", " +
                          std::to_string(kMaxBins) + "]");
  }
  if (tensors.empty()) throw InvalidArgument("calibration: no tensors requested");

  const onnx::GraphProto& graph = model.graph();
  const ImageInput input = FindImageInput(graph);
  GraphIndex index(graph);
  const std::unordered_map<std::string, int32_t> types = ElementTypes(model);

  // The private copy: the requested activations are its only outputs, so the engine computes
  // just what they need and keeps each one (a graph output is never fused away or reused).
  onnx::ModelProto copy = model;
  onnx::GraphProto& copy_graph = *copy.mutable_graph();
  copy_graph.clear_output();
  std::vector<Request> requests;
  std::unordered_set<std::string> seen;
  for (const std::string& name : tensors) {
    if (!seen.insert(name).second) continue;
    Request r;
    r.name = name;
    if (name == input.name) {
      r.source = Request::Source::kInput;
    } else if (const onnx::TensorProto* constant = index.Constant(name)) {
      if (constant->data_type() != onnx::TensorProto::FLOAT) {
        throw BadInput("calibration: tensor " + Quoted(name) + " is " +
                       ElementTypeName(constant->data_type()) + ", not float");
      }
      r.source = Request::Source::kConstant;
      r.constant = FloatData(*constant);
    } else if (index.Producer(name) >= 0) {
      const auto type = types.find(name);
      if (type != types.end() && type->second != onnx::TensorProto::FLOAT) {
        throw BadInput("calibration: tensor " + Quoted(name) + " is " +
                       ElementTypeName(type->second) + ", not float");
      }
      r.source = Request::Source::kOutput;
      r.output = static_cast<size_t>(copy_graph.output_size());
      onnx::ValueInfoProto* output = copy_graph.add_output();
      output->set_name(name);
      output->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    } else {
      throw BadInput("calibration: tensor " + Quoted(name) + " is not in the model graph");
    }
    requests.push_back(std::move(r));
  }

  const std::vector<std::string> files = CalibrationImages(image_dir, options.max_images);
  // The engine input of each image comes from the predictor's own preprocessing
  // (Predictor::Prepare: letterbox to the model size, or for dynamic axes to its imgsz with
  // the single-image stride rounding), so calibration sees exactly what inference sees.
  // Serialized once: for the predictor and for the table's hash (CalibrationModelSha256).
  const std::vector<uint8_t> model_bytes = SerializeModel(model);
  SessionOptions session;
  session.intra_op_threads = options.threads;
  const std::unique_ptr<Predictor> predictor =
      Predictor::LoadFromMemory(model_bytes, "calibration model", session);

  // The engine on the private copy, with the inference backend's session policy. RunNamed
  // hands the activations over in the engine's own buffers: with a few hundred of them exposed,
  // a copy would double the peak memory (hundreds of MB for yolov8n).
  std::unique_ptr<backends::Backend> engine;
  std::vector<std::string> names;
  if (copy_graph.output_size() > 0) {
    for (const auto& o : copy_graph.output()) names.push_back(o.name());
    backends::BackendOptions engine_options;
    engine_options.intra_op_threads = options.threads;
    try {
      engine = backends::CreateOrtGraphBackend(SerializeModel(copy), "calibration", engine_options);
    } catch (const backends::EngineError& e) {
      throw BadInput(
          "calibration: ONNX Runtime cannot load the model with its activations "
          "exposed: " +
          e.engine_message());
    }
  }
  const int threads = engine ? engine->Threads() : 1;

  // Up to twice num_bins: the power-of-two grid then puts at least about num_bins bins across
  // [min, max] (a width one step finer would not have fitted), the resolution asked for.
  std::vector<calib::StreamingHistogram> histograms(
      requests.size(), calib::StreamingHistogram(2 * options.num_bins));
  std::vector<char> refused(requests.size());
  for (size_t i = 0; i < files.size(); ++i) {
    // Decoded in full as `validate` does (predict's reduced-size JPEG decode differs only for
    // JPEGs at least twice the model size in both dimensions).
    const Batch batch = predictor->Prepare({ReadImage(files[i])});
    const TensorView input_tensor = batch.input();
    // The histograms are independent: the engine's threads, idle now, share them.
    const auto add = [&](const std::vector<backends::OutputView>& outputs) {
      ParallelFor(requests.size(), threads, [&](size_t r) {
        const Request& request = requests[r];
        const float* data = input_tensor.Data<float>();
        size_t count = input_tensor.elements();
        if (request.source == Request::Source::kConstant) {
          data = request.constant.data();
          count = request.constant.size();
        } else if (request.source == Request::Source::kOutput) {
          data = outputs[request.output].tensor.Data<float>();
          count = outputs[request.output].tensor.elements();
        }
        refused[r] = !histograms[r].Add(data, count);
      });
    };
    if (engine) {
      try {
        engine->RunNamed({{input.name, input_tensor}}, names, add);
      } catch (const backends::EngineError& e) {
        throw RuntimeError(files[i] +
                           ": inference failed during calibration: " + e.engine_message());
      }
    } else {
      add({});
    }
    for (size_t r = 0; r < requests.size(); ++r) {
      if (refused[r]) {
        throw BadInput(files[i] + ": tensor " + Quoted(requests[r].name) +
                       " has NaN, infinite or huge (> 1e30) values on this image");
      }
    }
    if (options.progress) options.progress(static_cast<int>(i + 1), static_cast<int>(files.size()));
  }

  CalibrationTable table;
  table.model_sha256 = core::Sha256Hex(model_bytes.data(), model_bytes.size());
  table.images = static_cast<int>(files.size());
  for (const std::string& f : files) table.image_names.push_back(fs::path(f).filename().string());
  for (size_t r = 0; r < requests.size(); ++r) {
    if (histograms[r].Empty()) {
      throw BadInput("calibration: tensor " + Quoted(requests[r].name) + " has no elements");
    }
    table.stats[requests[r].name] = histograms[r].Stats();
  }
  return table;
}

// ---- Table file ----------------------------------------------------------------------------

namespace {

nlohmann::json StatsJson(const TensorStats& s) {
  // Floats widen to double exactly and nlohmann prints the shortest text that reads back to
  // the same double, so a saved table loads bit-identical.
  nlohmann::json j = nlohmann::json::object();
  j["min"] = static_cast<double>(s.min);
  j["max"] = static_cast<double>(s.max);
  j["hist_min"] = static_cast<double>(s.hist_min);
  j["hist_max"] = static_cast<double>(s.hist_max);
  j["bins"] = s.bins;
  return j;
}

class TableReader {
 public:
  explicit TableReader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void Fail(const std::string& what) const {
    std::string message = path_;
    message.append(": invalid calibration table: ").append(what);
    throw BadInput(message);
  }

  const nlohmann::json& Field(const nlohmann::json& object, const char* key,
                              const std::string& where) const {
    const auto it = object.find(key);
    if (it == object.end()) Fail(where + "missing \"" + key + "\"");
    return *it;
  }

  float Float(const nlohmann::json& object, const char* key, const std::string& where) const {
    const nlohmann::json& v = Field(object, key, where);
    if (!v.is_number()) Fail(where + "\"" + key + "\" is not a number");
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) {
      Fail(where + "\"" + key + "\" is out of the float range");
    }
    return static_cast<float>(d);
  }

  TensorStats Stats(const std::string& name, const nlohmann::json& j) const {
    const std::string where = "tensor " + Quoted(name) + ": ";
    if (!j.is_object()) Fail(where + "not an object");
    TensorStats s;
    s.min = Float(j, "min", where);
    s.max = Float(j, "max", where);
    s.hist_min = Float(j, "hist_min", where);
    s.hist_max = Float(j, "hist_max", where);
    const nlohmann::json& bins = Field(j, "bins", where);
    if (!bins.is_array()) Fail(where + "\"bins\" is not an array");
    s.bins.reserve(bins.size());
    for (const auto& b : bins) {
      if (!b.is_number_unsigned()) Fail(where + "\"bins\" holds a value that is not a count");
      s.bins.push_back(b.get<uint64_t>());
    }
    const std::string problem = calib::CheckStats(s);
    if (!problem.empty()) Fail(where + problem);
    return s;
  }

 private:
  std::string path_;
};

}  // namespace

std::string CalibrationTableText(const CalibrationTable& table) {
  // One tensor per line: the file stays readable and diffable despite the long bin arrays.
  std::string text = "{\n";
  const auto line = [&](const std::string& key, const std::string& value, bool last) {
    text.append("  ").append(nlohmann::json(key).dump()).append(": ").append(value);
    text.append(last ? "\n" : ",\n");
  };
  line("format", nlohmann::json(kFormat).dump(), false);
  line("version", std::to_string(kVersion), false);
  line("model_sha256", nlohmann::json(table.model_sha256).dump(), false);
  line("images", std::to_string(table.images), false);
  line("image_names", nlohmann::json(table.image_names).dump(), false);
  text.append("  \"tensors\": {");
  bool first = true;
  for (const auto& [name, stats] : table.stats) {
    text.append(first ? "\n    " : ",\n    ");
    text.append(nlohmann::json(name).dump()).append(": ").append(StatsJson(stats).dump());
    first = false;
  }
  text.append(first ? "}\n}\n" : "\n  }\n}\n");
  return text;
}

void SaveCalibration(const CalibrationTable& table, const std::string& path) {
  const std::string text = CalibrationTableText(table);
  core::WriteFileAtomically(path, std::vector<uint8_t>(text.begin(), text.end()));
}

CalibrationTable LoadCalibration(const std::string& path) {
  const std::vector<uint8_t> bytes = core::ReadFileBytes(path);
  const TableReader reader(path);
  // Depth-checked before any tree exists: a table nests 4 levels, an attack 100,000.
  if (core::JsonNestingDepth(std::string_view(reinterpret_cast<const char*>(bytes.data()),
                                              bytes.size())) > core::kMaxJsonDepth) {
    reader.Fail("JSON nested deeper than " + std::to_string(core::kMaxJsonDepth) + " levels");
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (1e400)
    std::string what = e.what();
    reader.Fail("not JSON (" + what.substr(0, what.find('\n')) + ")");
  }
  if (!j.is_object()) reader.Fail("not a JSON object");
  const auto format = j.find("format");
  if (format == j.end() || !format->is_string() || format->get<std::string>() != kFormat) {
    reader.Fail(std::string("no \"format\": \"") + kFormat + "\" (not a calibration table)");
  }
  const nlohmann::json& version = reader.Field(j, "version", "");
  if (!version.is_number_integer() || version.get<int64_t>() != kVersion) {
    reader.Fail("version " + version.dump() + " is not supported (this build reads " +
                std::to_string(kVersion) + ")");
  }
  CalibrationTable table;
  const nlohmann::json& sha = reader.Field(j, "model_sha256", "");
  const auto is_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
  if (!sha.is_string() || sha.get<std::string>().size() != 64 ||
      !std::all_of(sha.get_ref<const std::string&>().begin(),
                   sha.get_ref<const std::string&>().end(), is_hex)) {
    reader.Fail("\"model_sha256\" is not a lower-case hex SHA-256");
  }
  table.model_sha256 = sha.get<std::string>();
  const nlohmann::json& images = reader.Field(j, "images", "");
  if (!images.is_number_unsigned() || images.get<uint64_t>() < 1 ||
      images.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
    reader.Fail("\"images\" is not a positive count");
  }
  table.images = static_cast<int>(images.get<uint64_t>());
  const nlohmann::json& names = reader.Field(j, "image_names", "");
  if (!names.is_array() || !std::all_of(names.begin(), names.end(),
                                        [](const nlohmann::json& n) { return n.is_string(); })) {
    reader.Fail("\"image_names\" is not an array of strings");
  }
  if (names.size() != static_cast<size_t>(table.images)) {
    reader.Fail("\"image_names\" has " + std::to_string(names.size()) + " names for " +
                std::to_string(table.images) + " images");
  }
  for (const auto& n : names) table.image_names.push_back(n.get<std::string>());
  const nlohmann::json& tensors = reader.Field(j, "tensors", "");
  if (!tensors.is_object()) reader.Fail("\"tensors\" is not an object");
  for (const auto& [name, stats] : tensors.items()) {
    table.stats[name] = reader.Stats(name, stats);
  }
  return table;
}

}  // namespace cvdeploy::optimize

namespace cvdeploy {

CalibrationMethod ParseCalibrationMethod(const std::string& text) {
  if (text == "minmax") return CalibrationMethod::kMinMax;
  if (text == "percentile") return CalibrationMethod::kPercentile;
  if (text == "entropy") return CalibrationMethod::kEntropy;
  throw InvalidArgument("unknown calibration method " + optimize::Quoted(text) +
                        " (expected minmax, percentile or entropy)");
}

const char* ToString(CalibrationMethod method) {
  switch (method) {
    case CalibrationMethod::kMinMax:
      return "minmax";
    case CalibrationMethod::kPercentile:
      return "percentile";
    case CalibrationMethod::kEntropy:
      return "entropy";
  }
  return "unknown";
}

}  // namespace cvdeploy
