// SPDX-License-Identifier: Apache-2.0
// bus.jpg with the two detection models: a bus and four persons at default thresholds,
// boxes within 2 px of (a) reference values measured independently (Python onnxruntime +
// OpenCV letterbox, listed in the assets MANIFEST) and (b) the naive in-test pipeline.
#include <gtest/gtest.h>

#include <map>

#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "support/assets.h"
#include "support/reference.h"

namespace cvdeploy {
namespace {

using cvdeploy::testing::Asset;

struct Golden {
  const char* name;
  float confidence;
  float x, y, w, h;  // original pixels, rounded to integers in the reference
};

void ExpectMatchesGolden(const Result& result, const std::vector<Golden>& golden) {
  ASSERT_EQ(result.detections.size(), golden.size());
  std::map<std::string, int> counts;
  for (const Detection& d : result.detections) counts[d.class_name]++;
  EXPECT_EQ(counts["bus"], 1);
  EXPECT_EQ(counts["person"], 4);
  for (const Golden& g : golden) {
    bool found = false;
    for (const Detection& d : result.detections) {
      if (d.class_name != g.name) continue;
      if (std::abs(d.box.x1 - g.x) <= 2 && std::abs(d.box.y1 - g.y) <= 2 &&
          std::abs(d.box.x2 - (g.x + g.w)) <= 2 && std::abs(d.box.y2 - (g.y + g.h)) <= 2) {
        EXPECT_NEAR(d.confidence, g.confidence, 0.006) << g.name;
        found = true;
      }
    }
    EXPECT_TRUE(found) << "no detection within 2 px of " << g.name << " [" << g.x << "," << g.y
                       << "," << g.w << "," << g.h << "]";
  }
}

void ExpectMatchesNaivePipeline(const std::string& model, const cv::Mat& image,
                                const Result& result) {
  const auto reference = cvdeploy::testing::NaiveDetect(model, image, 0.25f, 0.7f);
  ASSERT_EQ(reference.size(), result.detections.size());
  for (size_t i = 0; i < reference.size(); ++i) {
    const auto& r = reference[i];
    const Detection& d = result.detections[i];
    EXPECT_EQ(d.class_id, r.class_id) << i;
    EXPECT_NEAR(d.confidence, r.confidence, 1e-5) << i;
    EXPECT_NEAR(d.box.x1, r.x1, 0.01) << i;
    EXPECT_NEAR(d.box.y1, r.y1, 0.01) << i;
    EXPECT_NEAR(d.box.x2, r.x2, 0.01) << i;
    EXPECT_NEAR(d.box.y2, r.y2, 0.01) << i;
  }
}

// bus.jpg through `model` at default thresholds, against the reference and the naive pipeline.
void CheckBus(const std::string& model_file, const std::vector<Golden>& golden) {
  const std::string model = Asset("models/" + model_file);
  const cv::Mat image = ReadImage(Asset("images/bus.jpg"));
  const Result result = Predictor::Load(model)->Predict(image);
  EXPECT_EQ(result.width, 810);
  EXPECT_EQ(result.height, 1080);
  ExpectMatchesGolden(result, golden);
  ExpectMatchesNaivePipeline(model, image, result);
}

TEST(DetectGoldenTest, Yolov8nOnBus) {
  CheckBus("yolov8n-dq.onnx", {{"person", 0.92f, 671, 377, 139, 499},
                               {"person", 0.91f, 51, 397, 192, 507},
                               {"person", 0.91f, 222, 408, 121, 448},
                               {"bus", 0.86f, 30, 231, 770, 539},
                               {"person", 0.38f, 1, 552, 56, 316}});
}

TEST(DetectGoldenTest, Yolo11nOnBus) {
  CheckBus("yolo11n-dq.onnx", {{"person", 0.90f, 47, 398, 197, 505},
                               {"bus", 0.90f, 15, 230, 786, 510},
                               {"person", 0.83f, 671, 393, 139, 488},
                               {"person", 0.83f, 220, 405, 126, 455},
                               {"person", 0.57f, 0, 551, 69, 321}});
}

TEST(DetectGoldenTest, ZidaneAndOptions) {
  auto predictor = Predictor::Load(Asset("models/yolov8n-dq.onnx"));
  const cv::Mat image = ReadImage(Asset("images/zidane.jpg"));
  const Result all = predictor->Predict(image);
  ASSERT_EQ(all.detections.size(), 3u);  // person, person, tie
  ExpectMatchesNaivePipeline(Asset("models/yolov8n-dq.onnx"), image, all);

  PredictOptions only_ties;
  only_ties.classes = {27};
  const Result ties = predictor->Predict(image, only_ties);
  ASSERT_EQ(ties.detections.size(), 1u);
  EXPECT_EQ(ties.detections[0].class_name, "tie");

  PredictOptions one;
  one.max_det = 1;
  EXPECT_EQ(predictor->Predict(image, one).detections.size(), 1u);

  PredictOptions strict;
  strict.conf = 0.9f;
  for (const auto& d : predictor->Predict(image, strict).detections) EXPECT_GT(d.confidence, 0.9f);
}

}  // namespace
}  // namespace cvdeploy
