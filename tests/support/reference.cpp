// SPDX-License-Identifier: Apache-2.0
#include "support/reference.h"

#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

namespace cvdeploy::testing {

std::vector<float> NaiveLetterbox(const cv::Mat& bgr, cv::Size dst, double* ratio, int* pad_left,
                                  int* pad_top, int stride, cv::Size* out_size) {
  const double r = std::min(static_cast<double>(dst.height) / bgr.rows,
                            static_cast<double>(dst.width) / bgr.cols);
  // round(side * r) as Ultralytics, but never 0 (cv::resize refuses an empty size).
  const int new_w = std::max(1, static_cast<int>(std::nearbyint(bgr.cols * r)));
  const int new_h = std::max(1, static_cast<int>(std::nearbyint(bgr.rows * r)));
  int pad_w = dst.width - new_w, pad_h = dst.height - new_h;
  if (stride > 0) {  // auto=True: dw, dh = np.mod(dw, stride), np.mod(dh, stride)
    pad_w = ((pad_w % stride) + stride) % stride;
    pad_h = ((pad_h % stride) + stride) % stride;
  }
  const double dw = pad_w / 2.0, dh = pad_h / 2.0;
  cv::Mat resized = bgr;
  if (bgr.cols != new_w || bgr.rows != new_h) {
    cv::resize(bgr, resized, cv::Size(new_w, new_h), 0, 0, cv::INTER_LINEAR);
  }
  const int top = static_cast<int>(std::nearbyint(dh - 0.1));
  const int bottom = static_cast<int>(std::nearbyint(dh + 0.1));
  const int left = static_cast<int>(std::nearbyint(dw - 0.1));
  const int right = static_cast<int>(std::nearbyint(dw + 0.1));
  cv::Mat padded, rgb;
  cv::copyMakeBorder(resized, padded, top, bottom, left, right, cv::BORDER_CONSTANT,
                     cv::Scalar(114, 114, 114));
  cv::cvtColor(padded, rgb, cv::COLOR_BGR2RGB);
  std::vector<float> chw(3 * static_cast<size_t>(rgb.rows) * rgb.cols);
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < rgb.rows; ++y) {
      for (int x = 0; x < rgb.cols; ++x) {
        chw[(static_cast<size_t>(c) * rgb.rows + y) * rgb.cols + x] =
            rgb.at<cv::Vec3b>(y, x)[c] / 255.0f;
      }
    }
  }
  if (ratio) *ratio = r;
  if (out_size) *out_size = rgb.size();
  if (pad_left) *pad_left = left;
  if (pad_top) *pad_top = top;
  return chw;
}

namespace {

float Iou(const RefDetection& a, const RefDetection& b) {
  const float iw = std::max(0.f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const float ih = std::max(0.f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const float inter = iw * ih;
  const float uni = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  return uni > 0 ? inter / uni : 0.f;
}

}  // namespace

std::vector<RefDetection> NaiveDetect(const std::string& model_path, const cv::Mat& bgr, float conf,
                                      float iou, int imgsz) {
  double r = 1;
  int pad_left = 0, pad_top = 0;
  std::vector<float> input = NaiveLetterbox(bgr, cv::Size(imgsz, imgsz), &r, &pad_left, &pad_top);

  static Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "reference");
  Ort::SessionOptions options;
  options.SetIntraOpNumThreads(2);
  Ort::Session session(env, model_path.c_str(), options);
  const std::vector<int64_t> shape = {1, 3, imgsz, imgsz};
  Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::Value in = Ort::Value::CreateTensor<float>(cpu, input.data(), input.size(), shape.data(), 4);
  const char* in_names[] = {"images"};
  const char* out_names[] = {"output0"};
  auto out = session.Run(Ort::RunOptions{nullptr}, in_names, &in, 1, out_names, 1);
  const auto out_shape = out[0].GetTensorTypeAndShapeInfo().GetShape();
  const int channels = static_cast<int>(out_shape[1]), anchors = static_cast<int>(out_shape[2]);
  const float* data = out[0].GetTensorData<float>();

  // Full transpose to [anchors][channels], then decode every row.
  std::vector<std::vector<float>> rows(anchors, std::vector<float>(channels));
  for (int c = 0; c < channels; ++c) {
    for (int a = 0; a < anchors; ++a) rows[a][c] = data[c * anchors + a];
  }
  std::vector<RefDetection> candidates;
  for (const auto& row : rows) {
    const auto best = std::max_element(row.begin() + 4, row.end());
    if (*best <= conf) continue;
    candidates.push_back({static_cast<int>(best - row.begin() - 4), *best, row[0] - row[2] / 2,
                          row[1] - row[3] / 2, row[0] + row[2] / 2, row[1] + row[3] / 2});
  }
  std::stable_sort(
      candidates.begin(), candidates.end(),
      [](const RefDetection& a, const RefDetection& b) { return a.confidence > b.confidence; });
  std::vector<RefDetection> kept;
  for (const RefDetection& c : candidates) {
    bool suppressed = false;
    for (const RefDetection& k : kept) {
      if (k.class_id == c.class_id && Iou(k, c) > iou) suppressed = true;
    }
    if (!suppressed) kept.push_back(c);
  }
  for (RefDetection& d : kept) {
    auto sx = [&](float x) {
      return std::clamp(static_cast<float>((x - pad_left) / r), 0.f, static_cast<float>(bgr.cols));
    };
    auto sy = [&](float y) {
      return std::clamp(static_cast<float>((y - pad_top) / r), 0.f, static_cast<float>(bgr.rows));
    };
    d = {d.class_id, d.confidence, sx(d.x1), sy(d.y1), sx(d.x2), sy(d.y2)};
  }
  return kept;
}

}  // namespace cvdeploy::testing
