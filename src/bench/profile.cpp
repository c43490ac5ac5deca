// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/bench.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cvdeploy/error.h"

namespace cvdeploy::bench {
namespace {

constexpr std::string_view kKernelSuffix = "_kernel_time";

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix.data(), suffix.size()) == 0;
}

// Makes sure an error message stays on one line.
std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  return text;
}

nlohmann::json LoadJson(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw BadInput(path + ": no such file");
  if (!std::filesystem::is_regular_file(path, ec)) throw BadInput(path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BadInput(path + ": cannot open for reading");
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw BadInput(OneLine(path + ": invalid ONNX Runtime profile JSON: " + e.what()));
  }
}

void SortAndShare(std::vector<OperatorCost>& costs, double total_ms) {
  for (auto& c : costs) c.share = total_ms > 0 ? c.total_ms / total_ms : 0.0;
  std::sort(costs.begin(), costs.end(), [](const OperatorCost& a, const OperatorCost& b) {
    if (a.total_ms != b.total_ms) return a.total_ms > b.total_ms;
    if (a.node != b.node) return a.node < b.node;
    return a.op_type < b.op_type;
  });
}

}  // namespace

ProfileSummary ParseOrtProfile(const std::string& path) {
  const nlohmann::json events = LoadJson(path);
  if (!events.is_array()) throw BadInput(path + ": ONNX Runtime profile is not a JSON array");

  ProfileSummary summary;
  std::map<std::string, OperatorCost> nodes;  // by node name
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& event = events[i];
    if (!event.is_object()) continue;
    const auto cat = event.find("cat");
    const auto name = event.find("name");
    if (cat == event.end() || !cat->is_string() || name == event.end() || !name->is_string()) {
      continue;
    }
    const std::string& category = cat->get_ref<const std::string&>();
    const std::string& event_name = name->get_ref<const std::string&>();
    if (category == "Session") {
      if (event_name == "model_run") ++summary.runs;
      continue;
    }
    if (category != "Node" || !EndsWith(event_name, kKernelSuffix)) continue;

    const auto dur = event.find("dur");
    if (dur == event.end() || !dur->is_number()) {
      throw BadInput(path + ": event " + std::to_string(i) + " (" + event_name +
                     ") has no numeric \"dur\"");
    }
    const std::string node = event_name.substr(0, event_name.size() - kKernelSuffix.size());
    std::string op_type = "unknown";
    if (const auto args = event.find("args"); args != event.end() && args->is_object()) {
      const auto op = args->find("op_name");
      if (op != args->end() && op->is_string()) op_type = op->get<std::string>();
    }
    auto& cost = nodes[node];
    cost.node = node;
    if (cost.op_type.empty() || cost.op_type == "unknown") cost.op_type = op_type;
    cost.total_ms += dur->get<double>() / 1000.0;
    ++cost.calls;
  }

  std::map<std::string, OperatorCost> op_types;
  for (auto& [node, cost] : nodes) {
    summary.total_ms += cost.total_ms;
    auto& agg = op_types[cost.op_type];
    agg.op_type = cost.op_type;
    agg.total_ms += cost.total_ms;
    agg.calls += cost.calls;
    summary.by_node.push_back(std::move(cost));
  }
  for (auto& [op, cost] : op_types) summary.by_op_type.push_back(std::move(cost));
  SortAndShare(summary.by_node, summary.total_ms);
  SortAndShare(summary.by_op_type, summary.total_ms);
  return summary;
}

}  // namespace cvdeploy::bench
