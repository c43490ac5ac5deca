// SPDX-License-Identifier: Apache-2.0
// Drawing of results onto the image they came from (the `--save` / preview output), with
// Ultralytics' palette and rules (ultralytics/utils/plotting.py: Colors, Annotator).
#pragma once

#include <array>
#include <utility>

#include <opencv2/core.hpp>

#include "cvdeploy/annotate.h"
#include "cvdeploy/types.h"

namespace cvdeploy::vision {

// Ultralytics' Colors palette as RGB hex (the order of its `hexs`).
inline constexpr std::array<unsigned, 20> kPaletteHex = {
    0x042AFF, 0x0BDBEB, 0xF3F3F3, 0x00DFB7, 0x111F68, 0xFF6FDD, 0xFF444F,
    0xCCED00, 0x00F344, 0xBD00FF, 0x00B4FF, 0xDD00BA, 0x00FFFF, 0x26C000,
    0x01FFB3, 0x7D24FF, 0x7B0068, 0xFF1B6C, 0xFC6D2F, 0xA2FF0B};

// COCO-17 limbs as pairs of 0-based keypoint indices, in Ultralytics' skeleton order.
// clang-format off
inline constexpr std::array<std::pair<int, int>, 19> kCocoSkeleton = {{
    {15, 13}, {13, 11}, {16, 14}, {14, 12}, {11, 12}, {5, 11}, {6, 12}, {5, 6}, {5, 7}, {6, 8},
    {7, 9}, {8, 10}, {1, 2}, {0, 1}, {0, 2}, {1, 3}, {2, 4}, {3, 5}, {4, 6}}};
// clang-format on

// Keypoints (and limbs touching them) below this visibility are not drawn.
inline constexpr float kMinKeypointVisibility = 0.5f;
// Joint radius of Results.plot(kpt_radius=5).
inline constexpr int kKeypointRadius = 5;

// cvdeploy::Annotate: draws `result` onto `bgr` in place: translucent masks (alpha 0.5,
// overlapping masks combined as Ultralytics' Annotator.masks), boxes (rotated boxes as
// polygons) with "name 0.87" tags in the class's palette colour, pose keypoints (the COCO-17
// skeleton with limb and joint colours by body part when there are 17 points; points with
// visibility < 0.5 are skipped) and, for classification, the top-5 list as text. Gray
// (CV_8UC1) and BGRA images are converted to BGR first; other depths are left untouched.
// Coordinates outside the image are clipped, never an error.
void DrawResult(cv::Mat& bgr, const Result& result, const AnnotateOptions& options);

// max(round((height + width + 3) / 2 * 0.003), 2), Python rounding (half to even).
int DefaultLineWidth(int width, int height);

// Limb thickness for line width `lw`: Ultralytics' ceil(lw / 2), at least 2 px.
int LimbThickness(int lw);

// The colour (BGR) used for a class id: Ultralytics' palette, period 20.
cv::Scalar ClassColor(int class_id);

// Ultralytics' pose palette entry used for limb `limb` (0..18) / joint `joint` (0..16) of
// the COCO-17 skeleton (face green, arms blue, legs orange, body pink).
cv::Scalar LimbColor(int limb);
cv::Scalar JointColor(int joint);

// The tag's text colour on a palette colour: dark (BGR 104,31,17) on the light palette
// entries, white on the others (Annotator.get_txt_color).
cv::Scalar TextColorOn(const cv::Scalar& bgr);

}  // namespace cvdeploy::vision
