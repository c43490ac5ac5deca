// SPDX-License-Identifier: Apache-2.0
// What `cvdeploy bench` uses besides the predictor and the pipeline: the benchmark report
// (what was measured, per configuration and stage, and on what machine, engine and build) with
// its JSON / CSV / Markdown / terminal renderings, ONNX Runtime profile parsing and the
// process's memory. The bench front end fills a Report; nothing here measures anything except
// ReadMemoryUsage. Implemented in src/bench.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cvdeploy/stats.h"
#include "cvdeploy/system.h"

namespace cvdeploy::bench {

// ---- Process memory ----

struct MemoryUsage {
  double rss_mb = 0;   // current resident set (VmRSS)
  double peak_mb = 0;  // peak resident set since the process started (VmHWM)
};

// Reads /proc/self/status; zeros where the kernel does not provide the fields.
MemoryUsage ReadMemoryUsage();

// ---- ONNX Runtime profiles ----

// Time spent in one node (or, aggregated, in one operator type) over all profiled runs.
struct OperatorCost {
  std::string node;     // graph node name; "" in the per-op-type aggregate
  std::string op_type;  // "Conv", "Concat", ... ("unknown" when the event does not say)
  double total_ms = 0;  // sum of the kernel durations
  size_t calls = 0;     // number of kernel executions
  double share = 0;     // total_ms / ProfileSummary::total_ms (0 when that is 0)
};

struct ProfileSummary {
  std::vector<OperatorCost> by_node;     // sorted by total_ms descending, then node name
  std::vector<OperatorCost> by_op_type;  // one entry per op type, same order rule
  double total_ms = 0;                   // sum over all nodes
  size_t runs = 0;                       // number of "model_run" Session events
};

// Parses the JSON array of trace events written by ONNX Runtime's profiler. Only events with
// "cat" == "Node" whose "name" ends in "_kernel_time" count (the node name is the name without
// that suffix; "dur" is in microseconds, the op type is "args.op_name"); fence and Session
// events are ignored except that "model_run" Session events are counted in `runs`.
// A missing, unreadable or malformed file throws BadInput("PATH: reason") on one line.
ProfileSummary ParseOrtProfile(const std::string& path);

// ---- Report ----

// Per-image time of each stage, in milliseconds.
struct StageSummaries {
  Summary decode, preprocess, inference, postprocess, end_to_end;
};

// The measurements of one configuration (threads x batch x imgsz x workers).
struct ConfigResult {
  std::string mode = "single";  // "single" (one image in a loop) or "pipeline" (a directory)
  int threads = 0, batch = 1, imgsz = 640, workers = 1;
  size_t iterations = 0;  // measured iterations (images in pipeline mode)
  StageSummaries stages;  // per image, ms
  Summary bare_engine;    // one session run on a preallocated input, ms per call
  double throughput_ips = 0;
  double ratio_e2e_to_bare = 0;        // end_to_end.p50 / (bare_engine.p50 / batch), by the caller
  double ratio_no_decode_to_bare = 0;  // (pre + infer + post) p50 over the same, by the caller
  double peak_rss_mb = 0;              // 0 = not measured
  // Free-form additions (must be an object), merged into this result's JSON record; a key
  // that collides with a standard one replaces its value.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

struct ColdStart {
  double load_ms = 0, first_inference_ms = 0;
};

struct Report {
  MachineInfo machine;
  std::string cvdeploy_version, commit, build_type, ort_version, provider, model, source;
  ColdStart cold_start;
  std::vector<ConfigResult> results;
  // One line each, shown in every rendering (e.g. an int8 model on a CPU without VNNI/AMX).
  std::vector<std::string> warnings;
};

// {"machine", "cvdeploy_version", "build_type", "ort_version", "provider", "commit", "model",
//  "source", "cold_start": {"load_ms", "first_inference_ms"}, "int8_isa" (Int8IsaToJson of the
//  machine), "warnings": [...], "results": [{"mode", "threads",
//  "batch", "imgsz", "workers", "iterations", "stages_ms": {stage: {"min", "mean", "p50",
//  "p90", "p99"}}, "bare_engine_ms": {...}, "throughput_ips", "ratio_e2e_to_bare",
//  "ratio_no_decode_to_bare", "peak_rss_mb", ...extra}]}. Numbers stay numeric, rounded to
// 3 decimals (ms, ratios, img/s) or 1 (MB). Throws InvalidArgument when an `extra` is not an
// object.
nlohmann::ordered_json ToJson(const Report& report);

// RFC 4180 CSV: a header row, then one row per result with the flattened columns model, mode,
// threads, batch, imgsz, workers, iterations, {decode,preprocess,inference,postprocess}_p50,
// e2e_{min,mean,p50,p90,p99}, bare_{min,mean,p50,p90,p99}, throughput_ips, ratio_e2e_to_bare,
// ratio_no_decode_to_bare, peak_rss_mb, commit, cpu_model, provider, ort_version. Lines end
// with "\r\n"; fields with commas, quotes or line breaks are quoted.
std::string ToCsv(const Report& report);

// GitHub Markdown: a header list (model, machine, engine, build, cold start), then a table with
// one row per result (stage p50s, e2e p50/p90/p99, bare p50, both ratios, img/s).
std::string ToMarkdown(const Report& report);

// Terminal rendering: the same header, then per result a stage table (min/mean/p50/p90/p99 of
// every stage and of the bare engine), the throughput and both ratios.
std::string ToText(const Report& report);

}  // namespace cvdeploy::bench
