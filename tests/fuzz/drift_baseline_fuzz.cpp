// SPDX-License-Identifier: Apache-2.0
// Drift baselines (BaselineFromJson, cvdeploy/drift.h): a server reads DIR/<model>/baseline.json
// and `cvdeploy drift --baseline` any file it is given, untrusted bytes. A rejection must be
// Error(kBadInput); an accepted baseline must have the documented shape (every feature's
// histogram of the right length, totals equal to "images" / "boxes"), must compare against
// itself with a PSI of 0 on every feature, and must survive BaselineToJson -> BaselineFromJson
// unchanged. The first input bytes also feed EstimateJpegQuality (bounded reads, -1..100).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cvdeploy/drift.h"
#include "cvdeploy/error.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cvdeploy;
  const int quality = drift::EstimateJpegQuality(data, size);
  if (quality != -1 && (quality < 1 || quality > 100)) std::abort();
  drift::Baseline baseline;
  try {
    baseline = drift::BaselineFromJson(std::string(fuzz::AsText(data, size)), "baseline.json");
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kBadInput) std::abort();
    return 0;
  }
  const drift::Histograms& h = baseline.histograms;
  if (h.classes < 1 || h.classes > drift::kMaxClasses || h.images == 0) std::abort();
  for (int f = 0; f < drift::kFeatureCount; ++f) {
    if (h.counts[f].size() != static_cast<size_t>(drift::BinCount(f, h.classes))) std::abort();
    uint64_t total = 0;
    for (uint64_t c : h.counts[f]) total += c;
    if (total != (drift::Spec(f).per_box ? h.boxes : h.images)) std::abort();
  }
  const drift::DriftReport self = drift::Compare(baseline, h, {});
  for (const drift::FeatureDrift& d : self.features) {
    if (!(std::fabs(d.psi) < 1e-9)) std::abort();
  }
  const std::string text = drift::BaselineToJson(baseline);
  if (drift::BaselineToJson(drift::BaselineFromJson(text, "round trip")) != text) std::abort();
  return 0;
}
