// SPDX-License-Identifier: Apache-2.0
#include "eval/matching.h"

#include <algorithm>

#include "eval/average_precision.h"

namespace cvdeploy::eval {

std::vector<uint16_t> MatchGreedy(std::span<const double> similarity,
                                  std::span<const int> label_classes,
                                  std::span<const int> prediction_classes) {
  const size_t num_labels = label_classes.size();
  const size_t num_predictions = prediction_classes.size();
  std::vector<uint16_t> tp(num_predictions, 0);

  struct Pair {
    double similarity;
    size_t label;
    size_t prediction;
  };
  std::vector<Pair> pairs;
  // Prediction-major insertion plus a stable sort gives the documented tie order.
  for (size_t p = 0; p < num_predictions; ++p) {
    for (size_t l = 0; l < num_labels; ++l) {
      const double s = similarity[l * num_predictions + p];
      if (label_classes[l] == prediction_classes[p] && s >= kThresholds[0]) {
        pairs.push_back({s, l, p});
      }
    }
  }
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const Pair& a, const Pair& b) { return a.similarity > b.similarity; });

  std::vector<char> label_used(num_labels), prediction_used(num_predictions);
  for (int t = 0; t < kNumThresholds; ++t) {
    std::fill(label_used.begin(), label_used.end(), 0);
    std::fill(prediction_used.begin(), prediction_used.end(), 0);
    for (const Pair& pair : pairs) {
      if (pair.similarity < kThresholds[t]) break;  // sorted: the rest are lower
      if (label_used[pair.label] || prediction_used[pair.prediction]) continue;
      label_used[pair.label] = 1;
      prediction_used[pair.prediction] = 1;
      tp[pair.prediction] |= static_cast<uint16_t>(1u << t);
    }
  }
  return tp;
}

}  // namespace cvdeploy::eval
