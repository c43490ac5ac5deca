// SPDX-License-Identifier: Apache-2.0
// Ultralytics-identical letterbox: resize keeping aspect ratio (INTER_LINEAR), pad with
// 114 centred (top = round(dh - 0.1), bottom = round(dh + 0.1)), BGR->RGB, /255, NCHW.
#pragma once

#include <opencv2/core.hpp>

#include "cvdeploy/types.h"

namespace cvdeploy::vision {

// The public geometry type (cvdeploy/types.h) under its historical vision name.
using LetterboxInfo = cvdeploy::Letterbox;

// Computes the geometry for `src` (both sides >= 1) into `dst`. Each resized side is at least
// one pixel, so very thin images (1x20000) letterbox instead of failing in cv::resize. With
// `auto_stride` > 0 (dynamic models, "rect" inference) dst is shrunk to the smallest stride
// multiple that holds the image.
LetterboxInfo ComputeLetterbox(cv::Size src, cv::Size dst, int auto_stride = 0);

// The same resized image centred in a larger `canvas` (each side >= the geometry's own dst),
// with Ultralytics' split of the padding: a batch of rect letterboxes of different shapes
// padded to one shape. The scale and resized size are unchanged, so an image's detections do
// not depend on the other images of its batch beyond the extra padding.
LetterboxInfo PadLetterbox(const LetterboxInfo& info, cv::Size canvas);

// Writes the letterboxed, normalized RGB image as planar float32 into `chw`, which must
// hold 3 * info.dst.area() floats. `scratch` is reused between calls to avoid allocations.
// `threads` > 1 splits the rows over OpenCV's thread pool (for a caller whose engine threads
// sit idle during preprocessing); the output does not depend on it.
void LetterboxToTensor(const cv::Mat& bgr, const LetterboxInfo& info, float* chw, cv::Mat& scratch,
                       int threads = 1);

}  // namespace cvdeploy::vision
