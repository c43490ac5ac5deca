// SPDX-License-Identifier: Apache-2.0
// KServe v2 / Open Inference Protocol REST codec (see kserve.h for the contracts).
#include "server/kserve.h"

#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <unordered_set>
#include <utility>

#include "cvdeploy/error.h"
#include "cvdeploy/json.h"
#include "server/json_excerpt.h"
#include "server/text_escape.h"

namespace cvdeploy::server::kserve {
namespace {

using nlohmann::json;

// Binary tensor data is little-endian; copying it straight into Tensor::bytes (and back out)
// is only right on a little-endian host.
static_assert(std::endian::native == std::endian::little,
              "the KServe codec copies little-endian tensor bytes verbatim");

struct DataTypeInfo {
  DataType type;
  std::string_view name;
  size_t size;
};

constexpr std::array<DataTypeInfo, 13> kDataTypes = {{
    {DataType::kBool, "BOOL", 1},
    {DataType::kUint8, "UINT8", 1},
    {DataType::kUint16, "UINT16", 2},
    {DataType::kUint32, "UINT32", 4},
    {DataType::kUint64, "UINT64", 8},
    {DataType::kInt8, "INT8", 1},
    {DataType::kInt16, "INT16", 2},
    {DataType::kInt32, "INT32", 4},
    {DataType::kInt64, "INT64", 8},
    {DataType::kFp16, "FP16", 2},
    {DataType::kFp32, "FP32", 4},
    {DataType::kFp64, "FP64", 8},
    {DataType::kBytes, "BYTES", 0},
}};

const DataTypeInfo& Info(DataType type) {
  for (const DataTypeInfo& info : kDataTypes) {
    if (info.type == type) return info;
  }
  throw std::invalid_argument("unknown kserve::DataType " + std::to_string(static_cast<int>(type)));
}

// Every malformed request is kInvalidArgument; the message may quote client bytes, so its
// control bytes are escaped (what() is a C string).
[[noreturn]] void BadRequest(const std::string& message) {
  throw EscapedError(ErrorCode::kInvalidArgument, message);
}

// "[1,3,640,640]"; very long shapes are cut so that a message stays one readable line.
std::string ShapeString(const std::vector<int64_t>& shape) {
  constexpr size_t kMaxDims = 16;
  std::string text = "[";
  for (size_t i = 0; i < shape.size() && i < kMaxDims; ++i) {
    if (i > 0) text += ',';
    text += std::to_string(shape[i]);
  }
  if (shape.size() > kMaxDims) text += ",...";
  return text + "]";
}

// A JSON value for an error message: a short prefix, built without recursion.
std::string Excerpt(const json& value) { return JsonExcerpt(value); }

// product(shape), or nullopt when it does not fit in size_t. Dimensions are non-negative.
std::optional<size_t> ElementCount(const std::vector<int64_t>& shape) {
  size_t count = 1;
  for (int64_t dim : shape) {
    if (dim == 0) return 0;  // before any overflow check: [huge, huge, 0] is empty
  }
  for (int64_t dim : shape) {
    if (__builtin_mul_overflow(count, static_cast<size_t>(dim), &count)) return std::nullopt;
  }
  return count;
}

// IEEE binary16 bits nearest to `value` (ties to even), computed from the double directly so
// there is no double rounding through float. Requires |value| <= 65504 (the largest half).
uint16_t DoubleToHalfBits(double value) {
  const uint16_t sign = std::signbit(value) ? 0x8000 : 0;
  const double magnitude = std::fabs(value);
  if (magnitude == 0.0) return sign;
  int exponent = 0;
  std::frexp(magnitude, &exponent);  // magnitude in [2^(exponent-1), 2^exponent)
  int e = exponent - 1;
  if (e < -14) {
    // Subnormal: a multiple of 2^-24. Rounding up to 1024 gives the smallest normal, whose
    // encoding is the same bit pattern.
    return static_cast<uint16_t>(sign |
                                 static_cast<uint16_t>(std::nearbyint(std::ldexp(magnitude, 24))));
  }
  // nearbyint rounds in the current mode, which is the default ties-to-even.
  double mantissa = std::nearbyint(std::ldexp(magnitude, 10 - e));  // in [1024, 2048]
  if (mantissa == 2048.0) {
    mantissa = 1024.0;
    ++e;
  }
  return static_cast<uint16_t>(sign | ((e + 15) << 10) | (static_cast<int>(mantissa) - 1024));
}

// ---------------------------------------------------------------------------------------
// Request decoding.

// Calls fn(leaf) for every non-array value inside the array `data`, depth first (row-major
// order for nested arrays). Iterative: arbitrarily deep nesting cannot overflow the stack.
template <typename Fn>
void ForEachLeaf(const json& data, Fn&& fn) {
  std::vector<std::pair<const json::array_t*, size_t>> stack;
  stack.emplace_back(data.get_ptr<const json::array_t*>(), 0);
  while (!stack.empty()) {
    auto& [array, next] = stack.back();
    if (next == array->size()) {
      stack.pop_back();
      continue;
    }
    const json& item = (*array)[next++];
    if (item.is_array()) {
      stack.emplace_back(item.get_ptr<const json::array_t*>(), 0);  // invalidates array/next
    } else {
      fn(item);
    }
  }
}

size_t CountLeaves(const json& data) {
  size_t count = 0;
  ForEachLeaf(data, [&count](const json&) { ++count; });
  return count;
}

// Where a JSON element came from, for error messages.
struct ElementContext {
  const std::string& input;
  DataType type;
};

[[noreturn]] void BadElement(const ElementContext& context, size_t index, const json& value,
                             std::string_view problem) {
  BadRequest("input '" + context.input + "': data[" + std::to_string(index) +
             "] = " + Excerpt(value) + " " + std::string(problem) + " " +
             std::string(Info(context.type).name));
}

template <typename T>
T ToInteger(const json& value, size_t index, const ElementContext& context) {
  switch (value.type()) {
    case json::value_t::number_unsigned: {
      const auto number = *value.get_ptr<const json::number_unsigned_t*>();
      if (!std::in_range<T>(number)) BadElement(context, index, value, "is out of range for");
      return static_cast<T>(number);
    }
    case json::value_t::number_integer: {
      const auto number = *value.get_ptr<const json::number_integer_t*>();
      if (!std::in_range<T>(number)) BadElement(context, index, value, "is out of range for");
      return static_cast<T>(number);
    }
    case json::value_t::number_float: {
      // JSON does not distinguish 2 from 2.0; only a fractional part is an error.
      const double number = *value.get_ptr<const json::number_float_t*>();
      if (!std::isfinite(number) || number != std::trunc(number)) {
        BadElement(context, index, value, "is not an integer, as needed by");
      }
      // Powers of two are exact doubles, so these bounds are exact even for 64-bit types.
      constexpr int kDigits = std::numeric_limits<T>::digits;
      const double lower = std::is_signed_v<T> ? -std::ldexp(1.0, kDigits) : 0.0;
      const double upper = std::ldexp(1.0, kDigits);
      if (number < lower || number >= upper) {
        BadElement(context, index, value, "is out of range for");
      }
      return static_cast<T>(number);
    }
    default:
      BadElement(context, index, value, "is not a number, as needed by");
  }
}

double ToDouble(const json& value, size_t index, const ElementContext& context) {
  switch (value.type()) {
    case json::value_t::number_unsigned:
      return static_cast<double>(*value.get_ptr<const json::number_unsigned_t*>());
    case json::value_t::number_integer:
      return static_cast<double>(*value.get_ptr<const json::number_integer_t*>());
    case json::value_t::number_float:
      return *value.get_ptr<const json::number_float_t*>();
    default:
      BadElement(context, index, value, "is not a number, as needed by");
  }
}

// Converts every leaf of `data` with convert(leaf, index) -> T into tensor.bytes.
template <typename T, typename Convert>
void FillFromJson(const json& data, size_t count, Tensor& tensor, Convert convert) {
  tensor.bytes.resize(count * sizeof(T));
  uint8_t* out = tensor.bytes.data();
  size_t index = 0;
  ForEachLeaf(data, [&](const json& value) {
    const T element = convert(value, index);
    std::memcpy(out + index * sizeof(T), &element, sizeof(T));
    ++index;
  });
}

template <typename T>
void FillIntegers(const json& data, size_t count, Tensor& tensor, const ElementContext& context) {
  FillFromJson<T>(data, count, tensor, [&context](const json& value, size_t index) {
    return ToInteger<T>(value, index, context);
  });
}

void DecodeJsonData(const json& data, size_t count, Tensor& tensor) {
  const ElementContext context{tensor.name, tensor.datatype};
  switch (tensor.datatype) {
    case DataType::kBool:
      FillFromJson<uint8_t>(data, count, tensor, [&context](const json& value, size_t index) {
        if (!value.is_boolean())
          BadElement(context, index, value, "is not true/false, as needed by");
        return static_cast<uint8_t>(value.get<bool>() ? 1 : 0);
      });
      return;
    case DataType::kUint8:
      return FillIntegers<uint8_t>(data, count, tensor, context);
    case DataType::kUint16:
      return FillIntegers<uint16_t>(data, count, tensor, context);
    case DataType::kUint32:
      return FillIntegers<uint32_t>(data, count, tensor, context);
    case DataType::kUint64:
      return FillIntegers<uint64_t>(data, count, tensor, context);
    case DataType::kInt8:
      return FillIntegers<int8_t>(data, count, tensor, context);
    case DataType::kInt16:
      return FillIntegers<int16_t>(data, count, tensor, context);
    case DataType::kInt32:
      return FillIntegers<int32_t>(data, count, tensor, context);
    case DataType::kInt64:
      return FillIntegers<int64_t>(data, count, tensor, context);
    case DataType::kFp16:
      FillFromJson<uint16_t>(data, count, tensor, [&context](const json& value, size_t index) {
        const double number = ToDouble(value, index, context);
        if (std::fabs(number) > 65504.0) BadElement(context, index, value, "is out of range for");
        return DoubleToHalfBits(number);
      });
      return;
    case DataType::kFp32:
      FillFromJson<float>(data, count, tensor, [&context](const json& value, size_t index) {
        const double number = ToDouble(value, index, context);
        if (std::fabs(number) > std::numeric_limits<float>::max()) {
          BadElement(context, index, value, "is out of range for");
        }
        return static_cast<float>(number);
      });
      return;
    case DataType::kFp64:
      FillFromJson<double>(data, count, tensor, [&context](const json& value, size_t index) {
        return ToDouble(value, index, context);
      });
      return;
    case DataType::kBytes:
      break;
  }
  BadRequest("input '" + tensor.name + "': BYTES tensors are not supported");
}

// The JSON part of a request. Bounded nesting (core::ParseJsonBounded) before any tree exists;
// invalid JSON, including numbers out of range such as 1e400, is kInvalidArgument.
json ParseJsonPart(std::string_view text) {
  try {
    return ParseJsonBounded(text, "request body");
  } catch (const Error& error) {
    // Drop nlohmann's "[json.exception.parse_error.101] " tag; the rest is the useful part.
    std::string reason = error.what();
    if (const size_t tag = reason.find("[json.exception."); tag != std::string::npos) {
      if (const size_t end = reason.find("] ", tag); end != std::string::npos) {
        reason.erase(tag, end + 2 - tag);
      }
    }
    BadRequest(reason);
  }
}

std::vector<int64_t> ParseShape(const json& input, const std::string& where) {
  const auto it = input.find("shape");
  if (it == input.end()) BadRequest(where + ": \"shape\" is missing");
  if (!it->is_array()) {
    BadRequest(where + ": \"shape\" must be an array of non-negative integers, got " +
               Excerpt(*it));
  }
  std::vector<int64_t> shape;
  shape.reserve(it->size());
  for (const json& dim : *it) {
    // number_unsigned is how the parser stores every non-negative integer.
    if (!dim.is_number_unsigned() ||
        !std::in_range<int64_t>(*dim.get_ptr<const json::number_unsigned_t*>())) {
      BadRequest(where + ": \"shape\" " + Excerpt(*it) + " must hold non-negative integers");
    }
    shape.push_back(static_cast<int64_t>(*dim.get_ptr<const json::number_unsigned_t*>()));
  }
  return shape;
}

// `parameters` of an input or output: absent (nullptr) or an object.
const json* FindParameters(const json& object, const std::string& where) {
  const auto it = object.find("parameters");
  if (it == object.end()) return nullptr;
  if (!it->is_object()) BadRequest(where + ": \"parameters\" must be an object");
  return &*it;
}

// Decodes inputs[position]; binary data comes from `binary` at `binary_offset`, which it
// advances.
Tensor ParseInput(const json& input, size_t position, bool has_header_length,
                  std::string_view binary, size_t& binary_offset) {
  if (!input.is_object()) {
    BadRequest("inputs[" + std::to_string(position) + "] must be an object");
  }
  const auto name = input.find("name");
  if (name == input.end() || !name->is_string()) {
    BadRequest("inputs[" + std::to_string(position) + "]: \"name\" must be a string");
  }
  Tensor tensor;
  tensor.name = name->get<std::string>();
  const std::string where = "input '" + tensor.name + "'";

  const auto datatype = input.find("datatype");
  if (datatype == input.end() || !datatype->is_string()) {
    BadRequest(where + ": \"datatype\" must be a string such as \"FP32\"");
  }
  const std::optional<DataType> type = ParseDataType(datatype->get_ref<const std::string&>());
  if (!type) BadRequest(where + ": unknown datatype " + Excerpt(*datatype));
  tensor.datatype = *type;
  if (tensor.datatype == DataType::kBytes) BadRequest(where + ": BYTES tensors are not supported");

  tensor.shape = ParseShape(input, where);
  const std::optional<size_t> count = ElementCount(tensor.shape);
  if (!count) BadRequest(where + ": shape " + ShapeString(tensor.shape) + " is too large");

  const auto data = input.find("data");
  std::optional<uint64_t> binary_size;
  if (const json* parameters = FindParameters(input, where)) {
    if (const auto size = parameters->find("binary_data_size"); size != parameters->end()) {
      if (!size->is_number_unsigned()) {
        BadRequest(where + ": parameters.binary_data_size must be a non-negative integer, got " +
                   Excerpt(*size));
      }
      binary_size = size->get<uint64_t>();
    }
  }
  const bool has_data = data != input.end();
  if (has_data == binary_size.has_value()) {
    BadRequest(where + (has_data ? ": has both \"data\" and parameters.binary_data_size"
                                 : ": needs \"data\" or parameters.binary_data_size"));
  }

  if (binary_size) {
    if (!has_header_length) {
      BadRequest(where + ": parameters.binary_data_size needs the " +
                 std::string(kHeaderLengthHeader) + " header");
    }
    const size_t element_size = ElementSize(tensor.datatype);
    size_t needed = 0;
    const bool too_large = __builtin_mul_overflow(*count, element_size, &needed);
    if (too_large || *binary_size != needed) {
      BadRequest(where + ": binary_data_size is " + std::to_string(*binary_size) + " bytes, " +
                 std::string(DataTypeName(tensor.datatype)) + " shape " +
                 ShapeString(tensor.shape) + " needs " +
                 (too_large ? std::string("more than fits in memory") : std::to_string(needed)));
    }
    const size_t left = binary.size() - binary_offset;
    if (*binary_size > left) {
      BadRequest(where + ": binary_data_size " + std::to_string(*binary_size) +
                 " goes past the end of the body (" + std::to_string(left) + " of the " +
                 std::to_string(binary.size()) + " binary bytes after the JSON header left)");
    }
    const auto* begin = reinterpret_cast<const uint8_t*>(binary.data() + binary_offset);
    tensor.view = std::span<const uint8_t>(begin, *binary_size);  // no copy: views the body
    binary_offset += *binary_size;
    tensor.binary = true;
    return tensor;
  }

  if (!data->is_array()) {
    BadRequest(where + ": \"data\" must be an array, got " + Excerpt(*data));
  }
  const size_t leaves = CountLeaves(*data);
  if (leaves != *count) {
    BadRequest(where + ": data has " + std::to_string(leaves) + " elements, shape " +
               ShapeString(tensor.shape) + " needs " + std::to_string(*count));
  }
  DecodeJsonData(*data, leaves, tensor);
  return tensor;
}

std::vector<RequestedOutput> ParseOutputs(const json& outputs, bool binary_output) {
  if (!outputs.is_array()) BadRequest("\"outputs\" must be an array");
  std::vector<RequestedOutput> result;
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const json& output = outputs[i];
    if (!output.is_object()) BadRequest("outputs[" + std::to_string(i) + "] must be an object");
    const auto name = output.find("name");
    if (name == output.end() || !name->is_string()) {
      BadRequest("outputs[" + std::to_string(i) + "]: \"name\" must be a string");
    }
    RequestedOutput requested{name->get<std::string>(), binary_output};
    const std::string where = "output '" + requested.name + "'";
    if (!seen.insert(requested.name).second) BadRequest(where + " is requested twice");
    if (const json* parameters = FindParameters(output, where)) {
      if (const auto binary = parameters->find("binary_data"); binary != parameters->end()) {
        if (!binary->is_boolean()) {
          BadRequest(where + ": parameters.binary_data must be true or false");
        }
        requested.binary = binary->get<bool>();
      }
      if (parameters->contains("classification")) {
        BadRequest(where + ": parameters.classification is not supported");
      }
    }
    result.push_back(std::move(requested));
  }
  return result;
}

json TensorMetaJson(const TensorMeta& tensor) {
  return {{"name", tensor.name}, {"datatype", tensor.datatype}, {"shape", tensor.shape}};
}

}  // namespace

