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

// Both mask functions write a binary instance mask of one detection: on return `roi` is the
// integer pixel rect of the original image that can hold foreground and `mask` a CV_8U 0/255
// image of roi.size() (both empty when nothing can be foreground). `coeffs` holds
// `protos.channels` mask coefficients. Bilinear sampling everywhere follows
// F.interpolate(mode="bilinear", align_corners=False): half-pixel centres, source positions
// below 0 clamped to 0, the last row/column repeated.

// Ultralytics' default (predict without retina_masks: process_mask with upsample=True, then
// scale_masks to the original image). `input_box` is the detection's box in network-input
// pixels, not clipped. Steps:
//   1. logits = coeffs . protos, at prototype resolution;
//   2. crop there: cell (c, r) is kept when x1*rw <= c < x2*rw and y1*rh <= r < y2*rh
//      (rw = proto width / input width), every other cell becomes logit 0;
//   3. bilinear upsampling to the input size, foreground where the logit > 0 (sigmoid > 0.5);
//   4. the unpadded part of that mask (scale_masks: pad = (input - src * gain) / 2, cut at
//      round(pad - 0.1) and input - round(pad + 0.1)) resized bilinearly to the original
//      image, foreground where the value > 0.5.
// Because the crop happens on the coarse grid before upsampling, foreground may reach up to
// about 1.5 prototype cells (6 input pixels at stride 4) past the box, as in Ultralytics.
// Only the region those steps can make foreground is evaluated.
void ComputeMask(const Prototypes& protos, std::span<const float> coeffs, const BoxXYXY& input_box,
                 const LetterboxInfo& lb, cv::Mat& mask, cv::Rect& roi);

// The full-resolution rule (`--retina-masks`, Ultralytics' process_mask_native in spirit):
// `image_box` is the detection's box in original-image pixels, already clipped to the image.
// The logits are evaluated on the prototype cells the box needs, sampled bilinearly at each
// original pixel centre mapped through the letterbox, and thresholded at 0 (sigmoid > 0.5).
// Pixels whose centre lies outside `image_box` are 0 (the crop, at full resolution).
void ComputeMaskRetina(const Prototypes& protos, std::span<const float> coeffs,
                       const BoxXYXY& image_box, const LetterboxInfo& lb, cv::Mat& mask,
                       cv::Rect& roi);

// The outline of one mask.
struct MaskOutline {
  // Ultralytics' masks2segments with its default strategy "all": the only outer contour, or
  // every outer contour joined into one path by MergeSegments. Empty for an empty mask.
  std::vector<cv::Point> polygon;
  // The outer contours sorted by area, largest first (ties: more points first); only the
  // largest unless `all_parts`.
  std::vector<std::vector<cv::Point>> parts;
};

// Outer contours of `mask` (RETR_EXTERNAL, CHAIN_APPROX_SIMPLE) shifted by `offset`.
MaskOutline OutlineMask(const cv::Mat& mask, cv::Point offset, bool all_parts);

// Ultralytics' merge_multi_segment (data/converter.py), the rule masks2segments uses: the
// contours, in findContours order, are chained by the closest pair of points between each
// and the next; the walk goes forward through every contour to the last and back through the
// middle ones, so that the parts are joined by zero-width bridges into one closed path. The
// concatenation of its pieces is returned. One contour comes back unchanged.
std::vector<cv::Point> MergeSegments(std::vector<std::vector<cv::Point>> segments);

}  // namespace cvdeploy::vision
