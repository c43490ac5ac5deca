// SPDX-License-Identifier: Apache-2.0
// ONNX Runtime profile parsing on small hand-written trace files.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "cvdeploy/bench.h"
#include "cvdeploy/error.h"
#include "support/assets.h"

namespace cvdeploy::bench {
namespace {

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = cvdeploy::testing::MakeTempDir("bench_profile") + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::string NodeEvent(const std::string& name, const std::string& op, int dur_us) {
  return R"({"cat":"Node","pid":1,"tid":2,"dur":)" + std::to_string(dur_us) +
         R"(,"ts":5,"ph":"X","name":")" + name + R"(","args":{"op_name":")" + op +
         R"(","provider":"CPUExecutionProvider","thread_scheduling_stats":{}}})";
}

std::string SessionEvent(const std::string& name, int dur_us) {
  return R"({"cat":"Session","pid":1,"tid":2,"dur":)" + std::to_string(dur_us) +
         R"(,"ts":1,"ph":"X","name":")" + name + R"(","args":{}})";
}

// Two runs of a three-node graph: conv0 3 ms + 1 ms, conv1 2 ms + 2 ms, concat 1 ms + 1 ms.
std::string SampleProfile() {
  return "[\n" + SessionEvent("model_loading_uri", 9000) + ",\n" +
         SessionEvent("session_initialization", 9000) + ",\n" +
         NodeEvent("/model.0/conv/Conv_fence_before", "Conv", 0) + ",\n" +
         NodeEvent("/model.0/conv/Conv_kernel_time", "Conv", 3000) + ",\n" +
         NodeEvent("/model.0/conv/Conv_fence_after", "Conv", 0) + ",\n" +
         NodeEvent("/model.1/conv/Conv_kernel_time", "Conv", 2000) + ",\n" +
         NodeEvent("/model.2/Concat_kernel_time", "Concat", 1000) + ",\n" +
         SessionEvent("model_run", 7000) + ",\n" +
         NodeEvent("/model.0/conv/Conv_kernel_time", "Conv", 1000) + ",\n" +
         NodeEvent("/model.1/conv/Conv_kernel_time", "Conv", 2000) + ",\n" +
         NodeEvent("/model.2/Concat_kernel_time", "Concat", 1000) + ",\n" +
         SessionEvent("model_run", 5000) + "\n]\n";
}

TEST(BenchProfile, AggregatesNodesAndOpTypes) {
  const ProfileSummary p = ParseOrtProfile(WriteFile("profile.json", SampleProfile()));
  EXPECT_EQ(p.runs, 2u);
  EXPECT_NEAR(p.total_ms, 10.0, 1e-9);  // Session events and fences are not counted

  ASSERT_EQ(p.by_node.size(), 3u);
  // conv0 and conv1 tie at 4 ms: ordered by node name.
  EXPECT_EQ(p.by_node[0].node, "/model.0/conv/Conv");
  EXPECT_EQ(p.by_node[0].op_type, "Conv");
  EXPECT_NEAR(p.by_node[0].total_ms, 4.0, 1e-9);
  EXPECT_EQ(p.by_node[0].calls, 2u);
  EXPECT_NEAR(p.by_node[0].share, 0.4, 1e-9);
  EXPECT_EQ(p.by_node[1].node, "/model.1/conv/Conv");
  EXPECT_EQ(p.by_node[2].node, "/model.2/Concat");
  EXPECT_EQ(p.by_node[2].op_type, "Concat");
  EXPECT_NEAR(p.by_node[2].total_ms, 2.0, 1e-9);
  EXPECT_NEAR(p.by_node[2].share, 0.2, 1e-9);

  ASSERT_EQ(p.by_op_type.size(), 2u);
  EXPECT_EQ(p.by_op_type[0].op_type, "Conv");
  EXPECT_EQ(p.by_op_type[0].node, "");
  EXPECT_NEAR(p.by_op_type[0].total_ms, 8.0, 1e-9);
  EXPECT_EQ(p.by_op_type[0].calls, 4u);
  EXPECT_NEAR(p.by_op_type[0].share, 0.8, 1e-9);
  EXPECT_EQ(p.by_op_type[1].op_type, "Concat");
  EXPECT_NEAR(p.by_op_type[1].share, 0.2, 1e-9);
}

TEST(BenchProfile, EmptyArrayIsEmptySummary) {
  const ProfileSummary p = ParseOrtProfile(WriteFile("empty.json", "[]"));
  EXPECT_TRUE(p.by_node.empty());
  EXPECT_TRUE(p.by_op_type.empty());
  EXPECT_EQ(p.total_ms, 0.0);
  EXPECT_EQ(p.runs, 0u);
}

TEST(BenchProfile, MissingOpNameIsUnknown) {
  const std::string text = R"([{"cat":"Node","dur":500,"name":"n_kernel_time","args":{}}])";
  const ProfileSummary p = ParseOrtProfile(WriteFile("noop.json", text));
  ASSERT_EQ(p.by_node.size(), 1u);
  EXPECT_EQ(p.by_node[0].node, "n");
  EXPECT_EQ(p.by_node[0].op_type, "unknown");
  EXPECT_NEAR(p.by_node[0].total_ms, 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(p.by_node[0].share, 1.0);
}

void ExpectBadInput(const std::string& path, const std::string& reason) {
  try {
    ParseOrtProfile(path);
    FAIL() << "no exception for " << path;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    const std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(reason), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(BenchProfile, InvalidJsonIsBadInput) {
  ExpectBadInput(WriteFile("broken.json", "[\n{\"cat\": \"Node\",\n"), "invalid");
}

TEST(BenchProfile, NotAnArrayIsBadInput) {
  ExpectBadInput(WriteFile("object.json", R"({"cat":"Node"})"), "not a JSON array");
}

TEST(BenchProfile, MissingFileIsBadInput) {
  ExpectBadInput(cvdeploy::testing::MakeTempDir("bench_profile") + "/absent.json", "no such file");
}

TEST(BenchProfile, NonNumericDurationIsBadInput) {
  ExpectBadInput(WriteFile("dur.json", R"([{"cat":"Node","dur":"x","name":"a_kernel_time"}])"),
                 "dur");
}

}  // namespace
}  // namespace cvdeploy::bench