std::optional<TensorView> Tensor::AsTensorView() const {
  std::optional<cvdeploy::DataType> type;
  switch (datatype) {
    case DataType::kBool:
      type = cvdeploy::DataType::kBool;
      break;
    case DataType::kUint8:
      type = cvdeploy::DataType::kUint8;
      break;
    case DataType::kUint16:
      type = cvdeploy::DataType::kUint16;
      break;
    case DataType::kUint32:
      type = cvdeploy::DataType::kUint32;
      break;
    case DataType::kUint64:
      type = cvdeploy::DataType::kUint64;
      break;
    case DataType::kInt8:
      type = cvdeploy::DataType::kInt8;
      break;
    case DataType::kInt16:
      type = cvdeploy::DataType::kInt16;
      break;
    case DataType::kInt32:
      type = cvdeploy::DataType::kInt32;
      break;
    case DataType::kInt64:
      type = cvdeploy::DataType::kInt64;
      break;
    case DataType::kFp16:
      type = cvdeploy::DataType::kFloat16;
      break;
    case DataType::kFp32:
      type = cvdeploy::DataType::kFloat32;
      break;
    case DataType::kFp64:
      type = cvdeploy::DataType::kFloat64;
      break;
    case DataType::kBytes:
      break;
  }
  if (!type) return std::nullopt;
  return TensorView(*type, shape, Data().data());
}

