// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/annotate.h"

#include "vision/draw.h"

namespace cvdeploy {

void Annotate(cv::Mat& bgr, const Result& result) { vision::Annotate(bgr, result); }

}  // namespace cvdeploy
