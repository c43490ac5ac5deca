// SPDX-License-Identifier: Apache-2.0
// Calibrate on the real detector: statistics of the input, a Conv, a Sigmoid and the graph
// output over four coco128 images, checked against the images and against running the model
// through the Predictor and a plain ONNX Runtime session; the saved table; the error paths.
#include <gtest/gtest.h>
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <opencv2/core.hpp>

#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/quantize.h"
#include "model/onnx_model.h"
#include "optimize/calibration.h"
#include "support/assets.h"
#include "vision/letterbox.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;
using optimize::CalibrationOptions;
using optimize::CalibrationTable;
using optimize::TensorStats;

constexpr int kImages = 4;

const onnx::ModelProto& Model() {
  static const onnx::ModelProto model = optimize::LoadModel(Asset("models/yolov8n-dq.onnx"));
  return model;
}

std::string ImageDir() { return Asset("datasets/coco128/images"); }

// The first `n` images of the directory in sorted order, as Calibrate picks them.
std::vector<std::string> FirstImages(int n) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(ImageDir())) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  files.resize(static_cast<size_t>(n));
  return files;
}

// The inference preprocessing of one image into a [1, 3, 640, 640] tensor.
std::vector<float> Preprocess(const std::string& path) {
  const cv::Mat image = ReadImage(path);
  const vision::LetterboxInfo info = vision::ComputeLetterbox(image.size(), cv::Size(640, 640));
  std::vector<float> tensor(3 * 640 * 640);
  cv::Mat scratch;
  vision::LetterboxToTensor(image, info, tensor.data(), scratch);
  return tensor;
}

std::string FirstOutputOf(const std::string& op_type) {
  for (const auto& node : Model().graph().node()) {
    if (node.op_type() == op_type) return node.output(0);
  }
  throw std::runtime_error("no " + op_type + " node in yolov8n-dq");
}

struct Calibrated {
  std::vector<std::string> tensors;
  CalibrationTable table;
  std::vector<std::pair<int, int>> progress;
};

// One calibration shared by the tests (the expensive part).
const Calibrated& Result() {
  static const Calibrated result = [] {
    Calibrated r;
    r.tensors = {"images", FirstOutputOf("Conv"), FirstOutputOf("Sigmoid"), "output0"};
    CalibrationOptions options;
    options.max_images = kImages;
    options.progress = [&r](int done, int total) { r.progress.emplace_back(done, total); };
    r.table = optimize::Calibrate(Model(), r.tensors, ImageDir(), options);
    return r;
  }();
  return result;
}

uint64_t Total(const TensorStats& s) {
  uint64_t n = 0;
  for (uint64_t b : s.bins) n += b;
  return n;
}

// Bins `values` on the histogram grid of `s` (exact power-of-two width anchored at 0).
std::vector<uint64_t> Rebin(const TensorStats& s, const std::vector<float>& values) {
  const double width = (double(s.hist_max) - s.hist_min) / double(s.bins.size());
  std::vector<uint64_t> bins(s.bins.size(), 0);
  for (float x : values) {
    const auto j = static_cast<long>(std::floor((double(x) - s.hist_min) / width));
    EXPECT_GE(j, 0);
    EXPECT_LT(j, static_cast<long>(bins.size()));
    ++bins[static_cast<size_t>(std::clamp(j, 0L, static_cast<long>(bins.size()) - 1))];
  }
  return bins;
}

TEST(CalibrateTest, RecordsImagesInSortedOrderAndReportsProgress) {
  const Calibrated& r = Result();
  EXPECT_EQ(r.table.images, kImages);
  std::vector<std::string> names;
  for (const auto& f : FirstImages(kImages)) names.push_back(fs::path(f).filename().string());
  EXPECT_EQ(r.table.image_names, names);
  const std::vector<std::pair<int, int>> expected = {{1, 4}, {2, 4}, {3, 4}, {4, 4}};
  EXPECT_EQ(r.progress, expected);
  EXPECT_EQ(r.table.model_sha256, optimize::CalibrationModelSha256(Model()));
  EXPECT_EQ(r.table.model_sha256.size(), 64u);
  ASSERT_EQ(r.table.stats.size(), r.tensors.size());
  for (const auto& t : r.tensors) EXPECT_TRUE(r.table.stats.count(t)) << t;
}

TEST(CalibrateTest, InputStatisticsAreThoseOfThePreprocessedImages) {
  const TensorStats& s = Result().table.stats.at("images");
  std::vector<float> all;
  for (const auto& f : FirstImages(kImages)) {
    const std::vector<float> t = Preprocess(f);
    all.insert(all.end(), t.begin(), t.end());
  }
  EXPECT_EQ(s.min, *std::min_element(all.begin(), all.end()));
  EXPECT_EQ(s.max, *std::max_element(all.begin(), all.end()));
  EXPECT_GE(s.min, 0.f);
  EXPECT_LE(s.max, 1.f);
  EXPECT_EQ(Total(s), all.size());
  // Bin for bin: the streaming histogram equals binning everything at once on its grid.
  EXPECT_EQ(s.bins, Rebin(s, all));
  // At least about num_bins (2048) bins across the range.
  EXPECT_GE(s.bins.size(), 2000u);
  EXPECT_LE(s.bins.size(), 4096u);
}

