// SPDX-License-Identifier: Apache-2.0
// Sampled requests (`cvdeploy serve --sample-rate R --sample-dir DIR`, docs/operations.md
// "Sampling"): the on-disk layout the server writes and `cvdeploy samples list|replay` read.
//
//   DIR/YYYYMMDD/HHMMSSmmm_NNNNNN_<request-id>/   one sample (a directory, renamed into place
//       meta.json       SampleMeta                 whole, so a reader never sees half of one)
//       response.json   the response JSON (image predict: the `cvdeploy predict` object;
//                       KServe infer: the JSON part of the response)
//       input.jpg|.png|.webp|.bmp   the image as received (or, redacted, input.png)
//       input.bin       a KServe tensor: raw little-endian bytes of meta's datatype and shape
//
// Directory names sort by time, so "oldest first" is name order. Reading a store parses
// untrusted bytes: every file is size-capped, JSON depth-bounded and every field checked;
// a corrupt sample is reported (one line) and skipped, never fatal.
// Thread-safe: pure functions (ScanSampleDirs and ListSamples read the file system).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cvdeploy/compare.h"
#include "cvdeploy/types.h"

namespace cvdeploy {

class Predictor;

namespace samples {

inline constexpr std::string_view kFormat = "cvdeploy-sample-1";
inline constexpr size_t kMaxMetaBytes = 64 << 10;       // meta.json
inline constexpr size_t kMaxResponseBytes = 16u << 20;  // response.json
inline constexpr size_t kMaxInputBytes = 256u << 20;    // input.*
inline constexpr size_t kMaxIdLength = 128;             // request / trace ids in meta.json
inline constexpr size_t kMaxDetections = 100000;        // per response.json

struct SampleMeta {
  std::string request_id, trace_id, model, version;
  std::string time;     // UTC, RFC 3339 with milliseconds ("2026-12-04T04:30:00.123Z")
  int64_t time_ms = 0;  // the same, milliseconds since the Unix epoch
  std::string kind;     // "image" or "tensor"
  std::string input;    // file name of the stored input ("input.jpg"); "" when none is stored
  uint64_t input_bytes = 0;
  bool redacted = false;       // --sample-redact: the stored image has persons blurred
  int redacted_regions = 0;    // boxes blurred
  std::string datatype;        // tensor: "FP32"
  std::vector<int64_t> shape;  // tensor: [B, 3, H, W]
  // The prediction options of the request (image kind), so a replay uses the same.
  float conf = 0.25f, iou = 0.7f;
  int max_det = 300, imgsz = 0;
  std::map<std::string, double> timings_ms;  // queue, decode, preprocess, ... (as served)
};

// meta.json text (one line). Never throws beyond std::bad_alloc.
std::string SampleMetaToJson(const SampleMeta& meta);
// Parses meta.json (at most kMaxMetaBytes, depth-bounded). Throws Error(kBadInput)
// "WHAT: FIELD: reason" for anything malformed: unknown format, wrong types, ids longer than
// kMaxIdLength, an input name that is not input.<jpg|png|webp|bmp|bin>, values out of range.
SampleMeta SampleMetaFromJson(std::string_view text, const std::string& what);
// The detections of an image response.json (the `cvdeploy predict` object: width, height,
// task, detections[{class_id, class_name, confidence, box{x1,y1,x2,y2}}]). Throws
// Error(kBadInput) "WHAT: FIELD: reason".
Result SampleResponseFromJson(std::string_view text, const std::string& what);

// One sample directory in a store: its path, name and bytes (sum of its regular files).
struct SampleDir {
  std::string path, name;
  uint64_t bytes = 0;
};
// Every sample directory under `dir` (DIR/<day>/<sample>), oldest first (by day, then name);
// unfinished ones (names starting with '.') are left out. `dir` missing: empty. Throws
// Error(kNotFound/kBadInput) only when `dir` exists but is not a readable directory.
std::vector<SampleDir> ScanSampleDirs(const std::string& dir);

// A sample read back: its directory and metadata.
struct StoredSample {
  SampleDir dir;
  SampleMeta meta;
};
struct SampleListing {
  std::vector<StoredSample> samples;  // oldest first
  std::vector<std::string> skipped;   // one line per corrupt sample ("PATH: reason")
  uint64_t bytes = 0;                 // of every sample directory, corrupt ones included
};
// Reads every sample's meta.json; corrupt ones are listed in `skipped`.
SampleListing ListSamples(const std::string& dir);

// The `samples list` summary: {"dir", "samples", "skipped", "bytes", "first", "last",
// "models": {"NAME:VERSION": count}, "kinds": {"image": n, "tensor": n}, "redacted": n}.
nlohmann::ordered_json ListingToJson(const std::string& dir, const SampleListing& listing);

struct ReplayOptions {
  float match_iou = 0.5f;  // a pair is the same class with IoU >= this
  size_t max_samples = 0;  // 0: all
};

struct SampleAgreement {
  std::string name;            // sample directory name
  std::string model, version;  // of the stored response
  long stored = 0, replayed = 0, matched = 0;
  double agreement = 1;  // AgreementValue(matched, stored, replayed)
};

struct ReplayReport {
  size_t replayed = 0;
  std::vector<SampleAgreement> per_sample;  // oldest first
  std::vector<std::string> skipped;         // one line per sample not replayed, with the reason
  Agreement overall;                        // stored responses as A, the replay as B
};

// Re-runs every image sample under `dir` through `model` with the sample's own options and
// the match IoU given, and matches the new detections with the stored response (the matcher
// of `cvdeploy compare`). Corrupt samples, tensor samples (their responses are raw outputs)
// and images that fail to decode are skipped with a line each. `step` is called per sample.
// Throws only for `dir` itself (ScanSampleDirs) or an engine failure.
ReplayReport ReplaySamples(const Predictor& model, const std::string& dir,
                           const ReplayOptions& options, const std::function<void()>& step = {});

nlohmann::ordered_json ReplayReportToJson(const ReplayReport& report);

}  // namespace samples
}  // namespace cvdeploy
