// SPDX-License-Identifier: Apache-2.0
// Issue 16: SessionOptions::graph_optimization reaches ONNX Runtime. Each level is observed in
// the engine's own per-operator profile of one prediction on bus.jpg: without the extended
// fusions SiLU runs as Sigmoid + Mul, with them as one fused node; the layout level adds the
// NCHWc reorders on x86 CPUs with AVX2. Every level predicts the same detections.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "cvdeploy/bench.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/system.h"
#include "support/assets.h"

namespace cvdeploy::testing {
namespace {

struct Profiled {
  Result result;
  std::map<std::string, size_t> nodes_by_op;  // op type -> node count in one run
};

Profiled PredictProfiled(GraphOptimization level) {
  SessionOptions options;
  options.intra_op_threads = 1;
  options.graph_optimization = level;
  options.profile_prefix =
      MakeTempDir(std::string("graph-opt-") + GraphOptimizationName(level)) + "/profile";
  auto predictor = Predictor::Load(Asset("models/yolov8n-dq.onnx"), options);
  Profiled p;
  p.result = predictor->Predict(cv::imread(Asset("images/bus.jpg")));
  const bench::ProfileSummary summary = bench::ParseOrtProfile(predictor->EndProfiling());
  const size_t runs = std::max<size_t>(1, summary.runs);
  for (const auto& op : summary.by_op_type) p.nodes_by_op[op.op_type] = op.calls / runs;
  return p;
}

size_t Count(const Profiled& p, const std::string& op) {
  const auto it = p.nodes_by_op.find(op);
  return it == p.nodes_by_op.end() ? 0 : it->second;
}

TEST(GraphOptimizationTest, NamesRoundTripAndUnknownNamesAreRefused) {
  for (GraphOptimization level : {GraphOptimization::kAll, GraphOptimization::kExtended,
                                  GraphOptimization::kBasic, GraphOptimization::kDisabled}) {
    EXPECT_EQ(ParseGraphOptimization(GraphOptimizationName(level)), level);
  }
  EXPECT_STREQ(GraphOptimizationName(SessionOptions{}.graph_optimization), "all");
  EXPECT_FALSE(ParseGraphOptimization("ALL").has_value());
  EXPECT_FALSE(ParseGraphOptimization("").has_value());
  EXPECT_FALSE(ParseGraphOptimization("99").has_value());
}

TEST(GraphOptimizationTest, EachLevelReachesTheEngineAndPredictsTheSame) {
  const Profiled disabled = PredictProfiled(GraphOptimization::kDisabled);
  const Profiled basic = PredictProfiled(GraphOptimization::kBasic);
  const Profiled extended = PredictProfiled(GraphOptimization::kExtended);
  const Profiled all = PredictProfiled(GraphOptimization::kAll);
  // yolov8n has 57 SiLU activations in its backbone, neck and head (Sigmoid + Mul each).
  for (const Profiled* p : {&disabled, &basic}) {
    EXPECT_GE(Count(*p, "Sigmoid"), 57u);
    EXPECT_GE(Count(*p, "Mul"), 57u);
    EXPECT_EQ(Count(*p, "QuickGelu"), 0u);
  }
  for (const Profiled* p : {&extended, &all}) {
    EXPECT_GE(Count(*p, "QuickGelu"), 57u) << "SiLU not fused";
    EXPECT_LE(Count(*p, "Sigmoid"), 1u);  // the class scores' Sigmoid stays
  }
  // The layout transformer (NCHWc blocked convolutions) runs at kAll only, where MLAS has
  // blocked kernels (x86 with AVX2 or AVX-512F).
  EXPECT_EQ(Count(extended, "ReorderInput"), 0u);
  const std::vector<std::string>& isa = DetectMachine().isa;
  if (std::find(isa.begin(), isa.end(), "avx2") != isa.end()) {
    EXPECT_GT(Count(all, "ReorderInput"), 0u);
  }
  for (const Profiled* p : {&disabled, &basic, &extended}) {
    ASSERT_EQ(p->result.detections.size(), all.result.detections.size());
    for (size_t i = 0; i < all.result.detections.size(); ++i) {
      const Detection& a = all.result.detections[i];
      const Detection& b = p->result.detections[i];
      EXPECT_EQ(a.class_id, b.class_id) << i;
      EXPECT_NEAR(a.confidence, b.confidence, 1e-3) << i;
      EXPECT_NEAR(a.box.x1, b.box.x1, 0.1) << i;
      EXPECT_NEAR(a.box.y1, b.box.y1, 0.1) << i;
      EXPECT_NEAR(a.box.x2, b.box.x2, 0.1) << i;
      EXPECT_NEAR(a.box.y2, b.box.y2, 0.1) << i;
    }
  }
}

}  // namespace
}  // namespace cvdeploy::testing
