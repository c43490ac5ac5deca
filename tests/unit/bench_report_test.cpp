// SPDX-License-Identifier: Apache-2.0
// Benchmark report renderings: JSON keys and values, CSV quoting, Markdown and text layout.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cvdeploy/bench.h"
#include "cvdeploy/error.h"

namespace cvdeploy::bench {
namespace {

Summary Make(double base) {
  Summary s;
  s.min = base;
  s.mean = base + 0.5;
  s.p50 = base + 0.4;
  s.p90 = base + 1.0;
  s.p99 = base + 2.0;
  s.count = 100;
  return s;
}

Report SampleReport() {
  Report r;
  r.machine.cpu_model = "AMD EPYC 7B13, 64-Core";
  r.machine.logical_cores = 8;
  r.machine.physical_cores = 4;
  r.machine.isa = {"avx", "avx2", "fma"};
  r.machine.os = "Linux 6.1.0";
  r.machine.memory_gib = 31.3;
  r.cvdeploy_version = "0.3.0";
  r.commit = "abc1234";
  r.build_type = "Release";
  r.ort_version = "1.30.0";
  r.provider = "CPUExecutionProvider";
  r.model = "/models/yolo11n,v2.onnx";  // a comma: must be quoted in CSV
  r.source = "bus.jpg";
  r.cold_start = {123.45678, 45.6};

  ConfigResult single;
  single.threads = 4;
  single.iterations = 100;
  single.stages = {Make(1), Make(2), Make(20), Make(3), Make(26.123456)};
  single.bare_engine = Make(19.5);
  single.throughput_ips = 37.123456;
  single.ratio_e2e_to_bare = 1.3271;
  single.ratio_no_decode_to_bare = 1.2214;
  single.peak_rss_mb = 210.37;
  single.extra["warmup"] = 10;

  ConfigResult pipeline = single;
  pipeline.mode = "pipeline";
  pipeline.workers = 2;
  pipeline.batch = 4;
  pipeline.extra = nlohmann::ordered_json::object();
  r.results = {single, pipeline};
  return r;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> Keys(const nlohmann::ordered_json& j) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : j.items()) keys.push_back(key);
  return keys;
}

TEST(BenchReport, JsonHasAllKeysAndRoundedNumbers) {
  const auto j = nlohmann::ordered_json::parse(ToJson(SampleReport()).dump());
  EXPECT_EQ(Keys(j),
            (std::vector<std::string>{"machine", "cvdeploy_version", "build_type", "ort_version",
                                      "provider", "commit", "model", "source", "cold_start",
                                      "int8_isa", "warnings", "results"}));
  EXPECT_EQ(j["machine"]["cpu_model"], "AMD EPYC 7B13, 64-Core");
  EXPECT_EQ(j["machine"]["isa"].size(), 3u);
  // The sample machine has AVX2 and no VNNI/AMX.
  EXPECT_EQ(j["int8_isa"]["avx2"], true);
  EXPECT_EQ(j["int8_isa"]["avx512_vnni"], false);
  EXPECT_EQ(j["int8_isa"]["int8_dot_products"], false);
  EXPECT_TRUE(j["warnings"].empty());
  EXPECT_EQ(j["model"], "/models/yolo11n,v2.onnx");
  EXPECT_EQ(j["commit"], "abc1234");
  EXPECT_DOUBLE_EQ(j["cold_start"]["load_ms"].get<double>(), 123.457);
  EXPECT_DOUBLE_EQ(j["cold_start"]["first_inference_ms"].get<double>(), 45.6);

  ASSERT_EQ(j["results"].size(), 2u);
  const auto& r0 = j["results"][0];
  EXPECT_EQ(Keys(r0), (std::vector<std::string>{
                          "mode", "threads", "batch", "imgsz", "workers", "iterations", "stages_ms",
                          "bare_engine_ms", "throughput_ips", "ratio_e2e_to_bare",
                          "ratio_no_decode_to_bare", "peak_rss_mb", "warmup"}));
  EXPECT_EQ(r0["mode"], "single");
  EXPECT_EQ(r0["threads"], 4);
  EXPECT_EQ(r0["batch"], 1);
  EXPECT_EQ(r0["imgsz"], 640);
  EXPECT_EQ(r0["iterations"], 100);
  EXPECT_EQ(Keys(r0["stages_ms"]), (std::vector<std::string>{"decode", "preprocess", "inference",
                                                             "postprocess", "end_to_end"}));
  for (const auto& [stage, summary] : r0["stages_ms"].items()) {
    EXPECT_EQ(Keys(summary), (std::vector<std::string>{"min", "mean", "p50", "p90", "p99"}))
        << stage;
  }
  EXPECT_DOUBLE_EQ(r0["stages_ms"]["end_to_end"]["min"].get<double>(), 26.123);
  EXPECT_DOUBLE_EQ(r0["stages_ms"]["end_to_end"]["p50"].get<double>(), 26.523);
  EXPECT_DOUBLE_EQ(r0["stages_ms"]["inference"]["p99"].get<double>(), 22.0);
  EXPECT_DOUBLE_EQ(r0["bare_engine_ms"]["p50"].get<double>(), 19.9);
  EXPECT_TRUE(r0["throughput_ips"].is_number());
  EXPECT_DOUBLE_EQ(r0["throughput_ips"].get<double>(), 37.123);
  EXPECT_DOUBLE_EQ(r0["ratio_e2e_to_bare"].get<double>(), 1.327);
  EXPECT_DOUBLE_EQ(r0["ratio_no_decode_to_bare"].get<double>(), 1.221);
  EXPECT_DOUBLE_EQ(r0["peak_rss_mb"].get<double>(), 210.4);
  EXPECT_EQ(r0["warmup"], 10);

  const auto& r1 = j["results"][1];
  EXPECT_EQ(r1["mode"], "pipeline");
  EXPECT_EQ(r1["workers"], 2);
  EXPECT_EQ(r1["batch"], 4);
  EXPECT_FALSE(r1.contains("warmup"));
}

TEST(BenchReport, JsonExtraMustBeAnObject) {
  Report r = SampleReport();
  r.results[0].extra = nlohmann::ordered_json::array({1, 2});
  try {
    ToJson(r);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST(BenchReport, EmptyReportStillHasKeys) {
  const auto j = ToJson(Report{});
  EXPECT_TRUE(j["results"].is_array());
  EXPECT_TRUE(j["results"].empty());
  EXPECT_TRUE(j.contains("cold_start"));
  EXPECT_EQ(Lines(ToCsv(Report{})).size(), 1u);
}

TEST(BenchReport, CsvHeaderRowsAndQuoting) {
  const std::string csv = ToCsv(SampleReport());
  const auto lines = Lines(csv);
  ASSERT_EQ(lines.size(), 3u);  // header + 2 results
  EXPECT_NE(csv.find("\r\n"), std::string::npos);
  EXPECT_EQ(lines[0].rfind("model,mode,threads,batch,imgsz,workers,iterations,decode_p50,", 0), 0u);
  for (const char* column : {"e2e_min", "e2e_mean", "e2e_p50", "e2e_p90", "e2e_p99", "bare_p50",
                             "throughput_ips", "ratio_e2e_to_bare", "ratio_no_decode_to_bare",
                             "peak_rss_mb", "commit", "cpu_model", "provider", "ort_version"}) {
    EXPECT_NE(lines[0].find(column), std::string::npos) << column;
  }
  EXPECT_EQ(lines[1].rfind("\"/models/yolo11n,v2.onnx\",single,4,1,640,1,100,", 0), 0u) << lines[1];
  EXPECT_NE(lines[1].find(",\"AMD EPYC 7B13, 64-Core\","), std::string::npos) << lines[1];
  EXPECT_EQ(lines[2].rfind("\"/models/yolo11n,v2.onnx\",pipeline,4,4,640,2,", 0), 0u) << lines[2];

  // Every row has as many fields as the header (counting commas outside quotes).
  auto count_fields = [](const std::string& line) {
    size_t fields = 1;
    bool quoted = false;
    for (char c : line) {
      if (c == '"') quoted = !quoted;
      if (c == ',' && !quoted) ++fields;
    }
    return fields;
  };
  EXPECT_EQ(count_fields(lines[0]), 29u);
  EXPECT_EQ(count_fields(lines[1]), 29u);
  EXPECT_EQ(count_fields(lines[2]), 29u);
}

TEST(BenchReport, CsvDoublesEmbeddedQuotes) {
  Report r = SampleReport();
  r.model = "my \"best\" model.onnx";
  const auto lines = Lines(ToCsv(r));
  EXPECT_EQ(lines[1].rfind("\"my \"\"best\"\" model.onnx\",", 0), 0u) << lines[1];
}

TEST(BenchReport, MarkdownTable) {
  const std::string md = ToMarkdown(SampleReport());
  for (const char* text : {"/models/yolo11n,v2.onnx", "AMD EPYC 7B13, 64-Core", "avx2", "1.30.0",
                           "CPUExecutionProvider", "0.3.0", "abc1234", "Release", "123.5"}) {
    EXPECT_NE(md.find(text), std::string::npos) << text;
  }
  const auto lines = Lines(md);
  size_t header = lines.size();
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind("| mode | threads | batch | imgsz | decode p50 |", 0) == 0) header = i;
  }
  ASSERT_LE(header + 4, lines.size()) << md;
  EXPECT_EQ(lines[header],
            "| mode | threads | batch | imgsz | decode p50 | pre p50 | infer p50 | post p50 | "
            "e2e p50 | e2e p90 | e2e p99 | bare p50 | e2e/bare | no-decode/bare | img/s |");
  EXPECT_EQ(lines[header + 1].rfind("|---|", 0), 0u);
  EXPECT_EQ(lines.size(), header + 4);  // separator + one row per result, nothing after
  EXPECT_EQ(lines[header + 2],
            "| single | 4 | 1 | 640 | 1.40 | 2.40 | 20.40 | 3.40 | 26.52 | 27.12 | 28.12 | 19.90 "
            "| 1.33 | 1.22 | 37.1 |");
  EXPECT_EQ(lines[header + 3].rfind("| pipeline | 4 | 4 | 640 |", 0), 0u);
}

TEST(BenchReport, WarningsAndInt8IsaAreShown) {
  Report r = SampleReport();
  r.warnings.push_back("int8 model on a CPU without VNNI or AMX-INT8");
  for (const std::string& text : {ToText(r), ToMarkdown(r)}) {
    EXPECT_NE(text.find("int8 ISA"), std::string::npos) << text;
    EXPECT_NE(text.find("AVX2 yes, AVX-512 VNNI no"), std::string::npos) << text;
    EXPECT_NE(text.find("int8 model on a CPU without VNNI"), std::string::npos) << text;
  }
  EXPECT_EQ(ToJson(r)["warnings"][0], "int8 model on a CPU without VNNI or AMX-INT8");
}

TEST(BenchReport, TextMentionsEveryStage) {
  const std::string text = ToText(SampleReport());
  for (const char* word : {"decode", "preprocess", "inference", "postprocess", "end_to_end",
                           "bare engine", "throughput", "37.12", "1.33x", "1.22x", "mode=pipeline",
                           "AMD EPYC 7B13", "abc1234", "cold start"}) {
    EXPECT_NE(text.find(word), std::string::npos) << word;
  }
}

}  // namespace
}  // namespace cvdeploy::bench
