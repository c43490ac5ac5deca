// SPDX-License-Identifier: Apache-2.0
// Turns raw model outputs of one image into detections in original-image coordinates.
#pragma once

#include <cstdint>
#include <vector>

#include "cvdeploy/model.h"
#include "cvdeploy/options.h"
#include "cvdeploy/tensor.h"
#include "cvdeploy/types.h"
#include "vision/letterbox.h"

namespace cvdeploy::vision {

// Decodes batch item `b` of `outputs` (outputs[0] is the main head; outputs[1] the
// segmentation prototypes) according to meta.task / meta.layout. Applies the confidence
// threshold first and builds boxes only for survivors, then (class-aware unless agnostic)
// NMS, max_det, class filter; maps to original image pixels with `lb` and clips.
// Thread-safe (no shared state).
std::vector<Detection> Postprocess(const std::vector<TensorView>& outputs, int b,
                                   const ModelMeta& meta, const LetterboxInfo& lb,
                                   const PredictOptions& options);

}  // namespace cvdeploy::vision
