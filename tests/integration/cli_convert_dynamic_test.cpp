// SPDX-License-Identifier: Apache-2.0
// `convert --dynamic-shape` / `--dynamic` on the sample models: the converted graph has
// symbolic height/width and reproduces the original at 640x640; at a rectangular letterbox
// (bus.jpg -> 480 wide x 640 high) its raw outputs, decoded by the plain decoder of THIS file
// (independent of the library's postprocessing), give the detections of the square path.
// Failure paths: already dynamic, not an Ultralytics graph, a classify model, not ONNX.
#include <onnx/onnx_pb.h>
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/tools.h"
#include "support/assets.h"
#include "support/onnx_builder.h"
#include "support/process.h"
#include "support/reference.h"

namespace cvdeploy::testing {
namespace {

std::vector<uint8_t> ReadAll(const std::string& path) {
  return ReadModelBytes(path, kDefaultMaxModelBytes);
}

// ---- Plain reference decode of the raw head outputs -----------------------------------

struct Box {
  int cls;
  float conf, x1, y1, x2, y2;
  std::vector<float> kpts;  // x, y, visibility per keypoint (original image pixels)
};

float Iou(const Box& a, const Box& b) {
  const float iw = std::max(0.f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const float ih = std::max(0.f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const float inter = iw * ih;
  const float uni = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  return uni > 0 ? inter / uni : 0.f;
}

struct RawOutputs {
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::vector<float>> values;
};

// One run of `model` on a letterboxed image of height x width, with ONNX Runtime's C++ API
// directly (not the library's backend).
RawOutputs RunRaw(const std::vector<uint8_t>& model, const std::vector<float>& chw, int64_t height,
                  int64_t width) {
  static Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "dynamic-shape-test");
  Ort::SessionOptions options;
  options.SetIntraOpNumThreads(1);
  Ort::Session session(env, model.data(), model.size(), options);
  const std::vector<int64_t> shape = {1, 3, height, width};
  Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::Value in = Ort::Value::CreateTensor<float>(cpu, const_cast<float*>(chw.data()), chw.size(),
                                                  shape.data(), shape.size());
  Ort::AllocatorWithDefaultOptions alloc;
  std::vector<Ort::AllocatedStringPtr> name_ptrs;
  std::vector<const char*> out_names;
  for (size_t i = 0; i < session.GetOutputCount(); ++i) {
    name_ptrs.push_back(session.GetOutputNameAllocated(i, alloc));
    out_names.push_back(name_ptrs.back().get());
  }
  auto in_name = session.GetInputNameAllocated(0, alloc);
  const char* in_names[] = {in_name.get()};
  auto out =
      session.Run(Ort::RunOptions{nullptr}, in_names, &in, 1, out_names.data(), out_names.size());
  RawOutputs raw;
  for (auto& o : out) {
    const auto s = o.GetTensorTypeAndShapeInfo().GetShape();
    size_t n = 1;
    for (int64_t d : s) n *= static_cast<size_t>(d);
    const float* p = o.GetTensorData<float>();
    raw.shapes.push_back(s);
    raw.values.emplace_back(p, p + n);
  }
  return raw;
}

// output0 [1, 4 + nc + extra, N]: cx, cy, w, h in letterbox pixels, nc class scores, then
// `extra` rows (mask coefficients, or keypoints x, y, v when `kpts` > 0). Greedy per-class
// NMS, boxes and keypoints mapped back to the original image.
std::vector<Box> Decode(const RawOutputs& raw, int nc, int kpts, float conf, double ratio,
                        int pad_left, int pad_top) {
  const auto& s = raw.shapes.at(0);
  const int64_t rows = s[1], n = s[2];
  const std::vector<float>& v = raw.values[0];
  auto at = [&](int64_t row, int64_t a) { return v[row * n + a]; };
  std::vector<Box> cand;
  for (int64_t a = 0; a < n; ++a) {
    int best = 0;
    for (int c = 1; c < nc; ++c) best = at(4 + c, a) > at(4 + best, a) ? c : best;
    const float score = at(4 + best, a);
    if (score <= conf) continue;
    const float cx = at(0, a), cy = at(1, a), w = at(2, a), h = at(3, a);
    Box b{best, score, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, {}};
    for (int k = 0; k < kpts; ++k) {
      b.kpts.push_back(at(4 + nc + 3 * k, a));
      b.kpts.push_back(at(4 + nc + 3 * k + 1, a));
      b.kpts.push_back(at(4 + nc + 3 * k + 2, a));
    }
    EXPECT_LE(4 + nc + 3 * kpts, rows);
    cand.push_back(b);
  }
  std::stable_sort(cand.begin(), cand.end(),
                   [](const Box& a, const Box& b) { return a.conf > b.conf; });
  std::vector<Box> kept;
  for (const Box& c : cand) {
    bool suppressed = false;
    for (const Box& k : kept) suppressed = suppressed || (k.cls == c.cls && Iou(k, c) > 0.7f);
    if (!suppressed) kept.push_back(c);
  }
  for (Box& b : kept) {
    auto mx = [&](float x) { return static_cast<float>((x - pad_left) / ratio); };
    auto my = [&](float y) { return static_cast<float>((y - pad_top) / ratio); };
    b.x1 = mx(b.x1), b.x2 = mx(b.x2), b.y1 = my(b.y1), b.y2 = my(b.y2);
    for (size_t k = 0; k + 2 < b.kpts.size(); k += 3) b.kpts[k] = mx(b.kpts[k]);
    for (size_t k = 1; k + 1 < b.kpts.size(); k += 3) b.kpts[k] = my(b.kpts[k]);
  }
  return kept;
}

// Ultralytics' minimal stride-aligned letterbox ("auto"): the long side scaled to imgsz, the
// short side padded up to a multiple of the stride.
cv::Size RectSize(const cv::Mat& img, int imgsz, int stride) {
  const double r =
      std::min(static_cast<double>(imgsz) / img.rows, static_cast<double>(imgsz) / img.cols);
  const int w = static_cast<int>(std::nearbyint(img.cols * r));
  const int h = static_cast<int>(std::nearbyint(img.rows * r));
  return {w + (imgsz - w) % stride, h + (imgsz - h) % stride};
}

std::vector<Box> DetectAt(const std::vector<uint8_t>& model, const cv::Mat& img, cv::Size size,
                          int nc, int kpts, RawOutputs* raw_out = nullptr) {
  double ratio = 1;
  int left = 0, top = 0;
  const std::vector<float> chw = NaiveLetterbox(img, size, &ratio, &left, &top);
  RawOutputs raw = RunRaw(model, chw, size.height, size.width);
  std::vector<Box> boxes = Decode(raw, nc, kpts, 0.25f, ratio, left, top);
  if (raw_out) *raw_out = std::move(raw);
  return boxes;
}

// Same class and IoU >= 0.9 for >= 97% of the square path's detections (and the rect path
// has no more than 3% extra).
void ExpectRectMatchesSquare(const std::vector<Box>& square, const std::vector<Box>& rect,
                             double* matched_fraction = nullptr, float* kpt_err = nullptr) {
  ASSERT_FALSE(square.empty());
  std::vector<bool> used(rect.size(), false);
  int matched = 0;
  float worst_kpt = 0;
  for (const Box& s : square) {
    int best = -1;
    float best_iou = 0.9f;
    for (size_t j = 0; j < rect.size(); ++j) {
      if (used[j] || rect[j].cls != s.cls) continue;
      if (const float iou = Iou(s, rect[j]); iou >= best_iou)
        best = static_cast<int>(j), best_iou = iou;
    }
    if (best < 0) continue;
    used[best] = true;
    ++matched;
    const Box& r = rect[best];
    for (size_t k = 0; k + 2 < s.kpts.size(); k += 3) {
      if (s.kpts[k + 2] < 0.5f || r.kpts[k + 2] < 0.5f) continue;  // invisible keypoints
      worst_kpt =
          std::max(worst_kpt, std::hypot(s.kpts[k] - r.kpts[k], s.kpts[k + 1] - r.kpts[k + 1]));
    }
  }
  const double fraction = static_cast<double>(matched) / square.size();
  EXPECT_GE(fraction, 0.97) << matched << " of " << square.size() << " square detections matched";
  EXPECT_LE(rect.size(), square.size() + std::max<size_t>(1, square.size() * 3 / 100));
  if (matched_fraction) *matched_fraction = fraction;
  if (kpt_err) *kpt_err = worst_kpt;
}

// ---- Conversion of the sample models ---------------------------------------------------

struct Sample {
  const char* stem;
  int nc, kpts, extra_rows;
};

class DynamicShapeModelTest : public ::testing::TestWithParam<Sample> {};

TEST_P(DynamicShapeModelTest, ConvertsAndMatchesTheSquarePathAtARectLetterbox) {
  const Sample p = GetParam();
  const std::string path = Asset(std::string("models/") + p.stem + ".onnx");
  const std::vector<uint8_t> original = ReadAll(path);
  const DynamicShapeResult result = MakeShapeDynamic(original, path);
  const DynamicShapeReport& r = result.report;
  EXPECT_NE(r.input.find("height, width]"), std::string::npos) << r.input;
  EXPECT_GE(r.anchor_constants, 2);
  EXPECT_LE(r.max_diff_at_export, 1e-4);
  EXPECT_EQ(r.other_sizes.size(), 3u);
  std::printf("%s: %d anchor constants, %d reshapes, max |diff| at %lldx%lld %.3g\n", p.stem,
              r.anchor_constants, r.reshapes_rewritten, static_cast<long long>(r.export_height),
              static_cast<long long>(r.export_width), r.max_diff_at_export);

  // Metadata: the Ultralytics keys survive, the conversion is recorded, the model loads as
  // dynamic (so the predictor letterboxes to the minimal rect).
  onnx::ModelProto before, after;
  ASSERT_TRUE(before.ParseFromArray(original.data(), static_cast<int>(original.size())));
  ASSERT_TRUE(after.ParseFromArray(result.bytes.data(), static_cast<int>(result.bytes.size())));
  std::map<std::string, std::string> meta_after;
  for (const auto& m : after.metadata_props()) meta_after[m.key()] = m.value();
  for (const auto& m : before.metadata_props())
    EXPECT_EQ(meta_after[m.key()], m.value()) << m.key();
  EXPECT_NE(meta_after["cvdeploy_optimizations"].find("\"dynamic-shape\""), std::string::npos);
  const auto converted = Predictor::LoadFromMemory(result.bytes, "converted");
  EXPECT_TRUE(converted->meta().dynamic);
  EXPECT_EQ(converted->meta().imgsz_h, static_cast<int>(r.export_height));

  // bus.jpg 810x1080: square 640 on the original vs the 480x640 rect on the converted model.
  const int imgsz = static_cast<int>(r.export_height);
  const cv::Mat img = cv::imread(Asset("images/bus.jpg"));
  ASSERT_FALSE(img.empty());
  const cv::Size rect = RectSize(img, imgsz, 32);
  if (imgsz == 640) {
    EXPECT_EQ(rect, cv::Size(480, 640));
  }
  RawOutputs raw_rect;
  const std::vector<Box> square = DetectAt(original, img, {imgsz, imgsz}, p.nc, p.kpts);
  const std::vector<Box> rectangular = DetectAt(result.bytes, img, rect, p.nc, p.kpts, &raw_rect);
  const int64_t expected_anchors = (rect.height / 8) * (rect.width / 8) +
                                   (rect.height / 16) * (rect.width / 16) +
                                   (rect.height / 32) * (rect.width / 32);
  EXPECT_EQ(raw_rect.shapes[0],
            (std::vector<int64_t>{1, 4 + p.nc + p.extra_rows, expected_anchors}));
  if (raw_rect.shapes.size() > 1) {  // segment prototypes follow the input at 1/4
    EXPECT_EQ(raw_rect.shapes[1], (std::vector<int64_t>{1, 32, rect.height / 4, rect.width / 4}));
  }
  double fraction = 0;
  float kpt_err = 0;
  ExpectRectMatchesSquare(square, rectangular, &fraction, &kpt_err);
  std::printf("%s: %zu square / %zu rect detections, %.1f%% matched, worst keypoint %.1f px\n",
              p.stem, square.size(), rectangular.size(), 100 * fraction, kpt_err);
  if (p.kpts) {
    EXPECT_LT(kpt_err, 15.f);  // pixels of the 810x1080 image
  }
}

INSTANTIATE_TEST_SUITE_P(
    SampleModels, DynamicShapeModelTest,
    ::testing::Values(Sample{"yolov8n-dq", 80, 0, 0}, Sample{"yolo11n-dq", 80, 0, 0},
                      Sample{"yolov8n-seg-dq", 80, 0, 32}, Sample{"yolo11n-pose-dq", 1, 17, 51},
                      Sample{"yolov8n_int8", 80, 0, 0}, Sample{"yolo11n_int8_320", 80, 0, 0}),
    [](const auto& info) {
      std::string name = info.param.stem;
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

// ---- Failure paths -----------------------------------------------------------------------

void ExpectRefused(const std::vector<uint8_t>& bytes, const std::string& reason) {
  try {
    MakeShapeDynamic(bytes, "model.onnx");
    ADD_FAILURE() << "converted; expected a refusal with: " << reason;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("model.onnx: ", 0), 0u) << what;
    EXPECT_NE(what.find(reason), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(DynamicShapeRefusalTest, AlreadyDynamicModel) {
  const auto once = MakeShapeDynamic(ReadAll(Asset("models/yolov8n-dq.onnx")), "x").bytes;
  ExpectRefused(once,
                "cannot make height/width dynamic: input 'images' already has a dynamic "
                "height/width (images [1, 3, height, width])");
}

TEST(DynamicShapeRefusalTest, ModelWithoutUltralyticsMetadata) {
  onnx::ModelProto m;
  const auto bytes = ReadAll(Asset("models/yolov8n-dq.onnx"));
  ASSERT_TRUE(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  m.clear_metadata_props();
  std::vector<uint8_t> stripped(m.ByteSizeLong());
  ASSERT_TRUE(m.SerializeToArray(stripped.data(), static_cast<int>(stripped.size())));
  ExpectRefused(stripped, "not an Ultralytics export (no 'task' and 'stride' metadata)");
}

TEST(DynamicShapeRefusalTest, NonYoloGraph) {
  ExpectRefused(BuildNonYoloModel(), "is not an NCHW image tensor of rank 4");
}

TEST(DynamicShapeRefusalTest, ClassifyModelNeedsNone) {
  SyntheticModel m;
  m.input_shape = {1, 3, 224, 224};
  m.outputs = {{"output0", {1, 2}, {0.25f, 0.75f}}};
  m.metadata = UltralyticsMetadata("classify", {"cat", "dog"}, 224, 224);
  ExpectRefused(BuildModel(m), "a classify model needs no rewrite");
}

TEST(DynamicShapeRefusalTest, HeadWithoutAnchorsIsRefused) {
  SyntheticModel m;
  m.input_shape = {1, 3, 64, 64};
  m.outputs = {{"output0", {1, 6, 2}, std::vector<float>(12, 0.5f)}};
  m.metadata = UltralyticsMetadata("detect", {"a", "b"});
  ExpectRefused(BuildModel(m), "no output has 84 anchors");
}

TEST(DynamicShapeRefusalTest, NotOnnx) {
  const std::vector<uint8_t> junk = {'n', 'o', 't', ' ', 'o', 'n', 'n', 'x'};
  try {
    MakeShapeDynamic(junk, "junk.onnx");
    ADD_FAILURE() << "converted junk";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
  }
}

// ---- The command ---------------------------------------------------------------------------

TEST(CliConvertDynamicTest, DynamicMakesBatchAndSpatialAxesDynamic) {
  const std::string dir = MakeTempDir("cli-convert-dynamic");
  const std::string out = dir + "/v8.onnx";
  const ProcessResult run =
      RunCli({"convert", "--model", Asset("models/yolov8n-dq.onnx"), "--output", out, "--dynamic"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("input      images [batch, 3, height, width]"), std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("verified   runs at 480x640 (HxW): output0 [1, 84, 6300]"), std::string::npos)
      << run.out;
  const auto model = Predictor::Load(out);
  EXPECT_TRUE(model->meta().dynamic);
  EXPECT_EQ(model->meta().batch, -1);
  // A batch of two rect images through the converted graph.
  const std::vector<float> image(2 * 3 * 480 * 640, 0.5f);
  const std::vector<Predictor::Output> outputs =
      model->Infer(TensorView(DataType::kFloat32, {2, 3, 480, 640}, image.data()));
  EXPECT_EQ(outputs.at(0).tensor.shape(), (std::vector<int64_t>{2, 84, 6300}));

  const ProcessResult info = RunCli({"info", out});
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("height"), std::string::npos) << info.out;
  std::filesystem::remove_all(dir);
}

TEST(CliConvertDynamicTest, RefusalIsOneLineAndExitCode3) {
  const std::string dir = MakeTempDir("cli-convert-dynamic-refuse");
  const std::string once = dir + "/once.onnx";
  ASSERT_EQ(RunCli({"convert", "--model", Asset("models/yolo11n-dq.onnx"), "--output", once,
                    "--dynamic-shape"})
                .exit_code,
            0);
  const ProcessResult twice = ExpectCliError(
      {"convert", "--model", once, "--output", dir + "/twice.onnx", "--dynamic-shape"}, 3,
      "already has a dynamic height/width");
  EXPECT_FALSE(std::filesystem::exists(dir + "/twice.onnx"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cvdeploy::testing
