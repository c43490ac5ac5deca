// SPDX-License-Identifier: Apache-2.0
// The two mask rules on coco128 (yolov8n-seg-dq, predict defaults: conf 0.25, IoU 0.7): every
// image runs once through the engine and is decoded with the default rule (crop on the
// prototype grid) and with --retina-masks (crop at full resolution). Prints the mask IoU
// between the rules by object size (COCO areas: small < 32^2, medium < 96^2 pixels) and how
// much of each mask its polygon covers, the joined outline against the largest contour alone.
// coco128 has box labels only, so no mask mAP against labels can be computed here. Labelled
// slow: 86 engine runs and two decodes each, 14 s on the 2-core machine when quiet (Release
// build), 125 s when it was heavily loaded.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "support/assets.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;
using cvdeploy::testing::Asset;

cv::Mat Canvas(const Detection& d, cv::Size size) {
  cv::Mat canvas(size, CV_8U, cv::Scalar(0));
  if (!d.mask.empty()) d.mask.copyTo(canvas(d.mask_roi));
  return canvas;
}

double Iou(const cv::Mat& a, const cv::Mat& b) {
  const double uni = cv::countNonZero(a | b);
  return uni > 0 ? cv::countNonZero(a & b) / uni : 1.0;
}

// The polygon filled as a user would draw it (cv::fillPoly), against the mask.
double PolygonIou(const std::vector<cv::Point>& polygon, const cv::Mat& mask) {
  cv::Mat filled(mask.size(), CV_8U, cv::Scalar(0));
  if (!polygon.empty()) cv::fillPoly(filled, std::vector<std::vector<cv::Point>>{polygon}, 255);
  return Iou(filled, mask);
}

struct Stats {
  std::vector<double> values;
  void Print(const char* name) {
    if (values.empty()) {
      std::printf("  %-28s n=0\n", name);
      return;
    }
    std::sort(values.begin(), values.end());
    const double mean = std::accumulate(values.begin(), values.end(), 0.0) / values.size();
    std::printf("  %-28s n=%3zu min %.3f p10 %.3f median %.3f mean %.3f\n", name, values.size(),
                values.front(), values[values.size() / 10], values[values.size() / 2], mean);
  }
  double Mean() const {
    return values.empty() ? 0 : std::accumulate(values.begin(), values.end(), 0.0) / values.size();
  }
};

TEST(MaskRulesCoco128Test, DefaultAgainstRetinaMasks) {
  auto predictor = Predictor::Load(Asset("models/yolov8n-seg-dq.onnx"));
  std::vector<std::string> images;
  for (const auto& e : fs::directory_iterator(Asset("datasets/coco128/images"))) {
    images.push_back(e.path().string());
  }
  std::sort(images.begin(), images.end());
  ASSERT_GE(images.size(), 86u);
  Stats small, medium, large, all, joined, largest;
  // Both rules on the same detections: none is dropped for an empty mask.
  PredictOptions plain, retina;
  plain.keep_empty_masks = retina.keep_empty_masks = true;
  retina.retina_masks = true;
  int multi_part = 0;
  for (const std::string& path : images) {
    const cv::Mat image = ReadImage(path);
    Batch batch = predictor->Prepare({image});
    const auto outputs = predictor->Run(batch);
    const Result a = predictor->Decode(outputs, batch, plain).at(0);
    const Result b = predictor->Decode(outputs, batch, retina).at(0);
    ASSERT_EQ(a.detections.size(), b.detections.size()) << path;
    for (size_t k = 0; k < a.detections.size(); ++k) {
      const Detection& d = a.detections[k];
      const cv::Mat ma = Canvas(d, image.size()), mb = Canvas(b.detections[k], image.size());
      if (cv::countNonZero(ma) == 0 && cv::countNonZero(mb) == 0) continue;
      const double iou = Iou(ma, mb);
      const double area = d.box.Area();
      (area < 32 * 32 ? small : area < 96 * 96 ? medium : large).values.push_back(iou);
      all.values.push_back(iou);
      if (d.polygons.empty()) continue;
      joined.values.push_back(PolygonIou(d.polygon, ma));
      largest.values.push_back(PolygonIou(d.polygons.front(), ma));
      multi_part += d.polygon.size() > d.polygons.front().size() + 1;
    }
  }
  std::printf("mask IoU, default rule vs --retina-masks (%zu images):\n", images.size());
  small.Print("small (< 32^2 px)");
  medium.Print("medium");
  large.Print("large (>= 96^2 px)");
  all.Print("all");
  std::printf("polygon filled vs its own mask (default rule), %d multi-part masks:\n", multi_part);
  joined.Print("joined outline (polygon)");
  largest.Print("largest contour only");
  ASSERT_GT(all.values.size(), 200u);
  // The rules agree on most masks; the differences sit at the edges, so large objects agree
  // best. These bounds are far from the measured values (see the report) yet catch a broken
  // rule (a shifted or uncropped mask falls far below them).
  EXPECT_GT(large.Mean(), 0.9);
  EXPECT_GT(all.Mean(), 0.8);
  EXPECT_GT(multi_part, 0);
  EXPECT_GE(joined.Mean(), largest.Mean());
}

}  // namespace
}  // namespace cvdeploy
