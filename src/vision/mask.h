// SPDX-License-Identifier: Apache-2.0
// Instance masks of segmentation models (prototypes x coefficients) and their polygons.
#pragma once

#include <span>
#include <vector>

#include <opencv2/core.hpp>

#include "cvdeploy/types.h"
#include "vision/letterbox.h"

namespace cvdeploy::vision {

// One image's prototype tensor [channels, height, width], row-major, float32, in the
// network-input frame downsampled by input_w / width (4 for Ultralytics).
struct Prototypes {
  const float* data = nullptr;
  int channels = 0, height = 0, width = 0;
};

// Binary instance mask of one detection, computed only inside its box.
// `coeffs` holds `protos.channels` mask coefficients; `image_box` is the detection's box in
// original-image pixels, already clipped to the image. The logits coeffs . protos are
// evaluated on the prototype cells the box needs, sampled bilinearly (half-pixel centres,
// edge clamped, as F.interpolate(align_corners=False)) at each original pixel centre mapped
// through the letterbox, and thresholded at 0 (sigmoid > 0.5). Pixels whose centre lies
// outside `image_box` are 0 (the crop). On return `roi` is the integer pixel rect covering
// the box and `mask` a CV_8U 0/255 image of roi.size() (both empty for an empty box).
void ComputeMask(const Prototypes& protos, std::span<const float> coeffs, const BoxXYXY& image_box,
                 const LetterboxInfo& lb, cv::Mat& mask, cv::Rect& roi);

// Outer contours of `mask` (RETR_EXTERNAL, CHAIN_APPROX_SIMPLE) shifted by `offset`, sorted
// by area descending; only the largest unless `all_contours`.
std::vector<std::vector<cv::Point>> MaskPolygons(const cv::Mat& mask, cv::Point offset,
                                                 bool all_contours);

}  // namespace cvdeploy::vision
