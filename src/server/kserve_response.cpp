// SPDX-License-Identifier: Apache-2.0
// KServe v2 response encoding (see kserve.h for the contract): outputs are appended straight
// from where they lie (Tensor::Data(), e.g. the engine's buffers) into the body.
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "server/kserve.h"

namespace cvdeploy::server::kserve {
namespace {

using nlohmann::json;

float HalfBitsToFloat(uint16_t bits) {
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  float magnitude = 0.0f;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  } else if (exponent == 31) {
    magnitude = mantissa == 0 ? std::numeric_limits<float>::infinity()
                              : std::numeric_limits<float>::quiet_NaN();
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
  }
  return (bits & 0x8000) ? -magnitude : magnitude;
}

// ---------------------------------------------------------------------------------------
// Response encoding.

void AppendJsonString(std::string& out, std::string_view text) {
  out += json(text).dump(-1, ' ', false, json::error_handler_t::replace);
}

template <typename T>
void AppendNumber(std::string& out, T value) {
  if constexpr (std::is_floating_point_v<T>) {
    // to_chars prints "-0", which JSON parsers (nlohmann, Python) read as the integer 0 and
    // so lose the sign; "-0.0" keeps it.
    if (value == 0 && std::signbit(value)) {
      out += "-0.0";
      return;
    }
  }
  std::array<char, 32> buffer;
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out.append(buffer.data(), result.ptr);
}

// Appends the elements of `tensor` as comma-separated JSON values via write(out, element).
template <typename T, typename Write>
void AppendElements(std::string& out, const Tensor& tensor, Write write) {
  const std::span<const uint8_t> data = tensor.Data();
  const size_t count = data.size() / sizeof(T);
  const uint8_t* bytes = data.data();
  for (size_t i = 0; i < count; ++i) {
    T element;
    std::memcpy(&element, bytes + i * sizeof(T), sizeof(T));
    if (i > 0) out += ',';
    write(out, element, i);
  }
}

template <typename T>
void AppendIntegers(std::string& out, const Tensor& tensor) {
  AppendElements<T>(out, tensor,
                    [](std::string& o, T element, size_t) { AppendNumber(o, element); });
}

// JSON numbers cannot be NaN or infinite; such elements are written as the strings "NaN",
// "Infinity" and "-Infinity" (the spellings of JavaScript and Python's json module), so the
// document stays valid JSON and the client can still tell the three apart.
template <typename T>
void AppendFloat(std::string& out, T value) {
  if (std::isnan(value)) {
    out += "\"NaN\"";
  } else if (std::isinf(value)) {
    out += value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    AppendNumber(out, value);
  }
}

void AppendJsonData(std::string& out, const Tensor& tensor) {
  switch (tensor.datatype) {
    case DataType::kBool:
      AppendElements<uint8_t>(out, tensor, [](std::string& o, uint8_t element, size_t) {
        o += element != 0 ? "true" : "false";
      });
      return;
    case DataType::kUint8:
      return AppendIntegers<uint8_t>(out, tensor);
    case DataType::kUint16:
      return AppendIntegers<uint16_t>(out, tensor);
    case DataType::kUint32:
      return AppendIntegers<uint32_t>(out, tensor);
    case DataType::kUint64:
      return AppendIntegers<uint64_t>(out, tensor);
    case DataType::kInt8:
      return AppendIntegers<int8_t>(out, tensor);
    case DataType::kInt16:
      return AppendIntegers<int16_t>(out, tensor);
    case DataType::kInt32:
      return AppendIntegers<int32_t>(out, tensor);
    case DataType::kInt64:
      return AppendIntegers<int64_t>(out, tensor);
    case DataType::kFp16:
      // A half is exactly a float; the shortest float form parses back to that float and so
      // converts back to the same half.
      AppendElements<uint16_t>(out, tensor, [](std::string& o, uint16_t bits, size_t) {
        AppendFloat(o, HalfBitsToFloat(bits));
      });
      return;
    case DataType::kFp32:
      AppendElements<float>(out, tensor,
                            [](std::string& o, float element, size_t) { AppendFloat(o, element); });
      return;
    case DataType::kFp64:
      AppendElements<double>(
          out, tensor, [](std::string& o, double element, size_t) { AppendFloat(o, element); });
      return;
    case DataType::kBytes:
      break;
  }
  throw std::invalid_argument("output '" + tensor.name + "': BYTES outputs are not supported");
}

void CheckOutput(const Tensor& tensor) {
  if (tensor.datatype == DataType::kBytes) {
    throw std::invalid_argument("output '" + tensor.name + "': BYTES outputs are not supported");
  }
  for (int64_t dim : tensor.shape) {
    if (dim < 0) {
      throw std::invalid_argument("output '" + tensor.name + "': shape " +
                                  ShapeString(tensor.shape) + " has a negative dimension");
    }
  }
  const std::optional<size_t> count = ElementCount(tensor.shape);
  size_t needed = 0;
  if (!count || __builtin_mul_overflow(*count, ElementSize(tensor.datatype), &needed) ||
      needed != tensor.Data().size()) {
    throw std::invalid_argument("output '" + tensor.name +
                                "': " + std::to_string(tensor.Data().size()) + " bytes, " +
                                std::string(DataTypeName(tensor.datatype)) + " shape " +
                                ShapeString(tensor.shape) + " needs " + std::to_string(needed));
  }
}

}  // namespace

