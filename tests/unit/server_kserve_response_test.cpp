// SPDX-License-Identifier: Apache-2.0
// KServe v2 codec, response side: data type names and sizes, response encoding checked by an
// independent hand-written checker of the v2 response and metadata schemas, exact round
// trips of JSON and binary tensors, and the error and metadata documents. Request decoding
// is in server_kserve_request_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/http_error.h"
#include "server/kserve.h"
#include "support/tensor_bytes.h"

namespace cvdeploy::server::kserve {
namespace {

// A tensor's element bytes, owned (JSON data) or viewed (binary data in the body).
std::vector<uint8_t> BytesOf(const Tensor& t) {
  const std::span<const uint8_t> data = t.Data();
  return {data.begin(), data.end()};
}

using cvdeploy::testing::FromBytes;
using cvdeploy::testing::ToBytes;
using nlohmann::json;

// ---------------------------------------------------------------------------------------
// An independent checker of the v2 documents, written from the protocol text (it does not
// use the codec's own type table). Each returns the problems found; empty means valid.

const std::set<std::string> kV2TypeNames = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64",
                                            "INT8", "INT16", "INT32",  "INT64",  "FP16",
                                            "FP32", "FP64",  "BYTES"};

size_t V2ElementBytes(const std::string& type) {
  if (type == "BOOL" || type == "UINT8" || type == "INT8") return 1;
  if (type == "UINT16" || type == "INT16" || type == "FP16") return 2;
  if (type == "UINT32" || type == "INT32" || type == "FP32") return 4;
  if (type == "BYTES") return 0;
  return 8;
}

bool IsString(const json& object, const char* key) {
  return object.contains(key) && object.at(key).is_string();
}

// Checks `shape` is an array of integers >= min_dim; returns the element count (dynamic
// dimensions count as 1).
std::optional<uint64_t> CheckShape(const json& object, int64_t min_dim, const std::string& where,
                                   std::vector<std::string>& problems) {
  if (!object.contains("shape") || !object.at("shape").is_array()) {
    problems.push_back(where + ": shape must be an array");
    return std::nullopt;
  }
  uint64_t count = 1;
  for (const json& dim : object.at("shape")) {
    if (!dim.is_number_integer() || dim.get<int64_t>() < min_dim) {
      problems.push_back(where + ": bad dimension " + dim.dump());
      return std::nullopt;
    }
    if (dim.get<int64_t>() >= 0) count *= dim.get<uint64_t>();
  }
  return count;
}

std::vector<std::string> CheckInferResponse(const json& doc, size_t binary_section_size) {
  std::vector<std::string> problems;
  if (!doc.is_object()) return {"response is not an object"};
  if (!IsString(doc, "model_name")) problems.push_back("model_name must be a string");
  if (doc.contains("model_version") && !doc.at("model_version").is_string()) {
    problems.push_back("model_version must be a string");
  }
  if (doc.contains("id") && !doc.at("id").is_string()) problems.push_back("id must be a string");
  if (!doc.contains("outputs") || !doc.at("outputs").is_array()) {
    problems.push_back("outputs must be an array");
    return problems;
  }
  uint64_t binary_total = 0;
  for (const json& output : doc.at("outputs")) {
    if (!output.is_object()) {
      problems.push_back("output is not an object");
      continue;
    }
    if (!IsString(output, "name")) problems.push_back("output name must be a string");
    const std::string where = "output " + output.value("name", std::string("?"));
    if (!IsString(output, "datatype") || !kV2TypeNames.count(output.at("datatype"))) {
      problems.push_back(where + ": unknown datatype");
      continue;
    }
    const std::string type = output.at("datatype");
    const std::optional<uint64_t> count = CheckShape(output, 0, where, problems);
    if (!count) continue;
    const bool binary = output.contains("parameters") && output.at("parameters").is_object() &&
                        output.at("parameters").contains("binary_data_size");
    if (binary) {
      const json& size = output.at("parameters").at("binary_data_size");
      if (!size.is_number_unsigned()) {
        problems.push_back(where + ": binary_data_size must be a non-negative integer");
        continue;
      }
      if (output.contains("data")) problems.push_back(where + ": both data and binary data");
      if (size.get<uint64_t>() != *count * V2ElementBytes(type)) {
        problems.push_back(where + ": binary_data_size does not match the shape");
      }
      binary_total += size.get<uint64_t>();
      continue;
    }
    if (!output.contains("data") || !output.at("data").is_array()) {
      problems.push_back(where + ": data must be an array");
      continue;
    }
    const json& data = output.at("data");
    if (data.size() != *count) {
      problems.push_back(where + ": data has " + std::to_string(data.size()) +
                         " elements, shape needs " + std::to_string(*count));
    }
    for (const json& element : data) {
      const bool ok = type == "BOOL"                            ? element.is_boolean()
                      : type == "BYTES"                         ? element.is_string()
                      : type.starts_with("FP")                  ? element.is_number()
                      : type.starts_with("U") || type[0] == 'I' ? element.is_number_integer()
                                                                : false;
      if (!ok) {
        problems.push_back(where + ": element " + element.dump() + " does not fit " + type);
        break;
      }
    }
  }
  if (binary_total != binary_section_size) {
    problems.push_back("binary_data_size values add up to " + std::to_string(binary_total) +
                       ", binary section has " + std::to_string(binary_section_size));
  }
  return problems;
}

std::vector<std::string> CheckTensorMetadataList(const json& doc, const char* key) {
  std::vector<std::string> problems;
  if (!doc.contains(key) || !doc.at(key).is_array())
    return {std::string(key) + " must be an array"};
  for (const json& tensor : doc.at(key)) {
    const std::string where = std::string(key) + " " + tensor.value("name", std::string("?"));
    if (!tensor.is_object() || !IsString(tensor, "name")) {
      problems.push_back(where + ": name must be a string");
      continue;
    }
    if (!IsString(tensor, "datatype") || !kV2TypeNames.count(tensor.at("datatype"))) {
      problems.push_back(where + ": unknown datatype");
    }
    CheckShape(tensor, -1, where, problems);
  }
  return problems;
}

std::vector<std::string> CheckModelMetadata(const json& doc) {
  if (!doc.is_object()) return {"model metadata is not an object"};
  std::vector<std::string> problems;
  if (!IsString(doc, "name")) problems.push_back("name must be a string");
  if (!IsString(doc, "platform")) problems.push_back("platform must be a string");
  if (doc.contains("versions")) {
    const json& versions = doc.at("versions");
    if (!versions.is_array() || !std::all_of(versions.begin(), versions.end(),
                                             [](const json& v) { return v.is_string(); })) {
      problems.push_back("versions must be an array of strings");
    }
  }
  for (const char* key : {"inputs", "outputs"}) {
    for (std::string& problem : CheckTensorMetadataList(doc, key)) problems.push_back(problem);
  }
  return problems;
}

std::vector<std::string> CheckServerMetadata(const json& doc) {
  if (!doc.is_object()) return {"server metadata is not an object"};
  std::vector<std::string> problems;
  if (!IsString(doc, "name")) problems.push_back("name must be a string");
  if (!IsString(doc, "version")) problems.push_back("version must be a string");
  const json* extensions = doc.contains("extensions") ? &doc.at("extensions") : nullptr;
  if (!extensions || !extensions->is_array() ||
      !std::all_of(extensions->begin(), extensions->end(),
                   [](const json& v) { return v.is_string(); })) {
    problems.push_back("extensions must be an array of strings");
  }
  return problems;
}

// The JSON part of an encoded body, and the binary section after it.
struct SplitBody {
  json header;
  std::string_view binary;
};

SplitBody Split(const EncodedBody& encoded) {
  const size_t length = encoded.header_length.value_or(encoded.body.size());
  const std::string_view body = encoded.body;
  return {json::parse(body.substr(0, length)), body.substr(length)};
}

// ---------------------------------------------------------------------------------------
// Data types.

TEST(KServeDataType, NamesRoundTripAndSizes) {
  const std::vector<std::pair<DataType, size_t>> all = {
      {DataType::kBool, 1},   {DataType::kUint8, 1}, {DataType::kUint16, 2}, {DataType::kUint32, 4},
      {DataType::kUint64, 8}, {DataType::kInt8, 1},  {DataType::kInt16, 2},  {DataType::kInt32, 4},
      {DataType::kInt64, 8},  {DataType::kFp16, 2},  {DataType::kFp32, 4},   {DataType::kFp64, 8},
      {DataType::kBytes, 0}};
  std::set<std::string> names;
  for (const auto& [type, size] : all) {
    const std::string name(DataTypeName(type));
    EXPECT_TRUE(kV2TypeNames.count(name)) << name;
    names.insert(name);
    EXPECT_EQ(ParseDataType(name), type) << name;
    EXPECT_EQ(ElementSize(type), size) << name;
  }
  EXPECT_EQ(names, kV2TypeNames);
  EXPECT_EQ(ParseDataType("FP32"), DataType::kFp32);
  EXPECT_FALSE(ParseDataType("fp32"));
  EXPECT_FALSE(ParseDataType("FLOAT32"));
  EXPECT_FALSE(ParseDataType("BF16"));
  EXPECT_FALSE(ParseDataType(""));
}

TEST(KServeDataType, FromOnnx) {
  EXPECT_EQ(DataTypeFromOnnx("float32"), DataType::kFp32);
  EXPECT_EQ(DataTypeFromOnnx("float"), DataType::kFp32);
  EXPECT_EQ(DataTypeFromOnnx("tensor(float)"), DataType::kFp32);
  EXPECT_EQ(DataTypeFromOnnx("float16"), DataType::kFp16);
  EXPECT_EQ(DataTypeFromOnnx("float64"), DataType::kFp64);
  EXPECT_EQ(DataTypeFromOnnx("double"), DataType::kFp64);
  EXPECT_EQ(DataTypeFromOnnx("uint8"), DataType::kUint8);
  EXPECT_EQ(DataTypeFromOnnx("int8"), DataType::kInt8);
  EXPECT_EQ(DataTypeFromOnnx("int32"), DataType::kInt32);
  EXPECT_EQ(DataTypeFromOnnx("int64"), DataType::kInt64);
  EXPECT_EQ(DataTypeFromOnnx("tensor(int64)"), DataType::kInt64);
  EXPECT_EQ(DataTypeFromOnnx("bool"), DataType::kBool);
  EXPECT_EQ(DataTypeFromOnnx("uint64"), DataType::kUint64);
  EXPECT_EQ(DataTypeFromOnnx("string"), DataType::kBytes);
  EXPECT_FALSE(DataTypeFromOnnx("bfloat16"));
  EXPECT_FALSE(DataTypeFromOnnx("type17"));
  EXPECT_FALSE(DataTypeFromOnnx("FP32"));
}

// ---------------------------------------------------------------------------------------
// Responses.

Tensor MakeTensor(std::string name, DataType type, std::vector<int64_t> shape,
                  std::vector<uint8_t> bytes, bool binary) {
  Tensor tensor;
  tensor.name = std::move(name);
  tensor.datatype = type;
  tensor.shape = std::move(shape);
  tensor.bytes = std::move(bytes);
  tensor.binary = binary;
  return tensor;
}

// Decodes a JSON "data" array of a response output back to tensor bytes, independently of
// the codec, for bit-exact comparison.
std::vector<uint8_t> DecodeJsonOutput(const json& output) {
  const std::string type = output.at("datatype");
  const json& data = output.at("data");
  std::vector<uint8_t> bytes;
  auto append = [&bytes](const auto& value) {
    const auto* begin = reinterpret_cast<const uint8_t*>(&value);
    bytes.insert(bytes.end(), begin, begin + sizeof(value));
  };
  for (const json& element : data) {
    if (type == "FP32")
      append(static_cast<float>(element.get<double>()));
    else if (type == "FP64")
      append(element.get<double>());
    else if (type == "INT64")
      append(element.get<int64_t>());
    else if (type == "UINT64")
      append(element.get<uint64_t>());
    else if (type == "INT32")
      append(element.get<int32_t>());
    else if (type == "UINT8")
      append(element.get<uint8_t>());
    else if (type == "INT8")
      append(element.get<int8_t>());
    else if (type == "BOOL")
      append(static_cast<uint8_t>(element.get<bool>() ? 1 : 0));
    else
      throw std::runtime_error("test decoder does not handle " + type);
  }
  return bytes;
}

TEST(KServeResponse, JsonOnlyResponseMatchesSchemaAndRoundTrips) {
  const std::vector<float> scores = {0.1f,
                                     1.0f / 3.0f,
                                     std::numeric_limits<float>::max(),
                                     std::numeric_limits<float>::lowest(),
                                     std::numeric_limits<float>::min(),
                                     std::numeric_limits<float>::denorm_min(),
                                     -0.0f,
                                     0.0f,
                                     16777216.0f,
                                     1e20f,
                                     -2.5e-7f,
                                     0.99999994f};
  const std::vector<double> wide = {0.1, 1e-310, -1.7976931348623157e308, -0.0};
  const std::vector<int64_t> labels = {0, -1, std::numeric_limits<int64_t>::min(),
                                       std::numeric_limits<int64_t>::max()};
  const std::vector<uint64_t> big = {std::numeric_limits<uint64_t>::max(), 0};
  const std::vector<int32_t> ids = {-7, 2147483647};
  const std::vector<int8_t> small = {-128, 127};

  InferResponse response;
  response.model_name = "yolo\"11n";  // needs escaping
  response.model_version = "1";
  response.id = "req-42";
  response.outputs = {
      MakeTensor("scores", DataType::kFp32, {3, 4}, ToBytes(scores), false),
      MakeTensor("wide", DataType::kFp64, {4}, ToBytes(wide), false),
      MakeTensor("labels", DataType::kInt64, {2, 2}, ToBytes(labels), false),
      MakeTensor("big", DataType::kUint64, {2}, ToBytes(big), false),
      MakeTensor("ids", DataType::kInt32, {1, 2}, ToBytes(ids), false),
      MakeTensor("small", DataType::kInt8, {2}, ToBytes(small), false),
      MakeTensor("mask", DataType::kUint8, {3}, {0, 128, 255}, false),
      MakeTensor("flags", DataType::kBool, {3}, {1, 0, 1}, false),
      MakeTensor("none", DataType::kFp32, {0, 6}, {}, false),
  };
  const EncodedBody encoded = EncodeInferResponse(response);
  EXPECT_FALSE(encoded.header_length);
  EXPECT_EQ(encoded.content_type, "application/json");
  const SplitBody split = Split(encoded);
  EXPECT_TRUE(split.binary.empty());
  EXPECT_EQ(CheckInferResponse(split.header, 0), std::vector<std::string>()) << encoded.body;
  EXPECT_EQ(split.header.at("model_name"), "yolo\"11n");
  EXPECT_EQ(split.header.at("model_version"), "1");
  EXPECT_EQ(split.header.at("id"), "req-42");
  const json& outputs = split.header.at("outputs");
  ASSERT_EQ(outputs.size(), response.outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& tensor = response.outputs[i];
    SCOPED_TRACE(tensor.name);
    EXPECT_EQ(outputs[i].at("name"), tensor.name);
    EXPECT_EQ(outputs[i].at("datatype"), std::string(DataTypeName(tensor.datatype)));
    EXPECT_EQ(outputs[i].at("shape").get<std::vector<int64_t>>(), tensor.shape);
    EXPECT_FALSE(outputs[i].contains("parameters"));
    EXPECT_EQ(DecodeJsonOutput(outputs[i]), tensor.bytes);  // bit-exact, -0 included
  }
  // Shortest round-trip forms, not 17-digit doubles.
  EXPECT_NE(encoded.body.find("\"data\":[0.1,0.33333334,3.4028235e+38,"), std::string::npos)
      << encoded.body;
}

TEST(KServeResponse, OptionalFieldsAreOmittedWhenEmpty) {
  InferResponse response;
  response.model_name = "m";
  const EncodedBody encoded = EncodeInferResponse(response);
  const json doc = json::parse(encoded.body);
  EXPECT_EQ(doc, json::parse(R"({"model_name":"m","outputs":[]})"));
  EXPECT_EQ(CheckInferResponse(doc, 0), std::vector<std::string>());
}

TEST(KServeResponse, Fp16JsonOutputIsExact) {
  // Every finite half: the printed float must convert back to the same half.
  std::vector<uint16_t> halves;
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    if (((bits >> 10) & 0x1f) != 0x1f) halves.push_back(static_cast<uint16_t>(bits));
  }
  InferResponse response;
  response.model_name = "m";
  response.outputs = {MakeTensor("h", DataType::kFp16, {static_cast<int64_t>(halves.size())},
                                 ToBytes(halves), false)};
  const EncodedBody encoded = EncodeInferResponse(response);
  const json doc = json::parse(encoded.body);
  EXPECT_EQ(CheckInferResponse(doc, 0), std::vector<std::string>());
  // Feed the printed numbers back through the request decoder as FP16 data.
  json request = {{"inputs", json::array({{{"name", "h"},
                                           {"datatype", "FP16"},
                                           {"shape", {halves.size()}},
                                           {"data", doc.at("outputs")[0].at("data")}}})}};
  const InferRequest decoded = ParseInferRequest(request.dump(), std::nullopt);
  EXPECT_EQ(FromBytes<uint16_t>(decoded.inputs[0].bytes), halves);
}

