// SPDX-License-Identifier: Apache-2.0
// Training reaches every layer: on a pruned yolov8n-dq (its --dynamic conversion at 320, as
// distill trains it), one backward pass of the distillation loss against the original gives
// every trainable tensor a non-zero gradient.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "cvdeploy/file.h"
#include "cvdeploy/tools.h"
#include "support/assets.h"
#include "train/losses.h"
#include "train/torch_graph.h"

namespace cvdeploy::train {
namespace {

std::vector<uint8_t> Dynamic(const std::vector<uint8_t>& bytes) {
  return MakeShapeDynamic(MakeBatchDynamic(bytes, "m").bytes, "m").bytes;
}

HeadOut Head(const TorchGraph& g, const torch::Tensor& x) {
  const HeadTaps taps = g.Head();
  auto values = g.Forward({{g.InputNames().at(0), x}}, {taps.class_logits, taps.box_logits});
  RawHead raw = CanonicalHead(taps, values);
  return HeadOut{raw.cls, raw.box};
}

TEST(TrainGradients, EveryParameterOfAPrunedStudentGetsAGradient) {
  const std::vector<uint8_t> original = ReadModelBytes(testing::Asset("models/yolov8n-dq.onnx"));
  PruneOptions prune;
  prune.ratio = 0.3;
  TorchGraph student = TorchGraph::FromBytes(Dynamic(Prune(original, "m", prune).bytes), "s");
  TorchGraph teacher = TorchGraph::FromBytes(Dynamic(original), "t");
  torch::manual_seed(3);
  torch::Tensor x = torch::rand({2, 3, 320, 320});
  HeadOut target;
  {
    torch::NoGradGuard no_grad;
    target = Head(teacher, x);
  }
  DistillLoss(Head(student, x), target).total.backward();
  const std::vector<torch::Tensor> params = student.Parameters();
  const std::vector<std::string> names = student.ParameterNames();
  ASSERT_EQ(params.size(), names.size());
  ASSERT_GT(params.size(), 100u);
  int without = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const bool has = params[i].grad().defined() && params[i].grad().abs().sum().item<double>() > 0;
    if (!has) {
      ++without;
      ADD_FAILURE() << names[i] << " has no gradient";
    }
  }
  EXPECT_EQ(without, 0);
}

}  // namespace
}  // namespace cvdeploy::train