EncodedBody EncodeInferResponse(const InferResponse& response) {
  size_t binary_bytes = 0;
  size_t json_elements = 0;
  bool any_binary = false;
  for (const Tensor& output : response.outputs) {
    CheckOutput(output);
    if (output.binary) {
      any_binary = true;
      binary_bytes += output.Data().size();
    } else {
      json_elements += output.Data().size() / ElementSize(output.datatype);
    }
  }

  EncodedBody encoded;
  std::string& body = encoded.body;
  // Rough guess (about 12 characters per JSON number) so large outputs do not regrow often.
  body.reserve(256 + 64 * response.outputs.size() + 12 * json_elements + binary_bytes);
  body += "{\"model_name\":";
  AppendJsonString(body, response.model_name);
  if (!response.model_version.empty()) {
    body += ",\"model_version\":";
    AppendJsonString(body, response.model_version);
  }
  if (!response.id.empty()) {
    body += ",\"id\":";
    AppendJsonString(body, response.id);
  }
  body += ",\"outputs\":[";
  for (size_t i = 0; i < response.outputs.size(); ++i) {
    const Tensor& output = response.outputs[i];
    if (i > 0) body += ',';
    body += "{\"name\":";
    AppendJsonString(body, output.name);
    body += ",\"datatype\":\"";
    body += DataTypeName(output.datatype);
    body += "\",\"shape\":[";
    for (size_t d = 0; d < output.shape.size(); ++d) {
      if (d > 0) body += ',';
      AppendNumber(body, output.shape[d]);
    }
    body += ']';
    if (output.binary) {
      body += ",\"parameters\":{\"binary_data_size\":";
      AppendNumber(body, output.Data().size());
      body += "}}";
    } else {
      body += ",\"data\":[";
      AppendJsonData(body, output);
      body += "]}";
    }
  }
  body += "]}";

  if (!any_binary) {
    encoded.content_type = kJsonContentType;
    return encoded;
  }
  encoded.header_length = body.size();
  encoded.content_type = kBinaryContentType;
  for (const Tensor& output : response.outputs) {
    // The one copy of an output: from where it lies (the engine's buffer) into the body.
    if (output.binary) {
      const std::span<const uint8_t> data = output.Data();
      body.append(reinterpret_cast<const char*>(data.data()), data.size());
    }
  }
  return encoded;
}

}  // namespace cvdeploy::server::kserve
