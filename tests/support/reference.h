// SPDX-License-Identifier: Apache-2.0
// Slow, obvious reference implementations that the optimized library is checked against.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace cvdeploy::testing {

// Ultralytics LetterBox step by step: resize, copyMakeBorder(114), BGR->RGB, /255, CHW.
// `stride` > 0 is LetterBox(auto=True, stride=stride): the padding of each side is taken
// modulo the stride (np.mod), so the output is (resized + that padding), not `dst`;
// `out_size` receives the output's size.
std::vector<float> NaiveLetterbox(const cv::Mat& bgr, cv::Size dst, double* ratio = nullptr,
                                  int* pad_left = nullptr, int* pad_top = nullptr, int stride = 0,
                                  cv::Size* out_size = nullptr);

struct RefDetection {
  int class_id;
  float confidence;
  float x1, y1, x2, y2;  // original image pixels, clipped
};

// Detect-model reference: naive letterbox, raw ONNX Runtime session, full transpose of
// [4+nc, N], per-class greedy NMS in O(n^2), rescale and clip. Sorted by confidence.
std::vector<RefDetection> NaiveDetect(const std::string& model_path, const cv::Mat& bgr, float conf,
                                      float iou, int imgsz = 640);

}  // namespace cvdeploy::testing
