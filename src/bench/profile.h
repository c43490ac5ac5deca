// SPDX-License-Identifier: Apache-2.0
// Where the engine spends its time: a summary of an ONNX Runtime profiling file
// (SessionOptions::EnableProfiling), per graph node and per operator type.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace cvdeploy::bench {

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

}  // namespace cvdeploy::bench
