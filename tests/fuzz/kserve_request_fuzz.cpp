// SPDX-License-Identifier: Apache-2.0
// KServe v2 inference request decoding (server/kserve.h), JSON and binary tensor data.
// Input: the body, optionally preceded by a line "HL:<value>\n" whose value is given to
// ParseHeaderLength as the Inference-Header-Content-Length header would be (so plain JSON
// fixtures are seeds as they are). Every rejection must be cvdeploy::Error kInvalidArgument (400);
// any other exception (nlohmann's out_of_range, bad_alloc, ...) escapes and is reported as a crash,
// because the router only turns cvdeploy::Error into a clean answer. A decoded request must
// hold exactly product(shape) * element size bytes per tensor.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "cvdeploy/error.h"
#include "fuzz_util.h"
#include "server/kserve.h"

namespace kserve = cvdeploy::server::kserve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body = cvdeploy::fuzz::AsText(data, size);
  try {
    std::optional<size_t> header_length;
    if (body.substr(0, 3) == "HL:") {
      const size_t newline = body.find('\n');
      if (newline == std::string_view::npos) return 0;
      header_length = kserve::ParseHeaderLength(body.substr(3, newline - 3));
      body.remove_prefix(newline + 1);
    }
    const kserve::InferRequest request = kserve::ParseInferRequest(body, header_length);
    if (request.inputs.empty()) std::abort();
    for (const kserve::Tensor& tensor : request.inputs) {
      size_t elements = 1;
      for (int64_t d : tensor.shape) {
        if (d < 0) std::abort();
        elements *= static_cast<size_t>(d);
      }
      const std::span<const uint8_t> bytes = tensor.Data();
      if (bytes.size() != elements * kserve::ElementSize(tensor.datatype)) std::abort();
      // Binary data is a view into the body (no copy): it must lie inside it.
      const auto* first = reinterpret_cast<const uint8_t*>(body.data());
      if (tensor.binary &&
          (bytes.data() < first || bytes.data() + bytes.size() > first + body.size())) {
        std::abort();
      }
    }
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kInvalidArgument) std::abort();  // the server's 400
  }
  return 0;
}
