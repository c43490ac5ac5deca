// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/bench.h"

#include <cstdio>
#include <sstream>
#include <utility>

#include "cvdeploy/error.h"

namespace cvdeploy::bench {
namespace {

constexpr int kMsDecimals = 3;
constexpr int kRatioDecimals = 3;
constexpr int kRssDecimals = 1;

// Fixed-point rendering with `decimals` digits.
std::string Fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

nlohmann::ordered_json SummaryJson(const Summary& s) {
  nlohmann::ordered_json j;
  j["min"] = RoundTo(s.min, kMsDecimals);
  j["mean"] = RoundTo(s.mean, kMsDecimals);
  j["p50"] = RoundTo(s.p50, kMsDecimals);
  j["p90"] = RoundTo(s.p90, kMsDecimals);
  j["p99"] = RoundTo(s.p99, kMsDecimals);
  return j;
}

// The stages in report order, with their JSON / text names.
std::vector<std::pair<const char*, const Summary*>> Stages(const StageSummaries& s) {
  return {{"decode", &s.decode},
          {"preprocess", &s.preprocess},
          {"inference", &s.inference},
          {"postprocess", &s.postprocess},
          {"end_to_end", &s.end_to_end}};
}

nlohmann::ordered_json ResultJson(const ConfigResult& r) {
  nlohmann::ordered_json j;
  j["mode"] = r.mode;
  j["threads"] = r.threads;
  j["batch"] = r.batch;
  j["imgsz"] = r.imgsz;
  j["workers"] = r.workers;
  j["iterations"] = r.iterations;
  nlohmann::ordered_json stages = nlohmann::ordered_json::object();
  for (const auto& [name, summary] : Stages(r.stages)) stages[name] = SummaryJson(*summary);
  j["stages_ms"] = std::move(stages);
  j["bare_engine_ms"] = SummaryJson(r.bare_engine);
  j["throughput_ips"] = RoundTo(r.throughput_ips, kRatioDecimals);
  j["ratio_e2e_to_bare"] = RoundTo(r.ratio_e2e_to_bare, kRatioDecimals);
  j["ratio_no_decode_to_bare"] = RoundTo(r.ratio_no_decode_to_bare, kRatioDecimals);
  j["peak_rss_mb"] = RoundTo(r.peak_rss_mb, kRssDecimals);
  if (r.extra.is_null()) return j;
  if (!r.extra.is_object()) {
    throw InvalidArgument("benchmark result extra must be a JSON object, got " +
                          std::string(r.extra.type_name()));
  }
  for (const auto& [key, value] : r.extra.items()) j[key] = value;
  return j;
}

// RFC 4180: quote a field containing a comma, quote or line break, doubling inner quotes.
std::string CsvField(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string quoted = "\"";
  for (char c : field) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string JoinCsv(const std::vector<std::string>& fields) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) line += ',';
    line += CsvField(fields[i]);
  }
  return line + "\r\n";
}

// Markdown table cell: pipes would end the cell.
std::string MdCell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

std::string IsaList(const MachineInfo& m) {
  if (m.isa.empty()) return "none";
  std::string s;
  for (const auto& flag : m.isa) s += (s.empty() ? "" : " ") + flag;
  return s;
}

// The header shared by the Markdown and text renderings, as (label, value) lines.
std::vector<std::pair<std::string, std::string>> HeaderLines(const Report& r) {
  const MachineInfo& m = r.machine;
  std::string machine = OrDash(m.cpu_model) + ", " + std::to_string(m.physical_cores) +
                        " physical / " + std::to_string(m.logical_cores) +
                        " logical cores, ISA: " + IsaList(m);
  if (!m.os.empty()) machine += ", " + m.os;
  if (m.memory_gib > 0) machine += ", " + Fixed(m.memory_gib, 1) + " GiB";
  std::string model = OrDash(r.model);
  if (!r.source.empty()) model += " (source: " + r.source + ")";
  std::vector<std::pair<std::string, std::string>> lines = {
      {"model", model},
      {"machine", machine},
      {"int8 ISA", Int8IsaSummary(Int8Features(m))},
      {"engine", "ONNX Runtime " + OrDash(r.ort_version) + ", " + OrDash(r.provider)},
      {"cvdeploy", OrDash(r.cvdeploy_version) + " (commit " + OrDash(r.commit) + ", " +
                       OrDash(r.build_type) + ")"},
      {"cold start", "load " + Fixed(r.cold_start.load_ms, 1) + " ms, first inference " +
                         Fixed(r.cold_start.first_inference_ms, 1) + " ms"},
  };
  for (const auto& w : r.warnings) lines.emplace_back("warning", w);
  return lines;
}

std::string ConfigLine(const ConfigResult& c) {
  return "mode=" + c.mode + " threads=" + std::to_string(c.threads) +
         " batch=" + std::to_string(c.batch) + " imgsz=" + std::to_string(c.imgsz) +
         " workers=" + std::to_string(c.workers) + " iterations=" + std::to_string(c.iterations);
}

// One right-aligned row of the text stage table.
std::string TextRow(const std::string& label, const std::vector<std::string>& cells) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "  %-12s", label.c_str());
  std::string row = buffer;
  for (const auto& cell : cells) {
    std::snprintf(buffer, sizeof buffer, "%10s", cell.c_str());
    row += buffer;
  }
  return row + "\n";
}

std::vector<std::string> SummaryCells(const Summary& s) {
  return {Fixed(s.min, 3), Fixed(s.mean, 3), Fixed(s.p50, 3), Fixed(s.p90, 3), Fixed(s.p99, 3)};
}

}  // namespace