TEST(KServeResponse, BinaryOutputsRoundTripExactly) {
  std::vector<float> boxes(2 * 3 * 4);
  for (size_t i = 0; i < boxes.size(); ++i) boxes[i] = static_cast<float>(i) * 0.37f - 3.0f;
  boxes[1] = std::numeric_limits<float>::quiet_NaN();  // binary carries what JSON cannot
  boxes[2] = -std::numeric_limits<float>::infinity();
  boxes[3] = -0.0f;
  boxes[4] = std::numeric_limits<float>::denorm_min();
  const std::vector<float> scores = {0.5f, 0.25f};

  InferResponse response;
  response.model_name = "detector";
  response.id = "r";
  response.outputs = {
      MakeTensor("boxes", DataType::kFp32, {2, 3, 4}, ToBytes(boxes), true),
      MakeTensor("scores", DataType::kFp32, {2}, ToBytes(scores), false),
      MakeTensor("mask", DataType::kUint8, {5}, {9, 8, 7, 6, 5}, true),
      MakeTensor("nothing", DataType::kFp32, {0}, {}, true),
  };
  const EncodedBody encoded = EncodeInferResponse(response);
  ASSERT_TRUE(encoded.header_length);
  EXPECT_EQ(encoded.content_type, "application/octet-stream");
  EXPECT_EQ(encoded.body.size(), *encoded.header_length + boxes.size() * 4 + 5);
  const SplitBody split = Split(encoded);
  EXPECT_EQ(CheckInferResponse(split.header, split.binary.size()), std::vector<std::string>());

  // Walk the outputs like a client: binary ones take consecutive slices of the tail.
  size_t offset = 0;
  const json& outputs = split.header.at("outputs");
  ASSERT_EQ(outputs.size(), 4u);
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& tensor = response.outputs[i];
    SCOPED_TRACE(tensor.name);
    if (!tensor.binary) {
      EXPECT_FALSE(outputs[i].contains("parameters"));
      EXPECT_EQ(DecodeJsonOutput(outputs[i]), tensor.bytes);
      continue;
    }
    EXPECT_FALSE(outputs[i].contains("data"));
    const size_t size = outputs[i].at("parameters").at("binary_data_size").get<size_t>();
    ASSERT_LE(offset + size, split.binary.size());
    const std::string_view slice = split.binary.substr(offset, size);
    offset += size;
    ASSERT_EQ(size, tensor.bytes.size());
    EXPECT_TRUE(std::equal(slice.begin(), slice.end(), tensor.bytes.begin(),
                           [](char a, uint8_t b) { return static_cast<uint8_t>(a) == b; }));
  }
  EXPECT_EQ(offset, split.binary.size());
}