std::optional<DataType> ParseDataType(std::string_view name) {
  for (const DataTypeInfo& info : kDataTypes) {
    if (info.name == name) return info.type;
  }
  return std::nullopt;
}

std::string_view DataTypeName(DataType type) { return Info(type).name; }

size_t ElementSize(DataType type) { return Info(type).size; }

std::optional<DataType> DataTypeFromOnnx(std::string_view onnx_type) {
  // ONNX Runtime spells types "tensor(float)"; the project's model info spells them "float32".
  if (onnx_type.starts_with("tensor(") && onnx_type.ends_with(")")) {
    onnx_type = onnx_type.substr(7, onnx_type.size() - 8);
  }
  static constexpr std::array<std::pair<std::string_view, DataType>, 15> kOnnxTypes = {{
      {"bool", DataType::kBool},
      {"uint8", DataType::kUint8},
      {"uint16", DataType::kUint16},
      {"uint32", DataType::kUint32},
      {"uint64", DataType::kUint64},
      {"int8", DataType::kInt8},
      {"int16", DataType::kInt16},
      {"int32", DataType::kInt32},
      {"int64", DataType::kInt64},
      {"float16", DataType::kFp16},
      {"float32", DataType::kFp32},
      {"float", DataType::kFp32},
      {"float64", DataType::kFp64},
      {"double", DataType::kFp64},
      {"string", DataType::kBytes},
  }};
  for (const auto& [name, type] : kOnnxTypes) {
    if (name == onnx_type) return type;
  }
  return std::nullopt;
}