nlohmann::ordered_json ToJson(const Report& report) {
  nlohmann::ordered_json j;
  j["machine"] = MachineToJson(report.machine);
  j["cvdeploy_version"] = report.cvdeploy_version;
  j["build_type"] = report.build_type;
  j["ort_version"] = report.ort_version;
  j["provider"] = report.provider;
  j["commit"] = report.commit;
  j["model"] = report.model;
  j["source"] = report.source;
  j["cold_start"] = {
      {"load_ms", RoundTo(report.cold_start.load_ms, kMsDecimals)},
      {"first_inference_ms", RoundTo(report.cold_start.first_inference_ms, kMsDecimals)}};
  j["int8_isa"] = Int8IsaToJson(Int8Features(report.machine));
  j["warnings"] = report.warnings;
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const auto& r : report.results) results.push_back(ResultJson(r));
  j["results"] = std::move(results);
  return j;
}

std::string ToCsv(const Report& report) {
  std::string csv =
      JoinCsv({"model",          "mode",           "threads",           "batch",
               "imgsz",          "workers",        "iterations",        "decode_p50",
               "preprocess_p50", "inference_p50",  "postprocess_p50",   "e2e_min",
               "e2e_mean",       "e2e_p50",        "e2e_p90",           "e2e_p99",
               "bare_min",       "bare_mean",      "bare_p50",          "bare_p90",
               "bare_p99",       "throughput_ips", "ratio_e2e_to_bare", "ratio_no_decode_to_bare",
               "peak_rss_mb",    "commit",         "cpu_model",         "provider",
               "ort_version"});
  const auto ms = [](double v) { return Fixed(v, kMsDecimals); };
  for (const auto& r : report.results) {
    const StageSummaries& s = r.stages;
    csv += JoinCsv({report.model,
                    r.mode,
                    std::to_string(r.threads),
                    std::to_string(r.batch),
                    std::to_string(r.imgsz),
                    std::to_string(r.workers),
                    std::to_string(r.iterations),
                    ms(s.decode.p50),
                    ms(s.preprocess.p50),
                    ms(s.inference.p50),
                    ms(s.postprocess.p50),
                    ms(s.end_to_end.min),
                    ms(s.end_to_end.mean),
                    ms(s.end_to_end.p50),
                    ms(s.end_to_end.p90),
                    ms(s.end_to_end.p99),
                    ms(r.bare_engine.min),
                    ms(r.bare_engine.mean),
                    ms(r.bare_engine.p50),
                    ms(r.bare_engine.p90),
                    ms(r.bare_engine.p99),
                    Fixed(r.throughput_ips, kRatioDecimals),
                    Fixed(r.ratio_e2e_to_bare, kRatioDecimals),
                    Fixed(r.ratio_no_decode_to_bare, kRatioDecimals),
                    Fixed(r.peak_rss_mb, kRssDecimals),
                    report.commit,
                    report.machine.cpu_model,
                    report.provider,
                    report.ort_version});
  }
  return csv;
}

std::string ToMarkdown(const Report& report) {
  std::ostringstream md;
  for (const auto& [label, value] : HeaderLines(report)) {
    md << "- **" << label << "**: " << value << "\n";
  }
  md << "\n| mode | threads | batch | imgsz | decode p50 | pre p50 | infer p50 | post p50 "
        "| e2e p50 | e2e p90 | e2e p99 | bare p50 | e2e/bare | no-decode/bare | img/s |\n";
  md << "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  for (const auto& r : report.results) {
    const StageSummaries& s = r.stages;
    md << "| " << MdCell(r.mode) << " | " << r.threads << " | " << r.batch << " | " << r.imgsz
       << " | " << Fixed(s.decode.p50, 2) << " | " << Fixed(s.preprocess.p50, 2) << " | "
       << Fixed(s.inference.p50, 2) << " | " << Fixed(s.postprocess.p50, 2) << " | "
       << Fixed(s.end_to_end.p50, 2) << " | " << Fixed(s.end_to_end.p90, 2) << " | "
       << Fixed(s.end_to_end.p99, 2) << " | " << Fixed(r.bare_engine.p50, 2) << " | "
       << Fixed(r.ratio_e2e_to_bare, 2) << " | " << Fixed(r.ratio_no_decode_to_bare, 2) << " | "
       << Fixed(r.throughput_ips, 1) << " |\n";
  }
  return md.str();
}

std::string ToText(const Report& report) {
  std::string text;
  for (const auto& [label, value] : HeaderLines(report)) text += label + ": " + value + "\n";
  for (size_t i = 0; i < report.results.size(); ++i) {
    const ConfigResult& r = report.results[i];
    text += "\n[" + std::to_string(i + 1) + "/" + std::to_string(report.results.size()) + "] " +
            ConfigLine(r) + "\n";
    text += TextRow("stage (ms)", {"min", "mean", "p50", "p90", "p99"});
    for (const auto& [name, summary] : Stages(r.stages)) {
      text += TextRow(name, SummaryCells(*summary));
    }
    text += TextRow("bare engine", SummaryCells(r.bare_engine));
    text += "  throughput: " + Fixed(r.throughput_ips, 2) + " img/s\n";
    text += "  end_to_end / bare engine: " + Fixed(r.ratio_e2e_to_bare, 2) +
            "x, without decode / bare engine: " + Fixed(r.ratio_no_decode_to_bare, 2) + "x\n";
    if (r.peak_rss_mb > 0) text += "  peak RSS: " + Fixed(r.peak_rss_mb, 1) + " MB\n";
    if (r.extra.is_object() && !r.extra.empty()) text += "  extra: " + r.extra.dump() + "\n";
  }
  return text;
}

}  // namespace cvdeploy::bench
