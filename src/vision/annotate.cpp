// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/annotate.h"

#include "vision/draw.h"

namespace cvdeploy {

void Annotate(cv::Mat& bgr, const Result& result, const AnnotateOptions& options) {
  vision::DrawResult(bgr, result, options);
}

int DefaultLineWidth(int width, int height) { return vision::DefaultLineWidth(width, height); }

cv::Scalar PaletteColor(int class_id) { return vision::ClassColor(class_id); }

}  // namespace cvdeploy
