// SPDX-License-Identifier: Apache-2.0
// KServe v2 / Open Inference Protocol REST codec: decodes inference requests (JSON tensor data
// and Triton's binary tensor data extension), encodes inference responses, errors and the
// server/model metadata documents. Pure data transformation: no HTTP, no model execution.
// Errors are cvdeploy::Error with kInvalidArgument (malformed request); the server maps codes
// to statuses.
//
// Tensor element bytes are always the binary-extension layout: little-endian, row-major, no
// padding; BOOL is one byte (0 or 1); FP16 is IEEE binary16 bits. The codec assumes a
// little-endian host (checked at compile time), so the binary path is a plain copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cvdeploy/tensor.h"

namespace cvdeploy::server::kserve {

// The header that carries the length of the JSON part of a body with binary tensor data.
inline constexpr std::string_view kHeaderLengthHeader = "Inference-Header-Content-Length";
inline constexpr std::string_view kJsonContentType = "application/json";
inline constexpr std::string_view kBinaryContentType = "application/octet-stream";

enum class DataType {
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kFp32,
  kFp64,
  kBytes,
};

// Protocol name to type ("FP32" -> kFp32); exact, case-sensitive match; nullopt if unknown.
std::optional<DataType> ParseDataType(std::string_view name);
// Type to protocol name (kFp32 -> "FP32").
std::string_view DataTypeName(DataType type);
// Bytes per element; 0 for BYTES (variable-length elements).
size_t ElementSize(DataType type);
// The project's ONNX element type names (model::TensorInfo::type: "float32", "float16",
// "float64", "uint8", "int64", "bool", ...) plus the ONNX spellings "float", "double" and
// "tensor(float)". nullopt for types the protocol has no name for (e.g. "bfloat16").
std::optional<DataType> DataTypeFromOnnx(std::string_view onnx_type);

// One tensor: `bytes` holds product(shape) * ElementSize(datatype) bytes in the layout above.
struct Tensor {
  std::string name;
  DataType datatype = DataType::kFp32;
  std::vector<int64_t> shape;
  // The element bytes are either owned (`bytes`: "data" decoded from JSON, or a tensor a
  // caller built) or viewed (`view`: a binary input inside the request body, an engine output
  // inside the predictor's buffers), so that binary data crosses the codec without a copy.
  // Data() is whichever is set; the viewed memory must outlive the tensor's use.
  std::vector<uint8_t> bytes;
  std::span<const uint8_t> view;
  std::span<const uint8_t> Data() const {
    return view.data() != nullptr ? view : std::span<const uint8_t>(bytes);
  }
  // The library's tensor type over Data(); nullopt for a datatype it has no name for.
  std::optional<TensorView> AsTensorView() const;
  // Request: the tensor came as binary data. Response: send it as binary data.
  bool binary = false;
};

// An entry of the request's "outputs". `binary` is resolved: the output's own
// parameters.binary_data when present, otherwise the request's binary_data_output.
struct RequestedOutput {
  std::string name;
  bool binary = false;
};

struct InferRequest {
  std::string id;  // empty when the request has none
  std::vector<Tensor> inputs;
  std::vector<RequestedOutput> outputs;  // empty: the client wants every model output
  bool binary_output = false;            // request parameters.binary_data_output
  nlohmann::json parameters = nlohmann::json::object();  // request-level "parameters", verbatim
};

// Parses the value of the Inference-Header-Content-Length header: decimal digits only.
// Throws cvdeploy::Error kInvalidArgument otherwise (empty, sign, spaces, overflow).
size_t ParseHeaderLength(std::string_view value);

// Decodes one inference request body. `header_length` is the value of
// Inference-Header-Content-Length (nullopt: the whole body is JSON); the bytes after the
// header are the binary section.
// Validates, throwing cvdeploy::Error kInvalidArgument with a one-line reason (control bytes
// escaped) naming the field or tensor:
//  - header_length <= body size; the JSON part nests at most core::kMaxJsonDepth (64) levels,
//    checked by a flat scan before it is parsed ("request body: JSON nested deeper than 64
//    levels"), and parses to an object (numbers out of range such as 1e400 are invalid JSON);
//  - "id" is a string if present; "parameters" an object if present, its
//    "binary_data_output" a bool if present;
//  - "inputs" is a non-empty array; each input an object with a string "name" (unique), a
//    known "datatype" (BYTES is rejected: "BYTES tensors are not supported"), a "shape" of
//    non-negative integers, and exactly one of "data" or parameters.binary_data_size;
//  - "data": an array, flat or nested (nesting is not checked against the shape; leaves are
//    taken in document order, i.e. row-major). Its element count must equal product(shape).
//    Each element must fit the datatype: integers only for integer types (an integral value
//    written as 2.0 is accepted, 1.5 is not), within the type's range; BOOL takes true/false
//    only; FP16/FP32 reject magnitudes above the largest finite value and round to nearest;
//  - binary_data_size: a non-negative integer equal to product(shape) * ElementSize; the
//    binary inputs take consecutive slices of the binary section in input order, and the
//    sizes must add up to exactly the binary section's length (so a body with stray bytes
//    after the JSON header is rejected too);
//  - "outputs", if present, an array of objects with a unique string "name" and optional
//    "parameters" whose "binary_data" is a bool ("classification" is rejected as
//    unsupported).
// Unknown fields are ignored. JSON data costs one DOM parse plus a linear pass; binary data
// costs no copy: such inputs view `body` (Tensor::view), which must outlive the request.
InferRequest ParseInferRequest(std::string_view body, std::optional<size_t> header_length);

// Whether the response should carry `output_name` as binary data: the setting of that
// output in request.outputs if it is listed there, otherwise request.binary_output.
bool OutputWantsBinary(const InferRequest& request, std::string_view output_name);

struct InferResponse {
  std::string model_name;
  std::string model_version;  // omitted from the JSON when empty
  std::string id;             // omitted from the JSON when empty (echo the request's id)
  std::vector<Tensor> outputs;
};

// A response body ready for the transport. When header_length is set, send it as the
// Inference-Header-Content-Length header.
struct EncodedBody {
  std::string body;
  std::optional<size_t> header_length;
  std::string content_type;
};

// Encodes a response. Non-binary outputs become flat "data" arrays: integers exactly,
// BOOL as true/false, FP32/FP16 in the shortest form that parses back to the same float
// (FP16 via its exact float value), FP64 in the shortest round-trip form. Binary outputs
// get parameters.binary_data_size and their bytes appended after the JSON in output order;
// then header_length is the JSON length and content_type application/octet-stream,
// otherwise header_length is nullopt and content_type application/json.
// JSON numbers cannot be NaN or infinite: in a non-binary floating output such an element is
// the string "NaN", "Infinity" or "-Infinity" (binary output carries the IEEE bits as they are).
// A tensor whose byte count does not match its shape, or a BYTES output, is a caller bug:
// std::invalid_argument.
EncodedBody EncodeInferResponse(const InferResponse& response);

// {"error": message}. Bytes of `message` that are not valid UTF-8 are replaced by U+FFFD so
// that the document can always be serialized.
nlohmann::json ErrorJson(std::string_view message);

// A tensor of the model metadata document; -1 marks a dynamic dimension.
struct TensorMeta {
  std::string name;
  std::string datatype;  // protocol name, e.g. "FP32"
  std::vector<int64_t> shape;
};

// {"name", "version", "extensions": [...]}: the server metadata document.
nlohmann::json ServerMetadataJson(std::string_view name, std::string_view version,
                                  const std::vector<std::string>& extensions);
// {"name", "versions": [...], "platform", "inputs": [...], "outputs": [...]}, each tensor
// {"name", "datatype", "shape"}: the model metadata document.
nlohmann::json ModelMetadataJson(std::string_view name, const std::vector<std::string>& versions,
                                 std::string_view platform, const std::vector<TensorMeta>& inputs,
                                 const std::vector<TensorMeta>& outputs);

}  // namespace cvdeploy::server::kserve
