// SPDX-License-Identifier: Apache-2.0
// The doctor's environment checks (cvdeploy/doctor.h): the host, the engine, OpenCV and the
// thread split cvdeploy will use.
#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio/registry.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cvdeploy/doctor.h"
#include "cvdeploy/system.h"

namespace cvdeploy {
namespace {

// Variables that change (or that users expect to change) the thread counts.
const char* const kThreadVariables[] = {
    "OMP_NUM_THREADS", "OPENCV_FOR_THREADS_NUM", "MKL_NUM_THREADS",      "OPENBLAS_NUM_THREADS",
    "ORT_NUM_THREADS", "OMP_WAIT_POLICY",        "ORT_DISABLE_SPINNING", "KMP_AFFINITY"};

bool Has(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::string Join(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string s;
  for (const auto& item : items) s += (s.empty() ? "" : sep) + item;
  return s;
}

// An 8x8 image encoded and decoded again: whether this OpenCV can read and write the format.
bool RoundTrip(const std::string& ext) {
  try {
    cv::Mat image(8, 8, CV_8UC3, cv::Scalar(10, 120, 230));
    std::vector<uint8_t> bytes;
    if (!cv::imencode("." + ext, image, bytes) || bytes.empty()) return false;
    const cv::Mat back = cv::imdecode(bytes, cv::IMREAD_COLOR);
    return !back.empty() && back.rows == 8 && back.cols == 8;
  } catch (const cv::Exception&) {
    return false;
  }
}

// The "Parallel framework:" line of OpenCV's build information.
std::string ParallelFramework() {
  std::istringstream in(cv::getBuildInformation());
  for (std::string line; std::getline(in, line);) {
    const auto at = line.find("Parallel framework:");
    if (at == std::string::npos) continue;
    std::string value = line.substr(at + 19);
    value.erase(0, value.find_first_not_of(" \t"));
    while (!value.empty() && (value.back() == ' ' || value.back() == '\r')) value.pop_back();
    return value;
  }
  return "unknown";
}

// cgroup v2 cpu.max ("max 100000" or "200000 100000") as a number of CPUs; 0 without a limit.
double CpuQuota() {
  std::ifstream in("/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
  const double q = std::atof(quota.c_str());
  return q > 0 ? q / period : 0;
}

Finding Make(const std::string& area, const std::string& check, Finding::Level level,
             std::string detail, std::string advice) {
  return Finding{area, check, level, std::move(detail), std::move(advice)};
}

bool IsX86(const MachineInfo& m) { return Has(m.isa, "sse4_2") || Has(m.isa, "avx"); }

void CheckCpu(const EnvironmentFacts& f, std::vector<Finding>& out) {
  const MachineInfo& m = f.machine;
  out.push_back(Make("cpu", "model", Finding::kOk,
                     m.cpu_model + ", " + std::to_string(m.physical_cores) + " physical / " +
                         std::to_string(m.logical_cores) + " logical cores, " + m.os,
                     "engine threads default to the physical cores"));
  const std::string isa = m.isa.empty() ? "none recognised" : Join(m.isa, " ");
  if (IsX86(m) && !Has(m.isa, "avx2")) {
    out.push_back(Make("cpu", "isa", Finding::kWarn, "no AVX2 (" + isa + ")",
                       "ONNX Runtime falls back to SSE kernels, several times slower: deploy on "
                       "a CPU with AVX2 (x86-64-v3)"));
  } else {
    out.push_back(Make("cpu", "isa", Finding::kOk, isa,
                       "the engine picks its fastest kernels for these at run time"));
  }
  const Int8Isa int8 = Int8Features(m);
  const bool vnni = int8.dot_products() && int8.x86;
  const bool fp16 = Has(m.isa, "f16c") || Has(m.isa, "asimd");
  std::string low = std::string("int8 dot products (VNNI/AMX): ") + (vnni ? "yes" : "no") + " (" +
                    Int8IsaSummary(int8) + ")" +
                    ", float16 conversion (F16C): " + (fp16 ? "yes" : "no") +
                    ", AVX-512: " + (Has(m.isa, "avx512f") ? "yes" : "no");
  out.push_back(Make("cpu", "precision", vnni || !IsX86(m) ? Finding::kOk : Finding::kWarn, low,
                     vnni || !IsX86(m)
                         ? "int8 (QDQ) models can run faster than float32 here"
                         : "without VNNI, int8 (QDQ) models gain little over float32 here: "
                           "measure with `cvdeploy bench` before shipping one"));
  if (f.affinity_cpus > 0 && f.affinity_cpus < m.logical_cores) {
    out.push_back(Make("cpu", "affinity", Finding::kWarn,
                       "this process may run on " + std::to_string(f.affinity_cpus) + " of " +
                           std::to_string(m.logical_cores) + " CPUs (taskset/cpuset)",
                       "the default thread split counts all physical cores: pass --threads " +
                           std::to_string(f.affinity_cpus) + " (or --workers) to match"));
  }
  if (f.cpu_quota > 0 && f.cpu_quota + 1e-9 < m.physical_cores) {
    char quota[32];
    std::snprintf(quota, sizeof quota, "%.2f", f.cpu_quota);
    out.push_back(Make("cpu", "quota", Finding::kWarn,
                       std::string("cgroup CPU quota ") + quota + " CPUs < " +
                           std::to_string(m.physical_cores) + " physical cores",
                       "threads beyond the quota are throttled: pass --threads " +
                           std::to_string(std::max(1, static_cast<int>(f.cpu_quota))) +
                           " (serve: threads/instances in config)"));
  }
}

void CheckMemory(const EnvironmentFacts& f, std::vector<Finding>& out) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f GiB total", f.machine.memory_gib);
  if (f.machine.memory_gib <= 0) {
    out.push_back(Make("memory", "total", Finding::kWarn, "unknown (no /proc/meminfo)",
                       "make sure the host has >= 1 GiB per served model version"));
  } else if (f.machine.memory_gib < 2) {
    out.push_back(Make("memory", "total", Finding::kWarn, text,
                       "little memory: serve one instance per model, avoid large batches"));
  } else {
    out.push_back(Make("memory", "total", Finding::kOk, text,
                       "enough for several nano/small model sessions"));
  }
}

void CheckEngine(const EnvironmentFacts& f, std::vector<Finding>& out) {
  const EngineInfo& e = f.engine;
  if (e.version.empty()) {
    out.push_back(Make("engine", "version", Finding::kFail, "ONNX Runtime did not answer",
                       "check that libonnxruntime.so.1 is the one cvdeploy was built for"));
    return;
  }
  out.push_back(Make(
      "engine", "version", e.max_opset > 0 ? Finding::kOk : Finding::kWarn,
      "ONNX Runtime " + e.version + " (headers API " + std::to_string(e.header_api_version) +
          "), opsets up to " + (e.max_opset > 0 ? std::to_string(e.max_opset) : "unknown"),
      e.max_opset > 0 ? "models with ai.onnx opset <= " + std::to_string(e.max_opset) + " load here"
                      : "unknown release: opset support cannot be checked"));
  const bool gpu =
      Has(e.providers, "CUDAExecutionProvider") || Has(e.providers, "TensorrtExecutionProvider");
  out.push_back(Make("engine", "providers", Finding::kOk, Join(e.providers),
                     gpu ? "compiled in; --device cuda/tensorrt also needs a GPU and the CUDA "
                           "(TensorRT) libraries at run time"
                         : "CPU only: --device cuda/tensorrt needs a GPU build of ONNX Runtime"));
}

void CheckOpenCv(const EnvironmentFacts& f, std::vector<Finding>& out) {
  std::vector<std::string> yes, no;
  for (const auto& [ext, ok] : f.image_codecs) (ok ? yes : no).push_back(ext);
  const bool core_missing = std::find_if(no.begin(), no.end(), [](const std::string& e) {
                              return e == "jpg" || e == "png";
                            }) != no.end();
  out.push_back(Make("opencv", "image codecs",
                     core_missing ? Finding::kFail
                     : no.empty() ? Finding::kOk
                                  : Finding::kWarn,
                     "OpenCV " + f.opencv_version + ": " + (yes.empty() ? "none" : Join(yes)) +
                         (no.empty() ? "" : "; missing: " + Join(no)),
                     core_missing ? "JPEG/PNG decoding is required: install OpenCV with libjpeg "
                                    "and libpng (libopencv-imgcodecs)"
                     : no.empty() ? "every supported image format decodes"
                                  : "images in the missing formats are refused (415/exit 3): "
                                    "convert them or use an OpenCV built with those codecs"));
  const bool ffmpeg = Has(f.video_backends, "FFMPEG");
  out.push_back(Make("opencv", "video", ffmpeg ? Finding::kOk : Finding::kWarn,
                     f.video_backends.empty() ? "no video backends" : Join(f.video_backends),
                     ffmpeg ? "video files, RTSP and HTTP streams read through FFmpeg"
                            : "without FFMPEG, .mp4 files and rtsp:// streams cannot be read: "
                              "install libopencv-videoio with FFmpeg"));
}

void CheckThreads(const EnvironmentFacts& f, std::vector<Finding>& out) {
  const int cores = std::max(1, f.machine.physical_cores);
  const ThreadPlan many = PlanThreads(cores);
  const ThreadPlan single = PlanThreads(cores, {.single_call = true});
  out.push_back(
      Make("threads", "plan", Finding::kOk,
           std::to_string(cores) + " physical cores: one image -> 1 call x " +
               std::to_string(single.engine_threads) + " engine threads; many images -> " +
               std::to_string(many.workers) + " workers x " + std::to_string(many.engine_threads) +
               " threads; OpenCV " + std::to_string(f.opencv_threads) + " threads (" +
               f.opencv_parallel + ")",
           "PlanThreads: SMT siblings not counted, never oversubscribed; override with --threads "
           "and --workers"));
  std::vector<std::string> set;
  for (const auto& [name, value] : f.env) set.push_back(name + "=" + value);
  if (set.empty()) {
    out.push_back(Make("threads", "environment", Finding::kOk, "no thread variables set",
                       "the plan above applies unchanged"));
    return;
  }
  const bool omp_opencv = f.opencv_parallel.find("OpenMP") != std::string::npos;
  out.push_back(Make("threads", "environment", Finding::kWarn, Join(set, " "),
                     std::string("ONNX Runtime here has no OpenMP and cvdeploy sets its threads "
                                 "itself, so these do not change the engine") +
                         (omp_opencv ? " (OMP_* still affects OpenCV)" : "") +
                         ": use --threads/--workers"));
}

}  // namespace

EnvironmentFacts DetectEnvironment() {
  EnvironmentFacts f;
  f.machine = DetectMachine();
  f.engine = DetectEngine();
  f.opencv_version = CV_VERSION;
  f.opencv_parallel = ParallelFramework();
  f.opencv_threads = cv::getNumThreads();
  for (const char* ext : {"jpg", "png", "webp"}) f.image_codecs[ext] = RoundTrip(ext);
  for (const cv::VideoCaptureAPIs api : cv::videoio_registry::getBackends()) {
    f.video_backends.push_back(cv::videoio_registry::getBackendName(api));
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) f.affinity_cpus = CPU_COUNT(&set);
  f.cpu_quota = CpuQuota();
  for (const char* name : kThreadVariables) {
    if (const char* value = std::getenv(name)) f.env[name] = value;
  }
  return f;
}

std::vector<Finding> CheckEnvironment(const EnvironmentFacts& facts) {
  std::vector<Finding> out;
  CheckCpu(facts, out);
  CheckMemory(facts, out);
  CheckEngine(facts, out);
  CheckOpenCv(facts, out);
  CheckThreads(facts, out);
  return out;
}

std::vector<Finding> CheckEnvironment() { return CheckEnvironment(DetectEnvironment()); }

}  // namespace cvdeploy
