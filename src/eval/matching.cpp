// SPDX-License-Identifier: Apache-2.0
#include "eval/matching.h"

#include <algorithm>
#include <numeric>

#include "eval/average_precision.h"

namespace cvdeploy::eval {

std::vector<uint16_t> MatchCocoStyle(std::span<const double> similarity,
                                     std::span<const int> label_classes,
                                     std::span<const int> prediction_classes,
                                     std::span<const float> prediction_confidences) {
  const size_t num_labels = label_classes.size();
  const size_t num_predictions = prediction_classes.size();
  std::vector<uint16_t> tp(num_predictions, 0);
  if (num_labels == 0 || num_predictions == 0) return tp;

  std::vector<size_t> order(num_predictions);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return prediction_confidences[a] > prediction_confidences[b];
  });

  std::vector<char> label_used(num_labels);
  for (int t = 0; t < kNumThresholds; ++t) {
    std::fill(label_used.begin(), label_used.end(), 0);
    for (size_t p : order) {
      double best = kThresholds[t];
      long best_label = -1;
      for (size_t l = 0; l < num_labels; ++l) {
        if (label_used[l] || label_classes[l] != prediction_classes[p]) continue;
        const double s = similarity[l * num_predictions + p];
        if (s >= best && (best_label < 0 || s > best)) {
          best = s;
          best_label = static_cast<long>(l);
        }
      }
      if (best_label >= 0) {
        label_used[static_cast<size_t>(best_label)] = 1;
        tp[p] |= static_cast<uint16_t>(1u << t);
      }
    }
  }
  return tp;
}

}  // namespace cvdeploy::eval
