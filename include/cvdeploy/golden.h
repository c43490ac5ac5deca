// SPDX-License-Identifier: Apache-2.0
// Golden sets: a few inputs with the outputs a model gave for them when it was known good
// (recorded at pack time or by `cvdeploy golden record`), checked again before the model may
// serve and in CI (`cvdeploy golden check`). They catch a different preprocessing contract, a
// swapped model, wrong weights or a broken conversion, while a different CPU ISA or thread
// count passes (tolerances and their reasons: docs/security.md "Golden-set integrity gate").
// Errors: Error(kBadInput) naming the file or entry for a malformed golden set or input.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cvdeploy/options.h"
#include "cvdeploy/types.h"

namespace cvdeploy {

class Predictor;

inline constexpr int kGoldenFormatVersion = 1;
inline constexpr const char* kGoldenContractKeys[] = {"imgsz", "stride",    "task",
                                                      "names", "kpt_shape", "end2end"};

// How far a check may depart from the record and still pass.
struct GoldenTolerance {
  double min_iou = 0.0;        // matched detections (same class) overlap at least this much
  double max_conf_diff = 0.0;  // |confidence - recorded| at most this
  double edge_conf = 0.0;      // a detection within this of the conf threshold may come or go
  double max_raw_error = 0.0;  // raw-output summary: relative error bound (see the .cpp)
  double max_kpt_error = 0.0;  // pose: mean keypoint distance / box diagonal at most this
};
// The documented defaults (chosen so that ISA / thread-count differences pass).
GoldenTolerance DefaultGoldenTolerance();

// One golden input: the encoded image file as given (its name is a plain file name).
struct GoldenInput {
  std::string name;
  std::vector<uint8_t> bytes;
};

// A summary of one raw output tensor: enough to see wrong weights when the detections agree.
struct GoldenOutputSummary {
  std::string name;
  std::vector<int64_t> shape;
  double mean = 0, mean_abs = 0, rms = 0;
  std::vector<float> samples;  // values at fixed, evenly spaced flat indices
};

// What the model gave for one input at record time.
struct GoldenRecord {
  std::string input;   // GoldenInput::name
  std::string sha256;  // of the input bytes (hex)
  Result result;       // detections (classify: top5) in original-image pixels
  std::vector<GoldenOutputSummary> outputs;
};

struct GoldenSet {
  int format_version = kGoldenFormatVersion;
  std::string model_sha256;      // of the model it was recorded with (informational)
  PredictOptions predict;        // conf / iou / max_det used for record and check
  int imgsz_h = 0, imgsz_w = 0;  // the preprocessing contract at record time
  std::string task;
  int num_classes = 0;
  // The model's Ultralytics metadata entries that define its pre- and postprocessing contract
  // (kGoldenContractKeys, as stored in the file): a changed entry fails the check even when
  // the input shape wins over it, since the model file is then not the one recorded.
  std::map<std::string, std::string> contract;
  GoldenTolerance tolerance;
  std::vector<GoldenRecord> records;
};

// Runs each input through `predictor` the way the server's image endpoint does (decode for
// the model, Prepare, Run, Decode) and records results and raw-output summaries.
GoldenSet RecordGolden(const Predictor& predictor, const std::vector<GoldenInput>& inputs,
                       const PredictOptions& predict = {});

struct GoldenFinding {
  std::string input;   // which input ("" for the set as a whole)
  std::string reason;  // one line
};
struct GoldenReport {
  bool passed = false;
  size_t inputs = 0, detections_matched = 0, detections_expected = 0;
  std::vector<GoldenFinding> failures;
  std::string Summary() const;  // one line: "golden set: passed (N inputs ...)" or the first reason
};

// Checks `predictor` against `set`; `inputs` must contain every recorded input (by name and
// sha256; a missing or changed input is a failure, not an exception).
GoldenReport CheckGolden(const Predictor& predictor, const GoldenSet& set,
                         const std::vector<GoldenInput>& inputs);

// JSON form (the package manifest's "golden" object and DIR/golden.json).
std::string GoldenSetToJson(const GoldenSet& set);
GoldenSet GoldenSetFromJson(const std::string& text, const std::string& source);

// A golden directory: DIR/golden.json and the input files beside it.
void WriteGoldenDir(const std::string& dir, const GoldenSet& set,
                    const std::vector<GoldenInput>& inputs);
struct GoldenDir {
  GoldenSet set;
  std::vector<GoldenInput> inputs;
};
GoldenDir ReadGoldenDir(const std::string& dir);
// Image files (as `predict --source` expands them: a file, a directory or a glob) as inputs.
std::vector<GoldenInput> ReadGoldenInputs(const std::string& source);

}  // namespace cvdeploy
