// SPDX-License-Identifier: Apache-2.0
// Description of the machine a benchmark ran on, written into every benchmark record so that
// numbers from different hosts are never compared blindly.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cvdeploy::bench {

struct MachineInfo {
  std::string cpu_model = "unknown";  // "model name" of /proc/cpuinfo
  int logical_cores = 0;              // std::thread::hardware_concurrency
  int physical_cores = 0;             // distinct (physical id, core id); else logical_cores
  // The flags present among kIsaFlags, in that order (x86 "flags" or ARM "Features" line).
  std::vector<std::string> isa;
  std::string os;         // "Linux 6.1.0-..." (uname sysname + release)
  double memory_gib = 0;  // MemTotal of /proc/meminfo; 0 when unknown
};

// The instruction-set extensions reported, in report order.
inline const std::vector<std::string> kIsaFlags = {
    "sse4_2",      "avx",      "avx2",     "fma",         "f16c",
    "avx512f",     "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "amx_tile", "amx_int8", "neon",        "asimd"};

// Everything about the current host. Never throws: what cannot be read stays "unknown"/0,
// and the core counts are at least 1.
MachineInfo DetectMachine();

// The testable core of DetectMachine: from the text of /proc/cpuinfo, the cpu model (first
// "model name", else "unknown"), logical_cores (number of "processor" entries),
// physical_cores (distinct (physical id, core id) pairs, else logical_cores) and the ISA
// flags of the first processor. os and memory_gib stay empty.
MachineInfo ParseCpuInfo(const std::string& cpuinfo_text);

// {"cpu_model", "logical_cores", "physical_cores", "isa": [...], "os", "memory_gib"}.
nlohmann::ordered_json MachineToJson(const MachineInfo& machine);

}  // namespace cvdeploy::bench
