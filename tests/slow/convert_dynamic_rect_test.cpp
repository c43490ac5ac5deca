// SPDX-License-Identifier: Apache-2.0
// `convert --dynamic-shape` on the six sample models: the converted graph reproduces the
// original at the export size; at the minimal rect letterbox (bus.jpg -> 480 wide x 640 high)
// its raw outputs, decoded by the plain decoder of THIS file (independent of the library's
// postprocessing), are checked against the anchor structure and matched to the square path
// on bus.jpg, zidane.jpg and 16 coco128 images. Slow: ~4 min on a loaded 2-core machine.
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
                        int pad_left, int pad_top, cv::Size image) {
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
    // Boxes clipped to the image (as Ultralytics' scale_boxes): the square letterbox's padding
    // lets a box run past the image edge where the rect one has no room.
    auto cx = [&](float x) { return std::clamp(mx(x), 0.f, static_cast<float>(image.width)); };
    auto cy = [&](float y) { return std::clamp(my(y), 0.f, static_cast<float>(image.height)); };
    b.x1 = cx(b.x1), b.x2 = cx(b.x2), b.y1 = cy(b.y1), b.y2 = cy(b.y2);
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
  std::vector<Box> boxes = Decode(raw, nc, kpts, 0.25f, ratio, left, top, img.size());
  if (raw_out) *raw_out = std::move(raw);
  return boxes;
}

// Counts the square path's detections that have a same-class partner with IoU >= 0.9 in the
// rect path; keypoint distances of the matched pairs (visible on both sides) go to `kpt_err`.
struct MatchCount {
  int square = 0, rect = 0, matched = 0;
  int confident = 0, confident_matched = 0;  // square detections with confidence >= 0.5
  std::vector<float> kpt_err;
};

void CountMatches(const std::vector<Box>& square, const std::vector<Box>& rect, MatchCount& m) {
  std::vector<bool> used(rect.size(), false);
  m.square += static_cast<int>(square.size());
  m.rect += static_cast<int>(rect.size());
  for (const Box& s : square) {
    int best = -1;
    float best_iou = 0.9f;
    for (size_t j = 0; j < rect.size(); ++j) {
      if (used[j] || rect[j].cls != s.cls) continue;
      if (const float iou = Iou(s, rect[j]); iou >= best_iou) {
        best = static_cast<int>(j), best_iou = iou;
      }
    }
    m.confident += s.conf >= 0.5f ? 1 : 0;
    if (best < 0) continue;
    used[best] = true;
    ++m.matched;
    m.confident_matched += s.conf >= 0.5f ? 1 : 0;
    const Box& r = rect[best];
    for (size_t k = 0; k + 2 < s.kpts.size(); k += 3) {
      if (s.kpts[k + 2] < 0.5f || r.kpts[k + 2] < 0.5f) continue;  // invisible keypoints
      m.kpt_err.push_back(std::hypot(s.kpts[k] - r.kpts[k], s.kpts[k + 1] - r.kpts[k + 1]));
    }
  }
}

// Structure of the decoded boxes at any size: anchor j of a level with stride s sits at
// ((x + 0.5) s, (y + 0.5) s), and DFL distances are within [0, 15] strides, so every box
// contains its anchor point and reaches at most 15 strides from it. Anchors or strides baked
// for another size break this for most boxes.
void ExpectBoxesAroundTheirAnchors(const RawOutputs& raw, int64_t height, int64_t width) {
  const int64_t n = raw.shapes.at(0)[2];
  const std::vector<float>& v = raw.values[0];
  int64_t j = 0, bad = 0;
  for (int64_t s : {8, 16, 32}) {
    for (int64_t y = 0; y < height / s; ++y) {
      for (int64_t x = 0; x < width / s; ++x, ++j) {
        ASSERT_LT(j, n);
        const float ax = (x + 0.5f) * s, ay = (y + 0.5f) * s, tol = 0.01f * s;
        const float cx = v[j], cy = v[n + j], w = v[2 * n + j], h = v[3 * n + j];
        const float l = ax - (cx - w / 2), t = ay - (cy - h / 2);
        const float r = (cx + w / 2) - ax, b = (cy + h / 2) - ay;
        for (float d : {l, t, r, b}) bad += (d < -tol || d > 15.f * s + tol) ? 1 : 0;
      }
    }
  }
  EXPECT_EQ(j, n);
  EXPECT_EQ(bad, 0) << "box sides not within [0, 15] strides of their anchor";
}

