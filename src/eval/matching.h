// SPDX-License-Identifier: Apache-2.0
// Assignment of predictions to labels within one image, at every COCO threshold.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace cvdeploy::eval {

// COCO-style matching (pycocotools evaluateImg): for each threshold t of kThresholds,
// predictions are visited in order of decreasing confidence (stable for ties), and each
// takes the still-unmatched label of its class with the highest similarity >= t (first
// such label on ties). `similarity` is a num_labels x num_predictions row-major matrix
// (IoU, mask IoU or OKS). Returns, per prediction, a bitmask whose bit t says it is a true
// positive at kThresholds[t]. Cost O(10 * P * L) per image.
//
// Why not "highest IoU first" (Ultralytics' match_predictions): at low confidence
// thresholds a low-score duplicate with a slightly better IoU would take the label from the
// high-score detection, turning the latter into a false positive; the COCO rule keeps the
// confident detection, which is what the AP curve (sorted by confidence) assumes.
std::vector<uint16_t> MatchCocoStyle(std::span<const double> similarity,
                                     std::span<const int> label_classes,
                                     std::span<const int> prediction_classes,
                                     std::span<const float> prediction_confidences);

}  // namespace cvdeploy::eval