TEST(CalibrateTest, SigmoidOutputLiesInZeroOne) {
  const Calibrated& r = Result();
  const TensorStats& s = r.table.stats.at(r.tensors[2]);
  EXPECT_GE(s.min, 0.f);
  EXPECT_LE(s.max, 1.f);
  EXPECT_LT(s.min, 0.5f);
  EXPECT_GT(s.max, 0.5f);
  for (auto method :
       {optimize::CalibrationMethod::kMinMax, optimize::CalibrationMethod::kPercentile,
        optimize::CalibrationMethod::kEntropy}) {
    const optimize::TensorRange range = optimize::ComputeRange(s, method);
    EXPECT_EQ(range.lo, 0.f) << optimize::ToString(method);
    EXPECT_GT(range.hi, 0.f) << optimize::ToString(method);
    EXPECT_LE(range.hi, s.max) << optimize::ToString(method);
  }
}

TEST(CalibrateTest, GraphOutputEqualsThePredictorsInference) {
  const TensorStats& s = Result().table.stats.at("output0");
  const auto predictor = Predictor::Load(Asset("models/yolov8n-dq.onnx"));
  std::vector<float> all;
  for (const auto& f : FirstImages(kImages)) {
    const std::vector<float> input = Preprocess(f);
    const std::vector<Predictor::Output> out =
        predictor->Infer(TensorView(DataType::kFloat32, {1, 3, 640, 640}, input.data()));
    ASSERT_EQ(out.size(), 1u);
    const float* data = out[0].tensor.Data<float>();
    all.insert(all.end(), data, data + out[0].tensor.elements());
  }
  ASSERT_EQ(all.size(), size_t{kImages} * 84 * 8400);
  EXPECT_EQ(Total(s), all.size());
  EXPECT_EQ(s.min, *std::min_element(all.begin(), all.end()));
  EXPECT_EQ(s.max, *std::max_element(all.begin(), all.end()));
  EXPECT_GT(s.max, 100.f);  // box coordinates in pixels
  EXPECT_EQ(s.bins, Rebin(s, all));
}

TEST(CalibrateTest, IntermediateTensorEqualsAPlainOnnxRuntimeRun) {
  const Calibrated& r = Result();
  const std::string conv = r.tensors[1];
  onnx::ModelProto model = Model();
  model.mutable_graph()->clear_output();
  auto* output = model.mutable_graph()->add_output();
  output->set_name(conv);
  output->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  const std::string bytes = model.SerializeAsString();
  static Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "optimize_calibrate_test");
  Ort::SessionOptions options;
  options.SetIntraOpNumThreads(1);
  Ort::Session session(env, bytes.data(), bytes.size(), options);
  const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<float> all;
  for (const auto& f : FirstImages(kImages)) {
    std::vector<float> input = Preprocess(f);
    const std::vector<int64_t> shape = {1, 3, 640, 640};
    Ort::Value tensor =
        Ort::Value::CreateTensor<float>(memory, input.data(), input.size(), shape.data(), 4);
    const char* in_name = "images";
    const char* out_name = conv.c_str();
    auto values = session.Run(Ort::RunOptions{nullptr}, &in_name, &tensor, 1, &out_name, 1);
    const float* data = values[0].GetTensorData<float>();
    all.insert(all.end(), data, data + values[0].GetTensorTypeAndShapeInfo().GetElementCount());
  }
  const TensorStats& s = r.table.stats.at(conv);
  EXPECT_EQ(Total(s), all.size());
  EXPECT_EQ(s.min, *std::min_element(all.begin(), all.end()));
  EXPECT_EQ(s.max, *std::max_element(all.begin(), all.end()));
  EXPECT_LT(s.min, 0.f);  // a Conv before its activation takes both signs
  EXPECT_GT(s.max, 0.f);
  EXPECT_EQ(s.bins, Rebin(s, all));
}

TEST(CalibrateTest, SavedTableLoadsIdentical) {
  const CalibrationTable& t = Result().table;
  const std::string path = MakeTempDir("calibrate") + "/table.json";
  optimize::SaveCalibration(t, path);
  const CalibrationTable u = optimize::LoadCalibration(path);
  EXPECT_EQ(u.model_sha256, t.model_sha256);
  EXPECT_EQ(u.images, t.images);
  EXPECT_EQ(u.image_names, t.image_names);
  ASSERT_EQ(u.stats.size(), t.stats.size());
  for (const auto& [name, s] : t.stats) {
    const TensorStats& v = u.stats.at(name);
    EXPECT_EQ(v.min, s.min) << name;
    EXPECT_EQ(v.max, s.max) << name;
    EXPECT_EQ(v.hist_min, s.hist_min) << name;
    EXPECT_EQ(v.hist_max, s.hist_max) << name;
    EXPECT_EQ(v.bins, s.bins) << name;
  }
}

