// SPDX-License-Identifier: Apache-2.0
// One Predictor shared by many threads gives exactly the single-threaded results.
#include <gtest/gtest.h>

#include <thread>

#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "support/assets.h"

namespace cvdeploy {
namespace {

using cvdeploy::testing::Asset;

void ExpectSame(const Result& a, const Result& b) {
  ASSERT_EQ(a.detections.size(), b.detections.size());
  for (size_t i = 0; i < a.detections.size(); ++i) {
    EXPECT_EQ(a.detections[i].class_id, b.detections[i].class_id);
    EXPECT_EQ(a.detections[i].confidence, b.detections[i].confidence);
    EXPECT_EQ(a.detections[i].box.x1, b.detections[i].box.x1);
    EXPECT_EQ(a.detections[i].box.y2, b.detections[i].box.y2);
  }
}

TEST(ConcurrencyTest, SharedPredictorMatchesSingleThreaded) {
  SessionOptions session;
  session.intra_op_threads = 1;
  auto predictor = Predictor::Load(Asset("models/yolo11n-dq.onnx"), session);
  const std::vector<cv::Mat> images = {
      ReadImage(Asset("images/bus.jpg")), ReadImage(Asset("images/zidane.jpg")),
      ReadImage(Asset("datasets/coco128/images/000000000009.jpg"))};
  std::vector<Result> expected;
  for (const auto& im : images) expected.push_back(predictor->Predict(im));

  constexpr int kThreads = 4, kRounds = 3;
  std::vector<std::vector<Result>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        // Each thread walks the images in a different order to interleave differently.
        for (size_t k = 0; k < images.size(); ++k) {
          const size_t i = (k + t) % images.size();
          got[t].push_back(predictor->Predict(images[i]));
          got[t].back().width = static_cast<int>(i);  // remember which image
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(got[t].size(), images.size() * kRounds);
    for (const Result& r : got[t]) ExpectSame(r, expected[r.width]);
  }
}

}  // namespace
}  // namespace cvdeploy
