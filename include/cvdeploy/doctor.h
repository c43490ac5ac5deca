// SPDX-License-Identifier: Apache-2.0
// The environment doctor (`cvdeploy doctor`): answers "is this machine and this model set up
// right?" as a list of findings, each OK / WARN / FAIL with one line of advice.
//   CheckEnvironment  the host (CPU, ISA, memory, CPU quota), ONNX Runtime (version, providers,
//                     supported opset), OpenCV (version, image codecs, video backends) and the
//                     thread split cvdeploy will use (PlanThreads) with the variables that
//                     override or do not override it.
//   CheckModelFacts   what a model file says about itself, read without interpreting it as a
//                     YOLO model (so a model cvdeploy refuses to load is still diagnosed):
//                     opset, Ultralytics metadata consistency, fixed/dynamic axes, precision
//                     traps. Pure: the unit tests feed crafted ModelFacts.
//   CheckModel        a loaded Model: CheckModelFacts, the preprocessing contract, and the
//                     golden set (when given) run here.
// Findings never throw for what they diagnose; errors (Error) are reserved for inputs that
// cannot be read at all (ReadModelFacts on bytes that are not ONNX). Thread-safe: no state.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cvdeploy/golden.h"
#include "cvdeploy/model.h"
#include "cvdeploy/options.h"
#include "cvdeploy/system.h"

namespace cvdeploy {

class Predictor;

struct Finding {
  std::string area;   // "cpu", "engine", "opencv", "threads", "model", "metadata", "golden", ...
  std::string check;  // short name of the check within the area ("isa", "opset", "names", ...)
  enum Level { kOk, kWarn, kFail } level = kOk;
  std::string detail;  // what was found (one line)
  std::string advice;  // what to do about it (one line; for OK: what it means)
};

// "OK", "WARN", "FAIL".
const char* LevelName(Finding::Level level);
// The worst level among `findings` (kOk for none).
Finding::Level WorstLevel(const std::vector<Finding>& findings);

// ---- Environment ----

// The inference engine as this process loaded it.
struct EngineInfo {
  std::string version;                 // runtime library version, "1.30.0"
  int header_api_version = 0;          // ORT_API_VERSION of the headers cvdeploy was built with
  std::vector<std::string> providers;  // Ort::GetAvailableProviders()
  int max_opset = 0;                   // OrtMaxOpset(version)
};
// Describes the ONNX Runtime library loaded by this process. Never throws.
EngineInfo DetectEngine();

// The highest ai.onnx opset an ONNX Runtime release implements, from ONNX Runtime's documented
// version matrix (docs/reference/compatibility.md, "ONNX opset support"): 1.14 18, 1.15 19,
// 1.17 20, 1.18 21, 1.21 22, 1.23 23 (ONNX 1.18). A release newer than the table gets the
// table's last entry (it implements at least that); 0 for an unparsable version.
int OrtMaxOpset(const std::string& ort_version);

// What CheckEnvironment looks at, gathered by DetectEnvironment (tests build their own).
struct EnvironmentFacts {
  MachineInfo machine;
  EngineInfo engine;
  std::string opencv_version;
  std::string opencv_parallel;  // OpenCV's parallel framework ("pthreads", "OpenMP", ...)
  int opencv_threads = 0;       // cv::getNumThreads()
  // Image formats ("jpg", "png", "webp") -> whether an encode/decode round trip works.
  std::map<std::string, bool> image_codecs;
  std::vector<std::string> video_backends;  // cv::videoio_registry::getBackends() names
  int affinity_cpus = 0;                    // CPUs this process may run on (0: unknown)
  double cpu_quota = 0;                     // cgroup cpu.max quota / period (0: no limit)
  std::map<std::string, std::string> env;   // the thread-related variables that are set
};
// Reads the current process's environment. Never throws.
EnvironmentFacts DetectEnvironment();

// The environment's findings (areas "cpu", "memory", "engine", "opencv", "threads").
std::vector<Finding> CheckEnvironment(const EnvironmentFacts& facts);
// CheckEnvironment(DetectEnvironment()).
std::vector<Finding> CheckEnvironment();

// ---- Model ----

// A model file as stored, before cvdeploy interprets it.
struct ModelFacts {
  std::string name;
  std::map<std::string, int64_t> opsets;  // domain ("" = ai.onnx) -> version
  std::vector<TensorInfo> inputs, outputs;
  std::map<std::string, std::string> metadata;  // metadata_props
  std::map<std::string, int> op_counts;         // node op_type -> count (main graph)
};
// Parses model bytes (ONNX protobuf). Throws Error(kBadInput) "NAME: ..." when they are not an
// ONNX model.
ModelFacts ReadModelFacts(const std::vector<uint8_t>& bytes, const std::string& name);

// What the model checks compare with: the machine and engine it will run on.
struct ModelCheckContext {
  MachineInfo machine;
  EngineInfo engine;
  std::string device = "cpu";  // --device: cpu | cuda[:N] | tensorrt[:N]
};

// Static checks of `facts` (areas "model", "metadata", "axes", "precision"): opset vs
// context.engine.max_opset; Ultralytics metadata present, parsable and consistent with the
// tensors (imgsz vs a fixed input, stride, names count vs output channels, task vs output
// layout, batch); fixed or dynamic axes; ConvInteger, int8 QDQ without VNNI, float16 on CPU.
std::vector<Finding> CheckModelFacts(const ModelFacts& facts, const ModelCheckContext& context);

// The preprocessing cvdeploy applies for `meta` (area "preprocess"): always OK; the detail
// states the letterbox size, pad value, resize, channel order and normalization.
Finding PreprocessingFinding(const ModelMeta& meta);

// A golden set run through `predictor` here (area "golden"): OK when it passes, FAIL with the
// first reason otherwise (or when the set cannot run). `source` names the set in the detail.
Finding GoldenFinding(const Predictor& predictor, const GoldenDir& golden,
                      const std::string& source);

struct ModelCheckOptions {
  SessionOptions session;           // device, threads, limits of the session
  std::optional<GoldenDir> golden;  // the set to check (package's, golden/ beside, --golden)
  std::string golden_source;        // where it came from, for the detail
};
// Everything about a loaded model: CheckModelFacts (from model.bytes(), else from its info()
// without operator counts), its load-time warnings, an engine session created with
// options.session (area "model", check "session": FAIL with the engine's reason when ONNX
// Runtime refuses it), PreprocessingFinding and, with a golden set, GoldenFinding.
std::vector<Finding> CheckModel(const Model& model, const ModelCheckContext& context,
                                const ModelCheckOptions& options);

// {"findings": [{"area", "check", "level": "ok"|"warn"|"fail", "detail", "advice"}...],
//  "counts": {"ok", "warn", "fail"}, "status": "ok"|"warn"|"fail"}.
nlohmann::ordered_json FindingsToJson(const std::vector<Finding>& findings);

}  // namespace cvdeploy
