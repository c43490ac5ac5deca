// SPDX-License-Identifier: Apache-2.0
// `cvdeploy bench` end to end with few iterations: the JSON keys the issue fixes, sane values,
// the CSV/Markdown writers, the sweep, the profile, the directory path against the sequential
// loop, and the error paths. Timings themselves are not asserted (noisy 2-core machines);
// bench/perf_targets.py checks the targets.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/assets.h"
#include "support/fixtures.h"
#include "support/process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;

std::string Model() { return Asset("models/yolo11n-dq.onnx"); }

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void ExpectSummary(const nlohmann::json& s, const std::string& what) {
  for (const char* k : {"min", "mean", "p50", "p90", "p99"}) {
    ASSERT_TRUE(s.contains(k)) << what << " lacks " << k;
  }
  EXPECT_LE(s["min"].get<double>(), s["p50"].get<double>()) << what;
  EXPECT_LE(s["p50"].get<double>(), s["p90"].get<double>()) << what;
  EXPECT_LE(s["p90"].get<double>(), s["p99"].get<double>()) << what;
}

TEST(CliBench, SingleImageReportHasTheDocumentedKeysAndSaneValues) {
  const std::string dir = MakeTempDir("cli_bench_single");
  const std::string json = dir + "/b.json", csv = dir + "/b.csv";
  const auto run = RunCli({"bench", "--model", Model(), "--source", Asset("images/bus.jpg"),
                           "--warmup", "1", "--iters", "4", "--json", json, "--csv", csv});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto j = nlohmann::json::parse(Slurp(json));
  for (const char* k :
       {"machine", "ort_version", "provider", "commit", "model", "cold_start", "results"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(j["ort_version"], "1.30.0");
  EXPECT_EQ(j["provider"], "CPUExecutionProvider");
  EXPECT_FALSE(j["machine"]["cpu_model"].get<std::string>().empty());
  EXPECT_GT(j["cold_start"]["load_ms"].get<double>(), 0);
  EXPECT_GT(j["cold_start"]["first_inference_ms"].get<double>(), 0);
  ASSERT_EQ(j["results"].size(), 1u);
  const auto& r = j["results"][0];
  for (const char* k : {"threads", "batch", "imgsz", "iterations", "stages_ms", "bare_engine_ms",
                        "throughput_ips", "ratio_e2e_to_bare", "ratio_no_decode_to_bare"}) {
    EXPECT_TRUE(r.contains(k)) << k;
  }
  EXPECT_EQ(r["iterations"], 4);
  EXPECT_EQ(r["imgsz"], 640);
  for (const char* stage : {"decode", "preprocess", "inference", "postprocess", "end_to_end"}) {
    ExpectSummary(r["stages_ms"][stage], stage);
    EXPECT_GT(r["stages_ms"][stage]["min"].get<double>(), 0) << stage;
  }
  ExpectSummary(r["bare_engine_ms"], "bare engine");
  // End to end contains every stage, so it is never below inference.
  EXPECT_GE(r["stages_ms"]["end_to_end"]["p50"].get<double>(),
            r["stages_ms"]["inference"]["p50"].get<double>());
  EXPECT_GT(r["ratio_e2e_to_bare"].get<double>(), 0.5);
  EXPECT_GT(r["throughput_ips"].get<double>(), 0);
  // CSV: a header and one row.
  const std::string text = Slurp(csv);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  EXPECT_NE(run.out.find("bare engine"), std::string::npos) << run.out;
}

TEST(CliBench, SweepPrintsOneMarkdownRowPerCombination) {
  const auto run = RunCli({"bench", "--model", Model(), "--source", Asset("images/zidane.jpg"),
                           "--warmup", "0", "--iters", "2", "--sweep", "threads=1,2", "--md"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  size_t rows = 0;
  std::istringstream lines(run.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("| single |", 0) == 0) ++rows;
  }
  EXPECT_EQ(rows, 2u) << run.out;
}

TEST(CliBench, ProfileWritesTheEngineProfileAndListsTopOperators) {
  const std::string dir = MakeTempDir("cli_bench_profile");
  const std::string profile = dir + "/profile.json", json = dir + "/b.json";
  const auto run = RunCli({"bench", "--model", Model(), "--source", Asset("images/bus.jpg"),
                           "--warmup", "0", "--iters", "2", "--profile", profile, "--json", json});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_TRUE(fs::exists(profile));
  const auto j = nlohmann::json::parse(Slurp(json));
  const auto& top = j["profile"]["top_operators"];
  ASSERT_EQ(top.size(), 10u);
  double share = 0;
  for (const auto& op : top) share += op["share"].get<double>();
  EXPECT_GT(share, 0.1);
  EXPECT_LE(share, 1.0001);
  EXPECT_NE(run.out.find(top[0]["node"].get<std::string>()), std::string::npos);
}

TEST(CliBench, DirectoryRunsThePipelineAndMatchesTheSequentialLoop) {
  const std::string dir = MakeTempDir("cli_bench_dir");
  fs::copy_file(Asset("images/bus.jpg"), dir + "/a.jpg");
  fs::copy_file(Asset("images/zidane.jpg"), dir + "/b.jpg");
  fs::copy_file(Asset("images/bus.jpg"), dir + "/c.jpg");
  const std::string json = dir + "/out.json";
  const auto run = RunCli({"bench", "--model", Model(), "--source", dir, "--warmup", "1", "--iters",
                           "3", "--compare-sequential", "--json", json});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto r = nlohmann::json::parse(Slurp(json))["results"][0];
  EXPECT_EQ(r["mode"], "pipeline");
  EXPECT_EQ(r["iterations"], 3);
  EXPECT_EQ(r["detections_identical"], true) << r.dump();
  EXPECT_GT(r["sequential_ips"].get<double>(), 0);
  EXPECT_GT(r["peak_rss_mb"].get<double>(), 0);
  EXPECT_LE(r["threads"].get<int>() * r["workers"].get<int>(),
            std::max(2, static_cast<int>(std::thread::hardware_concurrency())));
}

TEST(CliBench, BadInputsGiveOneLineErrorsAndExitCodes) {
  const std::string dir = MakeTempDir("cli_bench_errors");
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string needle;
  };
  const std::string empty_dir = MakeEmptyDir(dir, "empty");
  const std::vector<Case> cases = {
      {{"bench", "--model", dir + "/missing.onnx"}, 3, "missing.onnx"},
      {{"bench", "--model", Model(), "--source", dir + "/nope.jpg"}, 3, "nope.jpg"},
      {{"bench", "--model", Model(), "--source", WriteTextAsJpeg(dir)}, 3, "not_an_image.jpg"},
      {{"bench", "--model", Model(), "--source", empty_dir}, 3, "empty"},
      {{"bench", "--model", Model(), "--sweep", "cores=1"}, 2, "--sweep"},
      {{"bench", "--model", Model(), "--sweep", "threads=1,x"}, 2, "threads"},
      {{"bench", "--model", Model(), "--batch", "4", "--iters", "1"}, 2, "--dynamic-batch"},
      {{"bench", "--model", Model(), "--iters", "0"}, 2, "iters"},
  };
  for (const Case& c : cases) {
    const auto run = RunCli(c.args);
    std::string cmd;
    for (const auto& a : c.args) cmd += a + " ";
    EXPECT_EQ(run.exit_code, c.code) << cmd << "\n" << run.err;
    EXPECT_NE(run.err.find(c.needle), std::string::npos) << cmd << "\n" << run.err;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << cmd << "\n" << run.err;
  }
}

}  // namespace
}  // namespace cvdeploy::testing