TEST(KServeResponse, BinaryResponseBytesParseBackAsABinaryRequest) {
  // The same layout rules serve both directions: turn the encoded response into a request
  // (rename outputs to inputs) and decode it with the request parser.
  std::vector<float> values(17);
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::ldexp(1.0f, static_cast<int>(i) - 8);
  InferResponse response;
  response.model_name = "m";
  response.outputs = {MakeTensor("y", DataType::kFp32, {17}, ToBytes(values), true)};
  const EncodedBody encoded = EncodeInferResponse(response);
  const SplitBody split = Split(encoded);
  const json header = {{"inputs", split.header.at("outputs")}};
  std::string body = header.dump();
  const size_t header_length = body.size();
  body.append(split.binary);
  const InferRequest request = ParseInferRequest(body, header_length);
  EXPECT_EQ(BytesOf(request.inputs[0]), ToBytes(values));
}

TEST(KServeResponse, NonFiniteJsonOutputsAreStrings) {
  // JSON numbers cannot be NaN or infinite: such elements are the strings "NaN", "Infinity"
  // and "-Infinity" in every floating type (this used to be an HTTP 500).
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> floats = {1, nan, inf, -inf, 2};
  const std::vector<double> doubles = {nan, -inf, 0.5};
  const std::vector<uint16_t> halves = {0x7e00, 0x7c00, 0xfc00, 0x3c00};  // NaN, inf, -inf, 1
  InferResponse response;
  response.model_name = "m";
  response.outputs = {
      MakeTensor("f32", DataType::kFp32, {5}, ToBytes(floats), false),
      MakeTensor("f64", DataType::kFp64, {3}, ToBytes(doubles), false),
      MakeTensor("f16", DataType::kFp16, {4}, ToBytes(halves), false),
  };
  const EncodedBody encoded = EncodeInferResponse(response);
  const json doc = json::parse(encoded.body);  // valid JSON
  const json& outputs = doc.at("outputs");
  EXPECT_EQ(outputs[0].at("data"), json::parse(R"([1.0,"NaN","Infinity","-Infinity",2.0])"));
  EXPECT_EQ(outputs[1].at("data"), json::parse(R"(["NaN","-Infinity",0.5])"));
  EXPECT_EQ(outputs[2].at("data"), json::parse(R"(["NaN","Infinity","-Infinity",1.0])"));
  // As binary data the IEEE bits travel unchanged.
  response.outputs[0].binary = true;
  const SplitBody split = Split(EncodeInferResponse(response));
  EXPECT_EQ(split.binary.size(), floats.size() * sizeof(float));
}

