// SPDX-License-Identifier: Apache-2.0
// A served model's configuration (DIR/<name>/config.json) and the repository layout
// DIR/<name>/<version>/model.onnx.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cvdeploy/options.h"

namespace cvdeploy::server {

// Which of the available versions are served (Triton's version_policy).
struct VersionPolicy {
  enum class Kind { kLatest, kAll, kSpecific };
  Kind kind = Kind::kLatest;
  int latest = 1;                 // kLatest: the N highest versions
  std::vector<int64_t> versions;  // kSpecific
  // The versions to serve out of `available` (ascending).
  std::vector<int64_t> Select(const std::vector<int64_t>& available) const;
  bool operator==(const VersionPolicy&) const = default;
};

// Data-drift monitoring (docs/server.md "Data drift"): the baseline (from `cvdeploy
// profile-data`; a relative path is relative to the model directory DIR/<name>), the sliding
// window's size in requests and the PSI levels. Without "baseline", a baseline.json beside the
// version's model file is used when present.
struct DriftConfig {
  std::string baseline;
  int window = 1000;
  double warn = 0.1;
  double alert = 0.25;
  bool operator==(const DriftConfig&) const = default;
};

struct ModelConfig {
  // Defaults of the image endpoint (a request's query parameters override them).
  std::optional<float> conf, iou;
  std::optional<int> max_det;
  std::optional<int> imgsz;
  // Rect letterbox for a model with dynamic spatial axes ("rect": true/false); unset: the
  // server's --rect/--no-rect (default on). Fixed-size models ignore it.
  std::optional<bool> rect;
  // ONNX Runtime's graph optimization level ("graph_optimization": "all", "extended", "basic"
  // or "disable"); unset: the server's --graph-opt (default all).
  std::optional<GraphOptimization> graph_optimization;
  // Dynamic batching: up to max_batch_size requests per engine call (needs a dynamic batch
  // axis), waiting at most max_queue_delay_us for the batch to fill. 0/1: no batching.
  int max_batch_size = 1;
  int64_t max_queue_delay_us = 0;
  int instances = 0;       // concurrent engine calls; 0: by cores (batch 1 models) or 1
  int threads = 0;         // engine threads per call; 0: physical cores / instances
  int warmup = 2;          // inferences before the version is ready
  int max_queue_size = 0;  // waiting requests before 503; 0: 16 x instances x batch
  std::string device = "cpu";
  VersionPolicy version_policy;
  DriftConfig drift;
  bool operator==(const ModelConfig&) const = default;
  // Whether a version loaded with `other` behaves exactly as one loaded with this config:
  // every key but version_policy (which only selects versions) is equal.
  bool LoadsAlike(const ModelConfig& other) const;
};

// Parses and validates a config document; unknown keys are errors (they are typos).
// Throws Error(kBadInput) "WHERE: reason".
ModelConfig ParseModelConfig(const nlohmann::json& doc, const std::string& where);
// config.json files larger than this are refused before they are read.
inline constexpr uint64_t kMaxModelConfigBytes = 1 << 20;

// Reads DIR/<name>/config.json if present (defaults otherwise: a removed config.json reverts
// the model to the defaults). Throws Error(kBadInput) "PATH: reason" when it is not a regular
// file (checked with stat, so a FIFO never blocks the caller), is larger than
// kMaxModelConfigBytes, is not JSON, is nested deeper than core::kMaxJsonDepth, or does not
// validate (ParseModelConfig).
ModelConfig ReadModelConfig(const std::string& model_dir);

// A version directory's model file and a signature that changes when the file does.
struct VersionFile {
  std::string path;
  std::string signature;  // size and modification time
  // Non-empty: `path` exists but is not a regular file, or cannot be examined ("not a regular
  // file (a directory)"); the version is broken, and `signature` names what was found instead.
  std::string error;
};
// Examines a model file with stat only (never opens it, so a FIFO cannot block). nullopt: the
// path does not exist at all (not even as a dangling symlink).
std::optional<VersionFile> ProbeModelFile(const std::string& path);
// A version directory's model: model.onnx (its signature includes golden/golden.json when
// present) or model.cvdm (a package); both at once is a broken version. nullopt: neither.
std::optional<VersionFile> ProbeVersionDir(const std::filesystem::path& vdir);
// Scans a repository: model name -> version -> file. Directories that are not positive
// integers, and versions without model.onnx or model.cvdm, are skipped; a model file that is
// not a regular file is listed with its error (a broken version, not a missing one).
std::map<std::string, std::map<int64_t, VersionFile>> ScanRepository(const std::string& dir);

}  // namespace cvdeploy::server
