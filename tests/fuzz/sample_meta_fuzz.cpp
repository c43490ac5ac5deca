// SPDX-License-Identifier: Apache-2.0
// The sample store's readers (cvdeploy/samples.h): `cvdeploy samples list|replay` read
// meta.json and response.json from a directory anyone with write access to the store may have
// touched, untrusted bytes. The first byte picks the reader. A rejection must be
// Error(kBadInput); an accepted meta.json must hold only what the contract allows (printable
// ids within kMaxIdLength, a known kind and input name) and survive SampleMetaToJson ->
// SampleMetaFromJson unchanged; an accepted response.json stays within kMaxDetections.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cvdeploy/error.h"
#include "cvdeploy/samples.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cvdeploy;
  if (size == 0) return 0;
  const bool response = data[0] & 1;
  const std::string text(fuzz::AsText(data + 1, size - 1));
  try {
    if (response) {
      const Result r = samples::SampleResponseFromJson(text, "response.json");
      if (r.detections.size() > samples::kMaxDetections) std::abort();
      return 0;
    }
    const samples::SampleMeta m = samples::SampleMetaFromJson(text, "meta.json");
    for (const std::string* id : {&m.request_id, &m.trace_id, &m.model, &m.version}) {
      if (id->size() > samples::kMaxIdLength) std::abort();
      for (char c : *id) {
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
          std::abort();
        }
      }
    }
    if (m.kind != "image" && m.kind != "tensor") std::abort();
    if (!m.input.empty() && m.input.rfind("input.", 0) != 0) std::abort();
    const samples::SampleMeta back =
        samples::SampleMetaFromJson(samples::SampleMetaToJson(m), "meta.json");
    if (back.request_id != m.request_id || back.trace_id != m.trace_id || back.kind != m.kind ||
        back.input != m.input || back.input_bytes != m.input_bytes || back.shape != m.shape ||
        back.max_det != m.max_det || back.imgsz != m.imgsz || back.time_ms != m.time_ms) {
      std::abort();
    }
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kBadInput) std::abort();
  }
  return 0;
}
