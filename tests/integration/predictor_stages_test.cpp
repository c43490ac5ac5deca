// SPDX-License-Identifier: Apache-2.0
// The Predictor's public stages: Prepare -> Run -> Decode equals Predict; a Model read once
// feeds several predictors; outputs of one predictor decode with another batch's geometry (as
// compare does); PrepareTensors and Prepare refuse what the model cannot take.
#include <gtest/gtest.h>

#include <vector>

#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "support/assets.h"

namespace cvdeploy {
namespace {

using cvdeploy::testing::Asset;

void ExpectSame(const Result& a, const Result& b) {
  ASSERT_EQ(a.width, b.width);
  ASSERT_EQ(a.height, b.height);
  ASSERT_EQ(a.detections.size(), b.detections.size());
  for (size_t i = 0; i < a.detections.size(); ++i) {
    EXPECT_EQ(a.detections[i].class_id, b.detections[i].class_id);
    EXPECT_EQ(a.detections[i].confidence, b.detections[i].confidence);
    EXPECT_EQ(a.detections[i].box.x1, b.detections[i].box.x1);
    EXPECT_EQ(a.detections[i].box.y2, b.detections[i].box.y2);
  }
}

class PredictorStagesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new Model(Model::FromFile(Asset("models/yolo11n-dq.onnx")));
  }
  static void TearDownTestSuite() { delete model_; }
  static Model* model_;
};
Model* PredictorStagesTest::model_ = nullptr;

TEST_F(PredictorStagesTest, StagesEqualPredict) {
  const auto predictor = Predictor::Create(*model_);
  const cv::Mat bus = ReadImage(Asset("images/bus.jpg"));
  const cv::Mat zidane = ReadImage(Asset("images/zidane.jpg"));
  Batch batch = predictor->Prepare({bus});
  EXPECT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch.input().shape(), (std::vector<int64_t>{1, 3, 640, 640}));
  ASSERT_EQ(batch.letterboxes().size(), 1u);
  EXPECT_EQ(batch.letterboxes()[0].src, bus.size());
  const std::vector<NamedTensorView> outputs = predictor->Run(batch);
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].name, predictor->info().outputs[0].name);
  const std::vector<Result> decoded = predictor->Decode(outputs, batch);
  ASSERT_EQ(decoded.size(), 1u);
  EXPECT_FALSE(decoded[0].detections.empty());
  ExpectSame(decoded[0], predictor->Predict(bus));
  // A batch is reusable: Run again on it after moving it.
  Batch moved = std::move(batch);
  ExpectSame(predictor->Decode(predictor->Run(moved), moved)[0], decoded[0]);
  // A second image through the same stages.
  Batch other = predictor->Prepare({zidane});
  ExpectSame(predictor->Decode(predictor->Run(other), other)[0], predictor->Predict(zidane));
}

TEST_F(PredictorStagesTest, OneModelFeedsSeveralPredictorsAndDecodesAcrossThem) {
  const auto a = Predictor::Create(*model_);
  SessionOptions one_thread;
  one_thread.intra_op_threads = 1;
  const auto b = Predictor::Create(*model_, one_thread);
  EXPECT_EQ(&a->model().bytes(), &b->model().bytes());  // shared, not re-read
  EXPECT_EQ(a->info().sha256, Sha256Hex(model_->bytes().data(), model_->bytes().size()));
  const cv::Mat bus = ReadImage(Asset("images/bus.jpg"));
  Batch batch_a = a->Prepare({bus});
  Batch batch_b = b->PrepareTensors({batch_a.input()});
  // The same input bytes, copied once into b's own buffer.
  ASSERT_EQ(batch_b.input().bytes(), batch_a.input().bytes());
  EXPECT_NE(batch_b.input().data(), batch_a.input().data());
  const std::vector<NamedTensorView> out_b = b->Run(batch_b);
  // b's outputs decoded with a's geometry (a tensor batch has none of its own).
  EXPECT_THROW(b->Decode(out_b, batch_b), Error);
  ExpectSame(b->Decode(out_b, batch_a)[0], a->Predict(bus));
}

TEST_F(PredictorStagesTest, RefusesWhatTheModelCannotTake) {
  const auto predictor = Predictor::Create(*model_);
  EXPECT_THROW(predictor->Prepare({}), Error);
  EXPECT_THROW(predictor->Prepare({cv::Mat()}), Error);
  PredictOptions bad;
  bad.imgsz = 320;  // fixed 640x640 model
  EXPECT_THROW(predictor->Prepare({cv::Mat(10, 10, CV_8UC3)}, bad), Error);
  std::vector<float> wrong(3 * 320 * 320);
  EXPECT_THROW(
      predictor->PrepareTensors({TensorView(DataType::kFloat32, {1, 3, 320, 320}, wrong.data())}),
      Error);
  std::vector<int32_t> ints(3 * 640 * 640);
  EXPECT_THROW(
      predictor->PrepareTensors({TensorView(DataType::kInt32, {1, 3, 640, 640}, ints.data())}),
      Error);
  try {
    predictor->Prepare({cv::Mat(10, 10, CV_8UC3), cv::Mat(10, 10, CV_8UC3)});
    FAIL() << "a batch of 2 on a fixed batch axis of 1";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(e.setting(), "batch");
  }
}

}  // namespace
}  // namespace cvdeploy
