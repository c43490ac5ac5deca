// SPDX-License-Identifier: Apache-2.0
// The doctor's model facts and static checks (cvdeploy/doctor.h): ReadModelFacts parses the
// ONNX protobuf of a model that cvdeploy may refuse to load, then CheckModelFacts interprets its
// metadata literals and tensor shapes check by check. A rejection must be Error(kBadInput);
// the checks must never throw and every finding must say what it found and what to do.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "cvdeploy/doctor.h"
#include "cvdeploy/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  cvdeploy::ModelFacts facts;
  try {
    facts = cvdeploy::ReadModelFacts(bytes, "fuzz.onnx");
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
    return 0;
  }
  cvdeploy::ModelCheckContext context;
  context.machine.isa = {"avx", "avx2"};
  context.engine.version = "1.30.0";
  context.engine.max_opset = 23;
  for (const cvdeploy::Finding& f : cvdeploy::CheckModelFacts(facts, context)) {
    if (f.area.empty() || f.check.empty() || f.detail.empty() || f.advice.empty()) std::abort();
  }
  return 0;
}