size_t ParseHeaderLength(std::string_view value) {
  size_t length = 0;
  const char* end = value.data() + value.size();
  const auto result = std::from_chars(value.data(), end, length);
  // from_chars accepts neither a sign nor spaces for unsigned types, so digits are all that
  // can get through.
  if (value.empty() || result.ec != std::errc() || result.ptr != end) {
    std::string shown(value.substr(0, 40));
    BadRequest(std::string(kHeaderLengthHeader) + " '" + shown +
               "' is not a non-negative decimal integer");
  }
  return length;
}

InferRequest ParseInferRequest(std::string_view body, std::optional<size_t> header_length) {
  size_t json_length = body.size();
  if (header_length) {
    if (*header_length > body.size()) {
      BadRequest(std::string(kHeaderLengthHeader) + " is " + std::to_string(*header_length) +
                 " but the body has only " + std::to_string(body.size()) + " bytes");
    }
    json_length = *header_length;
  }
  const std::string_view binary = body.substr(json_length);
  // Not const: request-level parameters are moved out of it, never deep-copied.
  json document = ParseJsonPart(body.substr(0, json_length));
  if (!document.is_object()) {
    BadRequest("request body must be a JSON object, got " + std::string(document.type_name()));
  }

  InferRequest request;
  if (const auto id = document.find("id"); id != document.end()) {
    if (!id->is_string()) BadRequest("\"id\" must be a string");
    request.id = id->get<std::string>();
  }
  if (const auto parameters = document.find("parameters"); parameters != document.end()) {
    if (!parameters->is_object()) BadRequest("\"parameters\" must be an object");
    if (const auto binary_output = parameters->find("binary_data_output");
        binary_output != parameters->end()) {
      if (!binary_output->is_boolean()) {
        BadRequest("parameters.binary_data_output must be true or false");
      }
      request.binary_output = binary_output->get<bool>();
    }
    request.parameters = std::move(*parameters);
  }

  const auto inputs = document.find("inputs");
  if (inputs == document.end()) BadRequest("\"inputs\" is missing");
  if (!inputs->is_array() || inputs->empty()) {
    BadRequest("\"inputs\" must be a non-empty array");
  }
  std::unordered_set<std::string> seen;
  size_t binary_offset = 0;
  request.inputs.reserve(inputs->size());
  for (size_t i = 0; i < inputs->size(); ++i) {
    Tensor tensor = ParseInput((*inputs)[i], i, header_length.has_value(), binary, binary_offset);
    if (!seen.insert(tensor.name).second) BadRequest("input '" + tensor.name + "' appears twice");
    request.inputs.push_back(std::move(tensor));
  }
  if (binary_offset != binary.size()) {
    BadRequest("the inputs' binary_data_size add up to " + std::to_string(binary_offset) +
               " bytes, but the body has " + std::to_string(binary.size()) +
               " bytes after the JSON header");
  }

  if (const auto outputs = document.find("outputs"); outputs != document.end()) {
    request.outputs = ParseOutputs(*outputs, request.binary_output);
  }
  return request;
}

