// SPDX-License-Identifier: Apache-2.0
// Box IoU and keypoint OKS between labels and predictions, in pixels of one image.
#pragma once

#include <span>
#include <vector>

#include "cvdeploy/types.h"

namespace cvdeploy::eval {

// Intersection over union of two axis-aligned boxes in pixels, in double, as Ultralytics'
// metrics compute it: intersection / (union + 1e-7), so empty boxes give 0 instead of NaN.
// (vision::AxisAlignedIou, for NMS, is the float one without the epsilon.)
double AxisAlignedIouWithEpsilon(const BoxXYXY& a, const BoxXYXY& b);

// Ultralytics' OKS_SIGMA for COCO's 17 person keypoints; 1/K each for any other K.
std::vector<double> KeypointSigmas(size_t num_keypoints);

// Object keypoint similarity as COCO (and Ultralytics kpt_iou) define it:
// mean over label keypoints with visibility > 0 of exp(-d^2 / ((2 sigma)^2 (area + eps) 2)).
// `area` is the caller's object scale (Ultralytics: label box area * 0.53). Prediction
// keypoints missing from `prediction` count as 0. No visible label keypoint gives 0.
double Oks(std::span<const Keypoint> label, std::span<const Keypoint> prediction, double area,
           std::span<const double> sigmas);

}  // namespace cvdeploy::eval
