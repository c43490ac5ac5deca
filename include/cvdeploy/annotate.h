// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <opencv2/core.hpp>

#include "cvdeploy/types.h"

namespace cvdeploy {

// How annotated output is drawn; the defaults are Ultralytics' `yolo predict save=True`.
struct AnnotateOptions {
  int line_width = 0;  // box line width in pixels; 0: DefaultLineWidth of the image
  bool labels = true;  // false: boxes without the label tag (--hide-labels)
  bool conf = true;    // false: class names without scores (--hide-conf)
  // Classify's top-5 text is not a box label: as Ultralytics, `labels` and `conf` leave it.
};

// Draws a result onto the BGR image it was computed from, as Ultralytics' Results.plot():
// boxes in its 20-colour palette by class id with "name 0.87" tags, translucent masks, the
// COCO-17 pose skeleton coloured by body part, rotated boxes, top-5 text for classify.
void Annotate(cv::Mat& bgr, const Result& result, const AnnotateOptions& options = {});

// Ultralytics' default line width for a `width` x `height` BGR image:
// max(round((height + width + 3) / 2 * 0.003), 2) (its sum(im.shape) counts the 3 channels;
// Python's round, half to even).
int DefaultLineWidth(int width, int height);

// The palette colour (BGR) of a class id: Ultralytics' Colors()(id, bgr=True), period 20.
cv::Scalar PaletteColor(int class_id);

}  // namespace cvdeploy
