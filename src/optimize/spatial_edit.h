// SPDX-License-Identifier: Apache-2.0
// Makes the height and width of a fixed-shape Ultralytics export symbolic, so that one model
// runs on any stride-aligned letterbox (rectangular inference). Edited through the ONNX
// protobuf classes and verified with ONNX Runtime before it is returned.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cvdeploy/tools.h"  // DynamicShapeReport

namespace cvdeploy::optimize {

// What an Ultralytics export bakes for its export size HxW, and what replaces it:
//  - float constants whose last axis has one entry per anchor (N = sum over the strides s of
//    ceil(H/s)*ceil(W/s)): the anchor grid (x + o, y + o), possibly times the stride, and the
//    per-anchor strides. They become a subgraph Shape(input) -> Slice -> Div -> Range ->
//    Expand -> Concat computing the same values for the size of each run;
//  - Reshape targets holding N or a level's h*w (DFL, head concat, attention) get -1 there;
//    a target ending in a level's (h, w) (the attention block's reshape back to a map) takes
//    them from the input's shape at run time.
// The graph input's axes 2 and 3 become "height" and "width", output axes of N anchors
// "anchors", and a rank-4 output's map axes (segment prototypes) "mask_height"/"mask_width".
// Composes with MakeBatchDynamic (run that first). Throws Error(kBadInput) "NAME: cannot make
// height/width dynamic: REASON" when the bytes are not an ONNX model, the model is not an
// Ultralytics detect/segment/pose/OBB export (classify needs no rewrite), height/width are
// already dynamic, a constant depends on the export size in a way this rewrite does not know,
// or the converted model, run by ONNX Runtime, does not reproduce the original's outputs at
// the export size (max |diff| <= 1e-4) or gives outputs of the wrong shape at other sizes.
// The result passes the ONNX checker and strict shape inference (else Error(kRuntime)).
std::vector<uint8_t> MakeSpatialDynamic(const std::vector<uint8_t>& model_bytes,
                                        const std::string& name, DynamicShapeReport* report);

// Runs `converted` at the export size against `original` and at other sizes (480x640,
// 384x640, 320x320) and fills the verification fields of `report` (whose export size and
// strides must be set). Throws Error(kBadInput) as above.
void VerifyDynamicShape(const std::vector<uint8_t>& original, const std::vector<uint8_t>& converted,
                        const std::string& name, DynamicShapeReport& report);

}  // namespace cvdeploy::optimize
