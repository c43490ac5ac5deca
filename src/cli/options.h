// SPDX-License-Identifier: Apache-2.0
// Option groups shared by several subcommands, so flags mean the same everywhere.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cvdeploy/predictor.h"
#include "cvdeploy/security/model_source.h"

namespace cvdeploy::cli {

// --max-model-bytes BYTES on `cmd`: the largest model file read (refused before reading).
void AddMaxModelBytes(CLI::App& cmd, uint64_t* max_model_bytes);
// --max-pixels N on `cmd`: the largest image decoded (checked from its header first).
void AddMaxPixels(CLI::App& cmd, uint64_t* max_pixels);

// --decode-scale on|off on `cmd` (default on): decode a JPEG at the smallest libjpeg scale
// that still covers the model's letterbox (DecodeImageForModel), else at full size.
struct DecodeScaleArg {
  std::string value = "on";
  void Add(CLI::App& cmd);
  // The size to decode for: `model_input` when on, an empty size (full decode) when off.
  cv::Size Target(cv::Size model_input) const { return value == "on" ? model_input : cv::Size(); }
};

// --decrypt-key-file, --decrypt-key-cmd, --trusted-keys, --require-signed: how a model package
// (.cvdm) is opened (docs/security.md "Protected models").
struct ProtectionArgs {
  security::ModelProtection protection;
  void Add(CLI::App& cmd);
};

// --model, --imgsz, --threads, --device, --task, --names, --max-model-bytes and the
// protection flags (ProtectionArgs): --model may be an ONNX file or a model package.
struct ModelArgs {
  std::string path;
  uint64_t max_model_bytes = kDefaultMaxModelBytes;
  int imgsz = 0;  // 0: the model's own size
  int threads = 0;
  std::string device = "cpu";
  std::string task;
  std::string names_file;
  ProtectionArgs protection;

  void Add(CLI::App& cmd);
  // Reads --names and parses --task; throws cvdeploy::Error on bad values.
  SessionOptions ToSessionOptions() const;
};

// --workers, --batch: how many images are in flight and how engine threads are split.
struct PipelineArgs {
  int workers = 0;  // 0: chosen from the cores and --threads
  int batch = 1;

  void Add(CLI::App& cmd);
  // Resolves the thread split for `inputs` images given --threads (0: auto) through
  // PlanThreads (cvdeploy/system.h): a single input gets every core in one engine call
  // (unless --workers is given); many inputs get the default split unless the user fixed
  // --workers and/or --threads. Both outputs are >= 1 afterwards.
  void Resolve(size_t inputs, int* threads, int* workers) const;
};

// --rect/--no-rect, --spin on|off|auto and --graph-opt (predict, validate, bench, serve): the
// letterbox shape on models with dynamic spatial axes, the engine threads' spinning and the
// engine's graph optimization level.
struct EngineArgs {
  bool rect = false, no_rect = false;  // as given (--rect=false counts as --no-rect)
  CLI::Option* rect_option = nullptr;
  std::string spin = "auto";
  std::string graph_opt = "all";

  void Add(CLI::App& cmd);
  // Rect letterbox unless --no-rect (or --rect=false) was given.
  bool Rect() const;
  // --spin as given; kAuto is resolved per mode by ResolveSpin (cvdeploy/system.h).
  Spin ParsedSpin() const;
  // --graph-opt all|extended|basic|disable: ONNX Runtime's graph optimization level.
  GraphOptimization ParsedGraphOptimization() const;
};

// --conf, --iou, --max-det, --classes, --agnostic-nms
struct ThresholdArgs {
  float conf = 0.25f;
  float iou = 0.7f;
  int max_det = 300;
  std::vector<std::string> classes;  // as given: class ids and/or names (ResolveClasses)
  bool agnostic = false;

  void Add(CLI::App& cmd, float default_conf);
  // The options for a model whose class names are `names` (Predictor::meta().names): --classes
  // resolved through ResolveClasses, so it throws Error(kInvalidArgument) on an unknown class.
  PredictOptions ToPredictOptions(const std::vector<std::string>& names,
                                  bool all_contours = false) const;
};

// --classes values (each "0", "person" or a comma list of them, as CLI11 split them) as class
// ids of a model with `names` (index = id), in the order given, without duplicates. A value of
// digits is an id (< names.size()); anything else a name: an exact match first, then one that
// differs only in ASCII case. Throws Error(kInvalidArgument) "--classes: unknown class 'persn'
// (did you mean 'person'?)", or naming the id out of range or the ambiguous name.
std::vector<int> ResolveClasses(const std::vector<std::string>& specs,
                                const std::vector<std::string>& names);

// Opens the model (ONNX file or package, security::OpenModel) and creates its predictor; the
// model's load-time warnings (e.g. the slow dynamic-quantization format) go to stderr as
// "warning: ..." lines.
std::unique_ptr<Predictor> LoadPredictor(const std::string& path, const SessionOptions& session,
                                         const security::ModelProtection& protection = {});

// Checks an output path before a slow model tool runs: not the input model itself, not a
// directory; parents are made (OutputPath). Throws Error(kInvalidArgument) "COMMAND: FLAG ...".
void CheckOutputPath(const std::string& command, const std::string& model, const std::string& flag,
                     const std::string& output);

}  // namespace cvdeploy::cli