bool OutputWantsBinary(const InferRequest& request, std::string_view output_name) {
  for (const RequestedOutput& output : request.outputs) {
    if (output.name == output_name) return output.binary;
  }
  return request.binary_output;
}

json ErrorJson(std::string_view message) {
  // Serializing with the replace handler turns invalid UTF-8 into U+FFFD; parsing that back
  // gives a string that can always be serialized again.
  const std::string sanitized = json(message).dump(-1, ' ', false, json::error_handler_t::replace);
  return {{"error", json::parse(sanitized)}};
}

json ServerMetadataJson(std::string_view name, std::string_view version,
                        const std::vector<std::string>& extensions) {
  return {{"name", name}, {"version", version}, {"extensions", extensions}};
}

json ModelMetadataJson(std::string_view name, const std::vector<std::string>& versions,
                       std::string_view platform, const std::vector<TensorMeta>& inputs,
                       const std::vector<TensorMeta>& outputs) {
  json input_list = json::array();
  for (const TensorMeta& input : inputs) input_list.push_back(TensorMetaJson(input));
  json output_list = json::array();
  for (const TensorMeta& output : outputs) output_list.push_back(TensorMetaJson(output));
  return {{"name", name},
          {"versions", versions},
          {"platform", platform},
          {"inputs", std::move(input_list)},
          {"outputs", std::move(output_list)}};
}

}  // namespace cvdeploy::server::kserve
