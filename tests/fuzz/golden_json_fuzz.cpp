// SPDX-License-Identifier: Apache-2.0
// Golden sets (GoldenSetFromJson, cvdeploy/golden.h): DIR/golden.json beside a model or the
// "golden" object of a package manifest, untrusted bytes. A rejection must be
// Error(kBadInput); an accepted set must respect the documented limits and plain input names,
// and must survive GoldenSetToJson -> GoldenSetFromJson unchanged.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cvdeploy/error.h"
#include "cvdeploy/golden.h"
#include "eval/golden_internal.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cvdeploy;
  GoldenSet set;
  try {
    set = GoldenSetFromJson(std::string(fuzz::AsText(data, size)), "golden.json");
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kBadInput) std::abort();
    return 0;
  }
  if (set.records.empty() || set.records.size() > golden::kMaxRecords) std::abort();
  for (const GoldenRecord& r : set.records) {
    if (!golden::IsPlainFileName(r.input)) std::abort();
    if (r.result.detections.size() > golden::kMaxDetections) std::abort();
    for (const GoldenOutputSummary& s : r.outputs) {
      if (s.samples.size() > golden::kMaxSamples) std::abort();
    }
  }
  const std::string text = GoldenSetToJson(set);
  if (GoldenSetToJson(GoldenSetFromJson(text, "round trip")) != text) std::abort();
  return 0;
}
