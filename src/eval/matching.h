// SPDX-License-Identifier: Apache-2.0
// Assignment of predictions to labels within one image, at every COCO threshold.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace cvdeploy::eval {

// `similarity` is a num_labels x num_predictions row-major matrix (IoU, mask IoU or OKS).
// For each threshold t of kThresholds, pairs of equal class with similarity >= t are taken
// in order of decreasing similarity (ties: earlier prediction, then earlier label) and
// assigned when both are still free. Returns, per prediction, a bitmask whose bit t says it
// is a true positive at kThresholds[t]. Sorting happens once per image, so the cost is
// O(P log P + 10 P) for P candidate pairs.
std::vector<uint16_t> MatchGreedy(std::span<const double> similarity,
                                  std::span<const int> label_classes,
                                  std::span<const int> prediction_classes);

}  // namespace cvdeploy::eval