TEST(KServeResponse, MalformedOutputTensorIsACallerBug) {
  InferResponse response;
  response.model_name = "m";
  response.outputs = {MakeTensor("y", DataType::kFp32, {2, 2}, std::vector<uint8_t>(15), false)};
  EXPECT_THROW(EncodeInferResponse(response), std::invalid_argument);
  response.outputs = {MakeTensor("y", DataType::kFp32, {-1, 2}, {}, false)};
  EXPECT_THROW(EncodeInferResponse(response), std::invalid_argument);
  response.outputs = {MakeTensor("y", DataType::kBytes, {1}, {}, false)};
  EXPECT_THROW(EncodeInferResponse(response), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------
// Error and metadata documents.

TEST(KServeDocuments, ErrorJson) {
  EXPECT_EQ(ErrorJson("bad input"), json::parse(R"({"error":"bad input"})"));
  // Invalid UTF-8 is replaced so the document always serializes.
  const json error = ErrorJson("bad \xff byte");
  EXPECT_NO_THROW(error.dump());
  EXPECT_EQ(error.at("error"), "bad \xEF\xBF\xBD byte");
}

TEST(KServeDocuments, ServerMetadataMatchesSchema) {
  const json doc = ServerMetadataJson("cvdeploy", "0.1.0", {"binary_tensor_data"});
  EXPECT_EQ(CheckServerMetadata(doc), std::vector<std::string>());
  EXPECT_EQ(
      doc,
      json::parse(R"({"name":"cvdeploy","version":"0.1.0","extensions":["binary_tensor_data"]})"));
  EXPECT_EQ(CheckServerMetadata(ServerMetadataJson("s", "1", {})), std::vector<std::string>());
}

TEST(KServeDocuments, ModelMetadataMatchesSchema) {
  const json doc = ModelMetadataJson("yolo11n", {"1"}, "onnxruntime_onnx",
                                     {{"images", "FP32", {-1, 3, 640, 640}}},
                                     {{"output0", "FP32", {-1, 84, 8400}}, {"aux", "INT64", {}}});
  EXPECT_EQ(CheckModelMetadata(doc), std::vector<std::string>()) << doc.dump();
  EXPECT_EQ(doc, json::parse(R"({"name":"yolo11n","versions":["1"],"platform":"onnxruntime_onnx",
      "inputs":[{"name":"images","datatype":"FP32","shape":[-1,3,640,640]}],
      "outputs":[{"name":"output0","datatype":"FP32","shape":[-1,84,8400]},
                 {"name":"aux","datatype":"INT64","shape":[]}]})"));
  EXPECT_EQ(CheckModelMetadata(ModelMetadataJson("m", {}, "p", {}, {})),
            std::vector<std::string>());
}

// The checker must itself catch broken documents, or passing it means nothing.
TEST(KServeDocuments, CheckerRejectsBrokenDocuments) {
  EXPECT_FALSE(CheckInferResponse(json::parse(R"({"outputs":[]})"), 0).empty());
  EXPECT_FALSE(CheckInferResponse(json::parse(R"({"model_name":"m"})"), 0).empty());
  EXPECT_FALSE(
      CheckInferResponse(json::parse(R"({"model_name":"m","id":3,"outputs":[]})"), 0).empty());
  EXPECT_FALSE(
      CheckInferResponse(json::parse(R"({"model_name":"m","outputs":[{"name":"y","datatype":"FP32",
                   "shape":[2],"data":[1]}]})"),
                         0)
          .empty());
  EXPECT_FALSE(
      CheckInferResponse(json::parse(R"({"model_name":"m","outputs":[{"name":"y","datatype":"FLOAT",
                   "shape":[1],"data":[1]}]})"),
                         0)
          .empty());
  EXPECT_FALSE(
      CheckInferResponse(json::parse(R"({"model_name":"m","outputs":[{"name":"y","datatype":"INT32",
                   "shape":[1],"data":[1.5]}]})"),
                         0)
          .empty());
  EXPECT_FALSE(
      CheckInferResponse(json::parse(R"({"model_name":"m","outputs":[{"name":"y","datatype":"FP32",
                   "shape":[-1],"data":[]}]})"),
                         0)
          .empty());
  EXPECT_FALSE(
      CheckInferResponse(json::parse(R"({"model_name":"m","outputs":[{"name":"y","datatype":"FP32",
                   "shape":[2],"parameters":{"binary_data_size":8}}]})"),
                         4)
          .empty());
  EXPECT_TRUE(
      CheckInferResponse(json::parse(R"({"model_name":"m","outputs":[{"name":"y","datatype":"FP32",
                  "shape":[2],"parameters":{"binary_data_size":8}}]})"),
                         8)
          .empty());
  EXPECT_FALSE(CheckModelMetadata(json::parse(R"({"name":"m","inputs":[],"outputs":[]})")).empty());
  EXPECT_FALSE(
      CheckModelMetadata(json::parse(
                             R"({"name":"m","platform":"p","inputs":[{"name":"x","datatype":"FP32",
                   "shape":[-2]}],"outputs":[]})"))
          .empty());
  EXPECT_FALSE(
      CheckModelMetadata(
          json::parse(R"({"name":"m","platform":"p","versions":[1],"inputs":[],"outputs":[]})"))
          .empty());
  EXPECT_FALSE(CheckServerMetadata(json::parse(R"({"name":"s","version":"1"})")).empty());
  EXPECT_FALSE(
      CheckServerMetadata(json::parse(R"({"name":"s","version":1,"extensions":[]})")).empty());
}

}  // namespace
}  // namespace cvdeploy::server::kserve
