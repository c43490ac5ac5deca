// SPDX-License-Identifier: Apache-2.0
// The machine cvdeploy runs on (CPU model, cores, ISA, OS, memory) and the one rule that
// splits its cores between concurrent engine calls and engine threads. Every front end and the
// pipeline ask PlanThreads, so that `predict`, `bench` and `serve` split a machine alike.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cvdeploy/options.h"

namespace cvdeploy {

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

// The ISA features that decide whether int8 models pay off on a CPU. ONNX Runtime's int8
// kernels reach their speed with integer dot-product instructions (AVX-512 VNNI, AVX-VNNI,
// AMX-INT8); an x86 CPU with AVX2 only multiplies in saturating int16 pairs, where int8
// gains little over float32. One reading of MachineInfo::isa for `doctor`, `info` and `bench`.
struct Int8Isa {
  bool x86 = false;  // sse4_2 or avx among the flags
  bool arm = false;  // neon or asimd among the flags
  bool avx2 = false, avx512_vnni = false, avx_vnni = false, amx_int8 = false;
  // Integer dot products: VNNI or AMX-INT8 on x86; ARM's int8 paths are exact and fast.
  bool dot_products() const { return avx512_vnni || avx_vnni || amx_int8 || arm; }
};
Int8Isa Int8Features(const MachineInfo& machine);
// "AVX2 yes, AVX-512 VNNI yes, AVX-VNNI no, AMX-INT8 no" (ARM: "ARM NEON").
std::string Int8IsaSummary(const Int8Isa& isa);
// {"avx2", "avx512_vnni", "avx_vnni", "amx_int8": bool, "int8_dot_products": bool}.
nlohmann::ordered_json Int8IsaToJson(const Int8Isa& isa);
// The one-line warning for an int8 (quantized) model on an x86 host without VNNI or AMX, ""
// otherwise (a float model, a host with them, or a CPU these flags do not describe).
std::string Int8IsaWarning(const Int8Isa& isa, bool int8_model);

// Everything about the current host. Never throws: what cannot be read stays "unknown"/0,
// and the core counts are at least 1. Reads /proc on every call.
MachineInfo DetectMachine();

// The testable core of DetectMachine: from the text of /proc/cpuinfo, the cpu model (first
// "model name", else "unknown"), logical_cores (number of "processor" entries),
// physical_cores (distinct (physical id, core id) pairs, else logical_cores) and the ISA
// flags of the first processor. os and memory_gib stay empty.
MachineInfo ParseCpuInfo(const std::string& cpuinfo_text);

// {"cpu_model", "logical_cores", "physical_cores", "isa": [...], "os", "memory_gib"}.
nlohmann::ordered_json MachineToJson(const MachineInfo& machine);

// DetectMachine().physical_cores, at least 1: the engine's default thread count (SMT
// siblings share the floating-point units, so they are not counted). Thread-safe.
int PhysicalCores();

// What a caller asks of the thread split; a 0 field is chosen by PlanThreads.
struct ThreadRequest {
  int workers = 0;         // concurrent engine calls (pipeline workers, server instances)
  int engine_threads = 0;  // engine (intra-op) threads per call
  // Only one engine call at a time can be busy (a single input; a server version that
  // batches requests into one call): one worker gets every core.
  bool single_call = false;
  // When engine_threads is given and workers is not: true fits the workers to the cores
  // (cores / engine_threads, at least 1: the CLI's --threads never oversubscribes); false
  // keeps the default worker count (the server's `threads`, documented as independent of
  // `instances`).
  bool fit_workers_to_threads = true;
};

struct ThreadPlan {
  int workers = 1;         // >= 1
  int engine_threads = 1;  // >= 1
};

// The split of `cores` (values below 1 count as 1) for `request`, in this order:
//  1. workers given: those workers, engine_threads as given or cores / workers (at least 1);
//  2. single_call: 1 worker, engine_threads as given or every core;
//  3. engine_threads given and fit_workers_to_threads: cores / engine_threads workers (>= 1);
//  4. otherwise up to 4 workers (min(cores, 4)), cores / workers engine threads each (or
//     engine_threads as given). Several single-threaded calls scale better on CPU than one
//     multi-threaded call (2 cores: 2 x 1, measured in docs/performance.md); beyond four
//     calls memory grows for little gain, so larger machines give each call more threads.
// Rule 4 never oversubscribes: workers x engine_threads <= cores.
ThreadPlan PlanThreads(int cores, const ThreadRequest& request = {});

// The one rule for Spin::kAuto (docs/performance.md, "Engine thread spinning"): spin only
// while a single engine call owns every core and nothing else runs beside it (`exclusive`:
// one input, one worker, as `predict IMAGE` and `bench --source IMAGE`); never where workers,
// server instances or a decode loop share the cores. kOn and kOff are returned unchanged.
Spin ResolveSpin(Spin requested, bool exclusive);
// "on", "off", "auto".
const char* SpinName(Spin spin);

// "all", "extended", "basic", "disable" (the names of --graph-opt).
const char* GraphOptimizationName(GraphOptimization level);
// The level named `name` (one of GraphOptimizationName's), or nullopt.
std::optional<GraphOptimization> ParseGraphOptimization(std::string_view name);

}  // namespace cvdeploy
