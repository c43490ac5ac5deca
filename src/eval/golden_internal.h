// SPDX-License-Identifier: Apache-2.0
// Internals of golden sets (cvdeploy/golden.h) shared by its files and the unit tests:
// the limits on what a golden.json may hold, the input-name rule, raw-output summaries and
// the comparison of one recorded input with a new run. Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "cvdeploy/golden.h"
#include "cvdeploy/tensor.h"

namespace cvdeploy::golden {

// Limits of GoldenSetFromJson (it parses untrusted bytes).
inline constexpr size_t kMaxRecords = 1000;
inline constexpr size_t kMaxDetections = 10000;  // per record
inline constexpr size_t kMaxOutputs = 32;        // raw outputs per record
inline constexpr size_t kMaxSamples = 1024;      // per output summary
inline constexpr size_t kMaxRank = 8;
inline constexpr size_t kMaxKeypoints = 1000;
inline constexpr size_t kMaxTop = 5;
inline constexpr size_t kMaxClasses = 100000;
inline constexpr size_t kMaxNameLength = 255;         // input file names
inline constexpr size_t kMaxStringLength = 1024;      // class and output names
inline constexpr size_t kMaxContractValue = 1 << 20;  // a metadata entry (names: ~1 KiB for COCO)
// Samples recorded per output summary.
inline constexpr size_t kSamples = 64;

// A plain file name: 1..255 bytes, no '/', no NUL or control byte, not "." or "..", not
// starting with '.' (no hidden files), so DIR/NAME always stays inside DIR.
bool IsPlainFileName(const std::string& name);

// Summary of row 0 of a float32 output (the one image of a golden run): shape with the
// batch axis set to 1, mean, mean |x|, rms and kSamples values at evenly spaced flat indices
// (index i * n / k). Throws Error(kBadInput) for a non-float32 or empty output.
GoldenOutputSummary SummarizeOutput(const std::string& name, const TensorView& tensor);

struct CompareStats {
  size_t matched = 0, expected = 0;
};

// Compares the detections of one input (`got`) with the recorded ones; appends one line per
// problem to `reasons`. Matching per class, greedy by IoU, best recorded confidence first.
void CompareResults(const Result& recorded, const Result& got, const PredictOptions& predict,
                    const GoldenTolerance& tolerance, CompareStats* stats,
                    std::vector<std::string>* reasons);

// Compares raw-output summaries (same names and shapes; sample relative error, mean, rms).
void CompareOutputs(const std::vector<GoldenOutputSummary>& recorded,
                    const std::vector<GoldenOutputSummary>& got, const GoldenTolerance& tolerance,
                    std::vector<std::string>* reasons);

}  // namespace cvdeploy::golden
