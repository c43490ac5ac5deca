// SPDX-License-Identifier: Apache-2.0
// Mapping a result from a reduced-resolution decode back to the original image.
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "cvdeploy/predictor.h"

namespace cvdeploy {

void RescaleResult(Result& result, cv::Size original) {
  if (result.width <= 0 || result.height <= 0) return;
  if (original.width == result.width && original.height == result.height) return;
  const float sx = static_cast<float>(original.width) / result.width;
  const float sy = static_cast<float>(original.height) / result.height;
  const cv::Rect image_rect(0, 0, original.width, original.height);
  for (Detection& d : result.detections) {
    d.box = {std::min(d.box.x1 * sx, static_cast<float>(original.width)),
             std::min(d.box.y1 * sy, static_cast<float>(original.height)),
             std::min(d.box.x2 * sx, static_cast<float>(original.width)),
             std::min(d.box.y2 * sy, static_cast<float>(original.height))};
    if (d.rotated) {
      // Reduction factors are equal on both axes up to libjpeg's rounding, so the angle stays.
      d.rotated->cx *= sx;
      d.rotated->cy *= sy;
      d.rotated->w *= sx;
      d.rotated->h *= sy;
    }
    for (Keypoint& k : d.keypoints) {
      k.x *= sx;
      k.y *= sy;
    }
    const auto scale = [&](std::vector<cv::Point>& polygon) {
      for (cv::Point& p : polygon) {
        p.x = static_cast<int>(std::lround(p.x * sx));
        p.y = static_cast<int>(std::lround(p.y * sy));
      }
    };
    scale(d.polygon);
    for (auto& polygon : d.polygons) scale(polygon);
    if (!d.mask.empty()) {
      cv::Rect roi(static_cast<int>(std::floor(d.mask_roi.x * sx)),
                   static_cast<int>(std::floor(d.mask_roi.y * sy)),
                   static_cast<int>(std::ceil(d.mask_roi.width * sx)),
                   static_cast<int>(std::ceil(d.mask_roi.height * sy)));
      roi &= image_rect;
      if (roi.area() > 0) {
        cv::Mat scaled;
        cv::resize(d.mask, scaled, roi.size(), 0, 0, cv::INTER_NEAREST);
        d.mask = scaled;
        d.mask_roi = roi;
      } else {
        d.mask.release();
        d.mask_roi = {};
      }
    }
  }
  result.width = original.width;
  result.height = original.height;
}

}  // namespace cvdeploy