TEST(CalibrateTest, ConstantTensorStatisticsComeFromItsValues) {
  // A float initializer (a Conv weight) needs no engine run; it counts once per image.
  const onnx::TensorProto* weight = nullptr;
  for (const auto& init : Model().graph().initializer()) {
    if (init.data_type() == onnx::TensorProto::FLOAT && init.dims_size() == 4) {
      weight = &init;
      break;
    }
  }
  ASSERT_NE(weight, nullptr);
  CalibrationOptions options;
  options.max_images = 2;
  const CalibrationTable t = optimize::Calibrate(Model(), {weight->name()}, ImageDir(), options);
  const std::vector<float> values = optimize::FloatData(*weight);
  const TensorStats& s = t.stats.at(weight->name());
  EXPECT_EQ(s.min, *std::min_element(values.begin(), values.end()));
  EXPECT_EQ(s.max, *std::max_element(values.begin(), values.end()));
  EXPECT_EQ(Total(s), 2 * values.size());
}

// ---- errors ------------------------------------------------------------------------------

void ExpectError(const std::function<void()>& call, ErrorCode code,
                 const std::vector<std::string>& mentions) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one mentioning " << mentions[0];
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.code(), code) << what;
    for (const auto& m : mentions) EXPECT_NE(what.find(m), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(CalibrateErrorsTest, DirectoryMissingEmptyOrWithABrokenImage) {
  CalibrationOptions one;
  one.max_images = 1;
  const std::vector<std::string> tensors = {"output0"};
  const std::string missing = MakeTempDir("calib-missing") + "/nope";
  ExpectError([&] { optimize::Calibrate(Model(), tensors, missing, one); }, ErrorCode::kBadInput,
              {missing, "No such file"});
  const std::string empty = MakeTempDir("calib-empty");
  std::ofstream(empty + "/notes.txt") << "not an image";
  ExpectError([&] { optimize::Calibrate(Model(), tensors, empty, one); }, ErrorCode::kBadInput,
              {empty, "no calibration images"});
  const std::string broken = MakeTempDir("calib-broken");
  std::ofstream(broken + "/a.jpg") << "not a jpeg";
  ExpectError([&] { optimize::Calibrate(Model(), tensors, broken, one); }, ErrorCode::kBadInput,
              {broken + "/a.jpg"});
  const std::string file = Asset("images/bus.jpg");
  ExpectError([&] { optimize::Calibrate(Model(), tensors, file, one); }, ErrorCode::kBadInput,
              {file, "not a directory"});
}

TEST(CalibrateErrorsTest, UnknownOrNonFloatTensor) {
  CalibrationOptions one;
  one.max_images = 1;
  ExpectError(
      [&] {
        optimize::Calibrate(Model(), {"output0", "no_such_tensor"}, ImageDir(), one);
      },
      ErrorCode::kBadInput, {"'no_such_tensor'", "not in the model graph"});
  // An integer constant (a Reshape's target shape, say) is no activation.
  std::string integer;
  for (const auto& init : Model().graph().initializer()) {
    if (init.data_type() == onnx::TensorProto::INT64) {
      integer = init.name();
      break;
    }
  }
  ASSERT_FALSE(integer.empty());
  ExpectError([&] { optimize::Calibrate(Model(), {integer}, ImageDir(), one); },
              ErrorCode::kBadInput, {"'" + integer + "'", "INT64, not float"});
}

TEST(CalibrateErrorsTest, BadOptions) {
  CalibrationOptions options;
  options.max_images = 0;
  ExpectError([&] { optimize::Calibrate(Model(), {"output0"}, ImageDir(), options); },
              ErrorCode::kInvalidArgument, {"max_images 0"});
  options.max_images = 1;
  options.num_bins = 4;
  ExpectError([&] { optimize::Calibrate(Model(), {"output0"}, ImageDir(), options); },
              ErrorCode::kInvalidArgument, {"bins 4"});
  options.num_bins = 2048;
  ExpectError([&] { optimize::Calibrate(Model(), {}, ImageDir(), options); },
              ErrorCode::kInvalidArgument, {"no tensors"});
}

// The public entry point: the table file it returns is the one --load-calibration reads, tied
// to the bytes it was given.
TEST(CalibrateTest, PublicCalibrateReturnsALoadableTable) {
  const std::vector<uint8_t> bytes = ReadModelBytes(Asset("models/yolov8n-dq.onnx"));
  CalibrateOptions options;
  options.image_dir = ImageDir();
  options.max_images = 2;
  const CalibrateResult result = Calibrate(bytes, "yolov8n-dq.onnx", options);
  EXPECT_EQ(result.report.model_sha256, Sha256Hex(bytes.data(), bytes.size()));
  EXPECT_EQ(result.report.images, 2);
  EXPECT_EQ(result.report.image_names.size(), 2u);
  EXPECT_GT(result.report.tensors, 100u);
  const std::string path = MakeTempDir("calibrate_public") + "/table.json";
  WriteFileAtomically(path, result.bytes);
  const CalibrationTable table = optimize::LoadCalibration(path);
  EXPECT_EQ(table.model_sha256, result.report.model_sha256);
  EXPECT_EQ(table.images, 2);
  EXPECT_EQ(table.stats.size(), result.report.tensors);
}

}  // namespace
}  // namespace cvdeploy::testing
