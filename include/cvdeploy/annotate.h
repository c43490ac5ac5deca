// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <opencv2/core.hpp>

#include "cvdeploy/types.h"

namespace cvdeploy {

// Draws a result onto the BGR image it was computed from: boxes and labels with
// confidence, translucent masks, keypoint skeletons, rotated boxes, top-5 for classify.
void Annotate(cv::Mat& bgr, const Result& result);

}  // namespace cvdeploy
