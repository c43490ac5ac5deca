// SPDX-License-Identifier: Apache-2.0
#include "cli/options.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "cli/output_path.h"
#include "cli/suggest.h"
#include "cvdeploy/error.h"
#include "cvdeploy/model.h"
#include "cvdeploy/system.h"

namespace cvdeploy::cli {

void AddMaxModelBytes(CLI::App& cmd, uint64_t* max_model_bytes) {
  cmd.add_option("--max-model-bytes", *max_model_bytes,
                 "Largest model file to read, in bytes (larger files are refused unread)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

void AddMaxPixels(CLI::App& cmd, uint64_t* max_pixels) {
  cmd.add_option("--max-pixels", *max_pixels,
                 "Largest image in pixels (width x height), read from the image header before "
                 "decoding; 0: no limit")
      ->capture_default_str();
}

void DecodeScaleArg::Add(CLI::App& cmd) {
  cmd.add_option("--decode-scale", value,
                 "on: decode JPEGs at the smallest 1/2, 1/4 or 1/8 scale that still covers the "
                 "letterbox (faster, same detections); off: always at full size")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
}

void ProtectionArgs::Add(CLI::App& cmd) {
  cmd.add_option("--decrypt-key-file", protection.decrypt_key_file,
                 "Data key file (cvdeploy keygen --kind data) for encrypted packages");
  cmd.add_option("--decrypt-key-cmd", protection.decrypt_key_cmd,
                 "Command (run with /bin/sh -c) whose stdout is the data key: a KMS or a "
                 "sealed key");
  cmd.add_option("--trusted-keys", protection.trusted_keys_dir,
                 "Directory of trusted signers' *.pub keys; signed packages must verify");
  cmd.add_flag("--require-signed", protection.require_signed,
               "Accept only packages signed by a key in --trusted-keys (no plain .onnx)");
}

void ModelArgs::Add(CLI::App& cmd) {
  cmd.add_option("--model", path, "ONNX model file or model package (.cvdm)")->required();
  protection.Add(cmd);
  AddMaxModelBytes(cmd, &max_model_bytes);
  cmd.add_option("--imgsz", imgsz, "Input size (models with dynamic spatial axes)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--threads", threads, "ONNX Runtime intra-op threads (0: physical cores)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--device", device, "cpu, cuda[:N] or tensorrt[:N]");
  cmd.add_option("--task", task, "Override the task: detect, segment, pose, classify, obb");
  cmd.add_option("--names", names_file, "Override class names from a file");
}

SessionOptions ModelArgs::ToSessionOptions() const {
  SessionOptions options;
  options.device = device;
  options.intra_op_threads = threads;
  options.max_model_bytes = max_model_bytes;
  if (imgsz > 0) options.imgsz = imgsz;
  if (!task.empty()) {
    options.task = ParseTask(task);
    if (!options.task)
      throw InvalidArgument("--task '" + task +
                            "': expected detect, segment, pose, classify or obb");
  }
  if (!names_file.empty()) options.names = ReadNamesFile(names_file);
  return options;
}

void PipelineArgs::Add(CLI::App& cmd) {
  cmd.add_option("--workers", workers,
                 "Concurrent engine calls for many inputs (0: split the cores automatically)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--batch", batch, "Images per engine call (needs a dynamic batch axis)")
      ->check(CLI::PositiveNumber);
}

void PipelineArgs::Resolve(size_t inputs, int* threads, int* workers_out) const {
  // One input: one engine call with every core; many: the default split, or the rest of it
  // when --workers or --threads is fixed (never more threads than physical cores).
  const ThreadPlan plan =
      PlanThreads(PhysicalCores(),
                  {.workers = workers, .engine_threads = *threads, .single_call = inputs <= 1});
  *workers_out = plan.workers;
  *threads = plan.engine_threads;
}

void EngineArgs::Add(CLI::App& cmd) {
  rect_option = cmd.add_flag("--rect", rect,
                             "Models with dynamic spatial axes: smallest stride-aligned letterbox "
                             "(e.g. 810x1080 -> 480x640; the default)");
  CLI::Option* off = cmd.add_flag(
      "--no-rect", no_rect, "Models with dynamic spatial axes: letterbox to the full imgsz square");
  rect_option->excludes(off);
  cmd.add_option("--spin", spin,
                 "Engine threads spin while waiting for work: on, off, or auto (on for a "
                 "single image owning every core, off where work shares the cores)")
      ->check(CLI::IsMember({"on", "off", "auto"}))
      ->capture_default_str();
  cmd.add_option("--graph-opt", graph_opt,
                 "ONNX Runtime graph optimization level: all (fusions and the NCHWc layout), "
                 "extended (fusions), basic (constant folding) or disable")
      ->check(CLI::IsMember({"all", "extended", "basic", "disable"}))
      ->capture_default_str();
}

bool EngineArgs::Rect() const {
  if (no_rect) return false;
  return rect_option == nullptr || rect_option->count() == 0 || rect;
}

GraphOptimization EngineArgs::ParsedGraphOptimization() const {
  return ParseGraphOptimization(graph_opt).value_or(GraphOptimization::kAll);
}

Spin EngineArgs::ParsedSpin() const {
  if (spin == "on") return Spin::kOn;
  if (spin == "off") return Spin::kOff;
  return Spin::kAuto;
}

void ThresholdArgs::Add(CLI::App& cmd, float default_conf) {
  conf = default_conf;
  cmd.add_option("--conf", conf, "Confidence threshold")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd.add_option("--iou", iou, "NMS IoU threshold")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd.add_option("--max-det", max_det, "Maximum detections per image")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--classes", classes,
                 "Keep only these classes, by id or name (repeatable), e.g. 0,5 or person,bus")
      ->delimiter(',');
  cmd.add_flag("--agnostic-nms", agnostic, "Class-agnostic NMS");
}

PredictOptions ThresholdArgs::ToPredictOptions(const std::vector<std::string>& names,
                                               bool all_contours) const {
  PredictOptions options;
  options.conf = conf;
  options.iou = iou;
  options.max_det = max_det;
  options.classes = ResolveClasses(classes, names);
  options.agnostic = agnostic;
  options.all_contours = all_contours;
  return options;
}

namespace {

std::string Trimmed(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

bool EqualIgnoringCase(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// One --classes entry as a class id of a model with `names`.
int ResolveClass(const std::string& spec, const std::vector<std::string>& names) {
  const std::string range = names.empty()
                                ? std::string("the model has no classes")
                                : "the model has " + std::to_string(names.size()) +
                                      " classes, ids 0-" + std::to_string(names.size() - 1);
  const bool negative = spec.size() > 1 && spec[0] == '-';
  const std::string digits = negative ? spec.substr(1) : spec;
  if (std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Digits: an id (a name made of digits alone would be ambiguous, and default names are
    // "class0", "class1", ...).
    if (negative || digits.size() > 9 || std::stoul(digits) >= names.size()) {
      throw InvalidArgument("--classes: class id " + spec + " is out of range (" + range + ")");
    }
    return std::stoi(digits);
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == spec) return static_cast<int>(i);
  }
  std::vector<int> folded;
  for (size_t i = 0; i < names.size(); ++i) {
    if (EqualIgnoringCase(names[i], spec)) folded.push_back(static_cast<int>(i));
  }
  if (folded.size() == 1) return folded[0];
  if (folded.size() > 1) {
    throw InvalidArgument("--classes: class '" + spec + "' matches " +
                          std::to_string(folded.size()) +
                          " class names that differ only in case; give the exact name or its id");
  }
  const std::string hint = DidYouMean(spec, names);
  throw InvalidArgument("--classes: unknown class '" + spec + "'" +
                        (hint.empty() ? " (" + range + "; see cvdeploy info)" : hint));
}

std::filesystem::path Resolved(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p =
      std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec);
  return ec ? std::filesystem::path(path).lexically_normal() : p;
}

}  // namespace

std::vector<int> ResolveClasses(const std::vector<std::string>& specs,
                                const std::vector<std::string>& names) {
  std::vector<int> ids;
  for (const std::string& given : specs) {
    const std::string spec = Trimmed(given);
    if (spec.empty()) continue;  // "0,,5" or a trailing comma
    const int id = ResolveClass(spec, names);
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  return ids;
}

std::unique_ptr<Predictor> LoadPredictor(const std::string& path, const SessionOptions& session,
                                         const security::ModelProtection& protection) {
  security::OpenedModel opened = security::OpenModel(path, protection, session);
  SessionOptions options = session;
  // A decrypted package's plaintext is wiped once the engine session exists.
  if (opened.encrypted) options.keep_model_bytes = false;
  auto predictor = Predictor::Create(opened.model, options);
  opened.DropModelBytes();
  for (const auto& w : predictor->info().warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  return predictor;
}

void CheckOutputPath(const std::string& command, const std::string& model, const std::string& flag,
                     const std::string& output) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string what = command + ": " + flag + " " + output;
  if (Resolved(model) == Resolved(output) ||
      (fs::exists(output, ec) && fs::equivalent(model, output, ec))) {
    throw InvalidArgument(what + " is the input model; write the result to another file");
  }
  if (fs::is_directory(output, ec)) throw InvalidArgument(what + " is a directory, not a file");
  // Created before the (slow) tool runs; the write itself reports any later failure.
  try {
    OutputPath(flag, output);
  } catch (const Error& e) {
    throw InvalidArgument(command + ": " + e.what());
  }
}

}  // namespace cvdeploy::cli
