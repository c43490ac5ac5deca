// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/system.h"

#include <sys/utsname.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "cvdeploy/stats.h"

namespace cvdeploy {
namespace {

std::string Trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// MemTotal of /proc/meminfo in GiB, 0 when absent.
double ParseMemTotalGib(const std::string& meminfo) {
  std::istringstream lines(meminfo);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("MemTotal:", 0) != 0) continue;
    std::istringstream fields(line.substr(9));
    double kib = 0;
    if (fields >> kib) return kib / (1024.0 * 1024.0);
  }
  return 0;
}

}  // namespace

MachineInfo ParseCpuInfo(const std::string& cpuinfo_text) {
  MachineInfo info;
  std::set<std::pair<std::string, std::string>> cores;
  std::string physical_id, core_id;
  bool have_flags = false, have_model = false;
  int processors = 0;

  // Entries are separated by blank lines; a "processor" line starts one too.
  auto end_entry = [&] {
    if (!core_id.empty()) cores.emplace(physical_id, core_id);
    physical_id.clear();
    core_id.clear();
  };
  std::istringstream lines(cpuinfo_text);
  std::string line;
  while (std::getline(lines, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) {
      if (Trim(line).empty()) end_entry();
      continue;
    }
    const std::string key = Trim(line.substr(0, colon));
    const std::string value = Trim(line.substr(colon + 1));
    if (key == "processor") {
      end_entry();
      ++processors;
    } else if (key == "model name" && !have_model) {
      info.cpu_model = value.empty() ? "unknown" : value;
      have_model = true;
    } else if (key == "physical id") {
      physical_id = value;
    } else if (key == "core id") {
      core_id = value;
    } else if ((key == "flags" || key == "Features") && !have_flags) {
      std::set<std::string> present;
      std::istringstream words(value);
      for (std::string word; words >> word;) present.insert(word);
      for (const auto& flag : kIsaFlags) {
        if (present.count(flag)) info.isa.push_back(flag);
      }
      have_flags = true;
    }
  }
  end_entry();
  info.logical_cores = processors;
  info.physical_cores = cores.empty() ? processors : static_cast<int>(cores.size());
  return info;
}

MachineInfo DetectMachine() {
  MachineInfo info = ParseCpuInfo(ReadWholeFile("/proc/cpuinfo"));
  const int hardware = static_cast<int>(std::thread::hardware_concurrency());
  if (hardware > 0) info.logical_cores = hardware;
  info.logical_cores = std::max(info.logical_cores, 1);
  if (info.physical_cores <= 0) info.physical_cores = info.logical_cores;

  struct utsname name {};
  if (uname(&name) == 0) {
    info.os = std::string(name.sysname) + " " + name.release;
  } else {
    info.os = "unknown";
  }
  info.memory_gib = ParseMemTotalGib(ReadWholeFile("/proc/meminfo"));
  return info;
}

nlohmann::ordered_json MachineToJson(const MachineInfo& machine) {
  nlohmann::ordered_json j;
  j["cpu_model"] = machine.cpu_model;
  j["logical_cores"] = machine.logical_cores;
  j["physical_cores"] = machine.physical_cores;
  j["isa"] = machine.isa;
  j["os"] = machine.os;
  j["memory_gib"] = bench::RoundTo(machine.memory_gib, 2);
  return j;
}

Int8Isa Int8Features(const MachineInfo& machine) {
  const auto has = [&](const char* flag) {
    return std::find(machine.isa.begin(), machine.isa.end(), flag) != machine.isa.end();
  };
  Int8Isa isa;
  isa.x86 = has("sse4_2") || has("avx");
  isa.arm = has("neon") || has("asimd");
  isa.avx2 = has("avx2");
  isa.avx512_vnni = has("avx512_vnni");
  isa.avx_vnni = has("avx_vnni");
  isa.amx_int8 = has("amx_int8");
  return isa;
}

std::string Int8IsaSummary(const Int8Isa& isa) {
  if (isa.arm && !isa.x86) return "ARM NEON (exact int8 arithmetic)";
  const auto yes = [](bool b) { return b ? "yes" : "no"; };
  std::string s = "AVX2 ";
  s.append(yes(isa.avx2)).append(", AVX-512 VNNI ").append(yes(isa.avx512_vnni));
  s.append(", AVX-VNNI ").append(yes(isa.avx_vnni)).append(", AMX-INT8 ").append(yes(isa.amx_int8));
  return s;
}

nlohmann::ordered_json Int8IsaToJson(const Int8Isa& isa) {
  nlohmann::ordered_json j;
  j["avx2"] = isa.avx2;
  j["avx512_vnni"] = isa.avx512_vnni;
  j["avx_vnni"] = isa.avx_vnni;
  j["amx_int8"] = isa.amx_int8;
  j["int8_dot_products"] = isa.dot_products();
  return j;
}

std::string Int8IsaWarning(const Int8Isa& isa, bool int8_model) {
  if (!int8_model || !isa.x86 || isa.dot_products()) return "";
  return "int8 model on a CPU without VNNI or AMX-INT8 (" + Int8IsaSummary(isa) +
         "): its int8 kernels use saturating int16 pairs and may be no faster than float32; "
         "compare with the float model in `cvdeploy bench`";
}

int PhysicalCores() {
  // The topology does not change while the process runs: read /proc once.
  static const int cores = std::max(1, DetectMachine().physical_cores);
  return cores;
}

Spin ResolveSpin(Spin requested, bool exclusive) {
  if (requested != Spin::kAuto) return requested;
  return exclusive ? Spin::kOn : Spin::kOff;
}

const char* SpinName(Spin spin) {
  switch (spin) {
    case Spin::kOn:
      return "on";
    case Spin::kOff:
      return "off";
    default:
      return "auto";
  }
}

const char* GraphOptimizationName(GraphOptimization level) {
  switch (level) {
    case GraphOptimization::kExtended:
      return "extended";
    case GraphOptimization::kBasic:
      return "basic";
    case GraphOptimization::kDisabled:
      return "disable";
    default:
      return "all";
  }
}

std::optional<GraphOptimization> ParseGraphOptimization(std::string_view name) {
  for (GraphOptimization level : {GraphOptimization::kAll, GraphOptimization::kExtended,
                                  GraphOptimization::kBasic, GraphOptimization::kDisabled}) {
    if (name == GraphOptimizationName(level)) return level;
  }
  return std::nullopt;
}

ThreadPlan PlanThreads(int cores, const ThreadRequest& request) {
  cores = std::max(1, cores);
  const int threads = std::max(0, request.engine_threads);
  ThreadPlan plan;
  if (request.workers > 0) {
    plan.workers = request.workers;
    plan.engine_threads = threads > 0 ? threads : std::max(1, cores / plan.workers);
  } else if (request.single_call) {
    plan.workers = 1;
    plan.engine_threads = threads > 0 ? threads : cores;
  } else if (threads > 0 && request.fit_workers_to_threads) {
    plan.workers = std::max(1, cores / threads);
    plan.engine_threads = threads;
  } else {
    plan.workers = std::min(cores, 4);
    plan.engine_threads = threads > 0 ? threads : std::max(1, cores / plan.workers);
  }
  return plan;
}

}  // namespace cvdeploy
