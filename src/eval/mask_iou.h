// SPDX-License-Identifier: Apache-2.0
// Mask IoU at full image resolution without allocating full-size canvases: each mask is
// kept only over its own region of interest and overlaps are counted on the intersection.
#pragma once

#include <opencv2/core.hpp>

#include "cvdeploy/eval.h"
#include "cvdeploy/types.h"

namespace cvdeploy::eval {

// A binary mask over `roi` of a width x height canvas (roi lies inside the canvas).
struct RegionMask {
  cv::Rect roi;
  cv::Mat mask;     // CV_8U, roi.size(), nonzero = foreground
  double area = 0;  // foreground pixels
};

// The label's polygons (normalized) rasterized at full resolution; a pixel is foreground
// when its centre is inside (half-open, unlike cv::fillPoly, which adds a boundary pixel).
// A label without polygons falls back to its box so that mixed datasets still score.
RegionMask RasterizeLabel(const GroundTruth& label, int width, int height);

// Detection::mask placed at Detection::mask_roi and clipped to the canvas. A mask whose
// size differs from mask_roi is resized (nearest) to it; an empty mask has area 0.
RegionMask PredictionMask(const Detection& detection, int width, int height);

// |a and b| / (|a| + |b| - |a and b| + 1e-7), the Ultralytics mask_iou formula.
double MaskIou(const RegionMask& a, const RegionMask& b);

}  // namespace cvdeploy::eval