// ---- Conversion of the sample models ---------------------------------------------------

struct Sample {
  const char* stem;
  int nc, kpts, extra_rows;
  // Least fraction of the square path's conf >= 0.5 detections matched. Measured on these 18
  // images: 98.1% (v8 float and int8), 100% (11 float and int8), 95.6% seg (2 of 45 missed),
  // 95% pose (1 of 20): too few boxes for 97% to survive one edge case.
  double min_confident;
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

  // bus.jpg 810x1080: square 640 on the original vs the 480x640 rect on the converted model;
  // then zidane.jpg and the first coco128 images, matched in aggregate. The rect letterbox
  // changes what the convolutions see at the image border (no grey padding), so boxes near the
  // confidence threshold or cut by the image edge legitimately move: measured 88-91% of the
  // conf >= 0.25 detections matched at IoU >= 0.9 (the unmatched ones: confidence 0.25-0.48,
  // IoU 0.6-0.89 or under the threshold on the other side; one 0.71 box at IoU 0.886), and
  // >= 97% of the conf >= 0.5 ones. The exactness of the rewrite itself is checked by
  // ExpectBoxesAroundTheirAnchors and by the bit-identical outputs at the export size.
  const int imgsz = static_cast<int>(r.export_height);
  std::vector<std::string> images = {Asset("images/bus.jpg"), Asset("images/zidane.jpg")};
  std::vector<std::string> coco;
  for (const auto& e : std::filesystem::directory_iterator(Asset("datasets/coco128/images"))) {
    coco.push_back(e.path().string());
  }
  std::sort(coco.begin(), coco.end());
  coco.resize(std::min<size_t>(coco.size(), 16));
  images.insert(images.end(), coco.begin(), coco.end());
  MatchCount m;
  for (size_t i = 0; i < images.size(); ++i) {
    SCOPED_TRACE(images[i]);
    const cv::Mat img = cv::imread(images[i]);
    ASSERT_FALSE(img.empty());
    const cv::Size rect = RectSize(img, imgsz, 32);
    if (i == 0 && imgsz == 640) {
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
    ExpectBoxesAroundTheirAnchors(raw_rect, rect.height, rect.width);
    CountMatches(square, rectangular, m);
  }
  ASSERT_GT(m.square, 0);
  ASSERT_GT(m.confident, 0);
  const double fraction = static_cast<double>(m.matched) / m.square;
  const double confident = static_cast<double>(m.confident_matched) / m.confident;
  std::sort(m.kpt_err.begin(), m.kpt_err.end());
  const float kpt_median = m.kpt_err.empty() ? 0.f : m.kpt_err[m.kpt_err.size() / 2];
  std::printf(
      "%s: %zu images, %d square / %d rect detections (conf >= 0.25), %.1f%% matched (same "
      "class, IoU >= 0.9); conf >= 0.5: %d, %.1f%% matched; median keypoint distance %.1f px "
      "over %zu\n",
      p.stem, images.size(), m.square, m.rect, 100 * fraction, m.confident, 100 * confident,
      kpt_median, m.kpt_err.size());
  EXPECT_GE(confident, p.min_confident);
  EXPECT_GE(fraction, p.kpts ? 0.70 : 0.85);  // pose: 29 people, 7 of them small or cut
  EXPECT_LE(std::abs(m.rect - m.square), std::max(2, m.square / 10));
  if (p.kpts) {
    EXPECT_GT(m.kpt_err.size(), 10u);
    EXPECT_LT(kpt_median, 4.f);  // original image pixels
  }
}

INSTANTIATE_TEST_SUITE_P(SampleModels, DynamicShapeModelTest,
                         ::testing::Values(Sample{"yolov8n-dq", 80, 0, 0, 0.97},
                                           Sample{"yolo11n-dq", 80, 0, 0, 0.97},
                                           Sample{"yolov8n-seg-dq", 80, 0, 32, 0.93},
                                           Sample{"yolo11n-pose-dq", 1, 17, 51, 0.9},
                                           Sample{"yolov8n_int8", 80, 0, 0, 0.97},
                                           Sample{"yolo11n_int8_320", 80, 0, 0, 0.97}),
                         [](const auto& info) {
                           std::string name = info.param.stem;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// The predictor letterboxes each single image to its own rect (bus.jpg 480x640, zidane.jpg
}  // namespace
}  // namespace cvdeploy::testing
