// SPDX-License-Identifier: Apache-2.0
#include "eval/average_precision.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace cvdeploy::eval {
namespace {

// Ultralytics' confidence grid for the P/R/F1 curves: np.linspace(0, 1, 1000).
constexpr int kConfidenceGrid = 1000;
// Fraction of the grid used by the box filter before the F1 argmax (Ultralytics uses 0.1).
constexpr double kF1SmoothFraction = 0.1;

// np.linspace(0, 1, n)[i]: numpy computes i * step and pins the last value to 1 exactly.
double Linspace01(int i, int n) {
  return i == n - 1 ? 1.0 : static_cast<double>(i) * (1.0 / static_cast<double>(n - 1));
}

std::string ClassName(int class_id, const std::vector<std::string>& names) {
  if (class_id >= 0 && static_cast<size_t>(class_id) < names.size()) return names[class_id];
  return std::to_string(class_id);
}

}  // namespace

double Interp(double x, std::span<const double> xp, std::span<const double> fp, double left,
              double right) {
  const size_t n = xp.size();
  if (n == 0) return left;
  if (x > xp[n - 1]) return right;
  if (x < xp[0]) return left;
  // Last index with xp[j] <= x: with repeated xp values numpy takes the last of them.
  const size_t j = static_cast<size_t>(std::upper_bound(xp.begin(), xp.end(), x) - xp.begin()) - 1;
  if (j == n - 1 || xp[j] == x) return fp[j];
  const double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
  return slope * (x - xp[j]) + fp[j];
}

double ComputeAp(std::span<const double> recall, std::span<const double> precision) {
  const size_t n = recall.size();
  std::vector<double> mrec(n + 2), mpre(n + 2);
  mrec[0] = 0.0;
  mpre[0] = 1.0;
  std::copy(recall.begin(), recall.end(), mrec.begin() + 1);
  std::copy(precision.begin(), precision.end(), mpre.begin() + 1);
  mrec[n + 1] = 1.0;
  mpre[n + 1] = 0.0;
  for (size_t i = n + 1; i-- > 0;) mpre[i] = std::max(mpre[i], mpre[i + 1]);

  constexpr int kPoints = 101;
  double ap = 0.0;
  double prev_x = 0.0;
  double prev_y = Interp(0.0, mrec, mpre, mpre.front(), mpre.back());
  for (int i = 1; i < kPoints; ++i) {
    const double x = Linspace01(i, kPoints);
    const double y = Interp(x, mrec, mpre, mpre.front(), mpre.back());
    ap += (x - prev_x) * (y + prev_y) / 2.0;  // np.trapz
    prev_x = x;
    prev_y = y;
  }
  return ap;
}

std::vector<double> Smooth(std::span<const double> y, double fraction) {
  const int n = static_cast<int>(y.size());
  if (n == 0) return {};
  // Python round() is half-to-even, as is nearbyint in the default rounding mode.
  const int nf = static_cast<int>(std::nearbyint(n * fraction * 2)) / 2 + 1;
  const int pad = nf / 2;
  const double weight = 1.0 / nf;
  std::vector<double> out(n);
  for (int k = 0; k < n; ++k) {
    double sum = 0.0;
    for (int m = k - pad; m <= k + pad; ++m) sum += y[std::clamp(m, 0, n - 1)] * weight;
    out[k] = sum;
  }
  return out;
}

Metrics ComputeMetrics(const std::vector<PredictionRecord>& predictions,
                       const std::map<int, LabelCount>& labels,
                       const std::vector<std::string>& names) {
  Metrics metrics;
  const size_t nc = labels.size();
  if (nc == 0) return metrics;

  std::map<int, size_t> class_index;
  for (const auto& [class_id, count] : labels) class_index.emplace(class_id, class_index.size());

  // One global stable sort by confidence, then bucketing keeps each class in that order.
  std::vector<size_t> order(predictions.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return predictions[a].confidence > predictions[b].confidence;
  });
  std::vector<std::vector<const PredictionRecord*>> per_class(nc);
  for (size_t i : order) {
    auto it = class_index.find(predictions[i].class_id);
    if (it != class_index.end()) per_class[it->second].push_back(&predictions[i]);
  }

  std::vector<std::array<double, kNumThresholds>> ap(nc);
  std::vector<std::vector<double>> p_curve(nc, std::vector<double>(kConfidenceGrid, 0.0));
  std::vector<std::vector<double>> r_curve(nc, std::vector<double>(kConfidenceGrid, 0.0));
  for (const auto& [class_id, count] : labels) {
    const size_t ci = class_index.at(class_id);
    ap[ci].fill(0.0);
    const auto& preds = per_class[ci];
    if (preds.empty() || count.instances == 0) continue;
    const size_t n = preds.size();
    std::vector<double> neg_conf(n), recall(n), precision(n);
    for (size_t i = 0; i < n; ++i) neg_conf[i] = -static_cast<double>(preds[i]->confidence);
    for (int t = 0; t < kNumThresholds; ++t) {
      double tpc = 0.0;
      for (size_t i = 0; i < n; ++i) {
        if (preds[i]->tp & (1u << t)) tpc += 1.0;
        recall[i] = tpc / count.instances;
        precision[i] = tpc / static_cast<double>(i + 1);  // tp + fp = predictions so far
      }
      ap[ci][t] = ComputeAp(recall, precision);
      if (t != 0) continue;
      // P and R curves over confidence use the IoU 0.5 matches, as Ultralytics does.
      for (int g = 0; g < kConfidenceGrid; ++g) {
        const double x = -Linspace01(g, kConfidenceGrid);
        r_curve[ci][g] = Interp(x, neg_conf, recall, 0.0, recall.back());
        p_curve[ci][g] = Interp(x, neg_conf, precision, 1.0, precision.back());
      }
    }
  }

  std::vector<double> mean_f1(kConfidenceGrid, 0.0);
  for (int g = 0; g < kConfidenceGrid; ++g) {
    for (size_t ci = 0; ci < nc; ++ci) {
      const double p = p_curve[ci][g], r = r_curve[ci][g];
      mean_f1[g] += 2 * p * r / (p + r + 1e-16);
    }
    mean_f1[g] /= static_cast<double>(nc);
  }
  const std::vector<double> smoothed = Smooth(mean_f1, kF1SmoothFraction);
  const size_t best =
      static_cast<size_t>(std::max_element(smoothed.begin(), smoothed.end()) - smoothed.begin());

  for (const auto& [class_id, count] : labels) {
    const size_t ci = class_index.at(class_id);
    ClassMetrics cm;
    cm.class_id = class_id;
    cm.name = ClassName(class_id, names);
    cm.images = count.images;
    cm.instances = count.instances;
    cm.precision = p_curve[ci][best];
    cm.recall = r_curve[ci][best];
    cm.map50 = ap[ci][0];
    cm.map50_95 = std::accumulate(ap[ci].begin(), ap[ci].end(), 0.0) / kNumThresholds;
    metrics.precision += cm.precision;
    metrics.recall += cm.recall;
    metrics.map50 += cm.map50;
    metrics.map50_95 += cm.map50_95;
    metrics.per_class.push_back(std::move(cm));
  }
  const double count = static_cast<double>(nc);
  metrics.precision /= count;
  metrics.recall /= count;
  metrics.map50 /= count;
  metrics.map50_95 /= count;
  return metrics;
}

}  // namespace cvdeploy::eval
