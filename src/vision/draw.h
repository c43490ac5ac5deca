// SPDX-License-Identifier: Apache-2.0
// Drawing of results onto the image they came from (the `--save` / preview output).
#pragma once

#include <opencv2/core.hpp>

#include "cvdeploy/types.h"

namespace cvdeploy::vision {

// Draws `result` onto `bgr` in place: translucent masks, boxes (rotated boxes as polygons)
// with "name 0.87" labels in a colour per class, pose keypoints (the COCO-17 skeleton when
// there are 17 points; points with visibility < 0.5 are skipped) and, for classification,
// the top-5 list as text. Gray (CV_8UC1) and BGRA images are converted to BGR first; other
// depths are left untouched. Coordinates outside the image are clipped, never an error.
void Annotate(cv::Mat& bgr, const Result& result);

// The colour (BGR) used for a class id; stable across calls.
cv::Scalar ClassColor(int class_id);

}  // namespace cvdeploy::vision
