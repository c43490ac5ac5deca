// SPDX-License-Identifier: Apache-2.0
// KServe v2 codec, request side: the Inference-Header-Content-Length value, and request
// decoding against hand-written fixtures (valid and invalid, JSON and binary tensor data),
// including hostile shapes and nesting and large 1x3x640x640 inputs. Data types, response
// encoding and the v2 documents are in server_kserve_response_test.cpp.
#include <gtest/gtest.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

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

const std::string kFixtureDir = std::string(CVDEPLOY_SOURCE_DIR) + "/tests/fixtures/kserve/";

std::string ReadFixture(const std::string& name) {
  std::ifstream file(kFixtureDir + name, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open fixture " + kFixtureDir + name);
  return std::string(std::istreambuf_iterator<char>(file), {});
}

const Tensor& FindInput(const InferRequest& request, const std::string& name) {
  for (const Tensor& tensor : request.inputs) {
    if (tensor.name == name) return tensor;
  }
  throw std::runtime_error("no input " + name);
}

// The cvdeploy::Error a parse throws; fails the test if it throws nothing or something else.
std::optional<cvdeploy::Error> ParseError(std::string_view body,
                                          std::optional<size_t> header_length) {
  try {
    ParseInferRequest(body, header_length);
  } catch (const cvdeploy::Error& error) {
    return error;
  } catch (const std::exception& error) {
    ADD_FAILURE() << "unexpected exception type: " << error.what();
    return std::nullopt;
  }
  ADD_FAILURE() << "request was accepted";
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// The Inference-Header-Content-Length value.

TEST(KServeHeaderLength, ParsesDigitsOnly) {
  EXPECT_EQ(ParseHeaderLength("0"), 0u);
  EXPECT_EQ(ParseHeaderLength("123"), 123u);
  for (const char* bad :
       {"", "-1", "+1", " 12", "12 ", "12a", "0x10", "1.5", "99999999999999999999999"}) {
    try {
      ParseHeaderLength(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const cvdeploy::Error& error) {
      EXPECT_EQ(HttpStatusOf(error.code()), 400);
      EXPECT_NE(std::string(error.what()).find("Inference-Header-Content-Length"),
                std::string::npos);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Valid requests.

TEST(KServeRequest, Fp32FlatFixture) {
  const InferRequest request =
      ParseInferRequest(ReadFixture("request_fp32_flat.json"), std::nullopt);
  EXPECT_EQ(request.id, "req-1");
  ASSERT_EQ(request.inputs.size(), 1u);
  const Tensor& images = request.inputs[0];
  EXPECT_EQ(images.name, "images");
  EXPECT_EQ(images.datatype, DataType::kFp32);
  EXPECT_EQ(images.shape, (std::vector<int64_t>{1, 3, 2, 2}));
  EXPECT_FALSE(images.binary);
  const std::vector<float> expected = {0.0f,
                                       0.5f,
                                       1.0f,
                                       -1.5f,
                                       0.1f,
                                       255.0f,
                                       std::numeric_limits<float>::max(),
                                       -0.0025f,
                                       std::numeric_limits<float>::denorm_min(),
                                       7.0f,
                                       -0.0f,
                                       9.0f};
  EXPECT_EQ(images.bytes, ToBytes(expected));  // bit-exact, including the sign of -0
  ASSERT_EQ(request.outputs.size(), 1u);
  EXPECT_EQ(request.outputs[0].name, "output0");
  EXPECT_FALSE(request.outputs[0].binary);
  EXPECT_FALSE(request.binary_output);
  EXPECT_TRUE(request.parameters.is_object());
  EXPECT_TRUE(request.parameters.empty());
}

TEST(KServeRequest, NestedIntegerFixtureAtTypeLimits) {
  const InferRequest request =
      ParseInferRequest(ReadFixture("request_nested_integers.json"), std::nullopt);
  EXPECT_TRUE(request.id.empty());
  EXPECT_TRUE(request.outputs.empty());
  const Tensor& i64 = FindInput(request, "i64");
  EXPECT_EQ(i64.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(FromBytes<int64_t>(i64.bytes),
            (std::vector<int64_t>{1, -2, 3, std::numeric_limits<int64_t>::max(),
                                  std::numeric_limits<int64_t>::min(), 0}));
  EXPECT_EQ(FindInput(request, "u8").bytes, (std::vector<uint8_t>{0, 255, 128, 2}));
  EXPECT_EQ(FromBytes<int8_t>(FindInput(request, "i8").bytes), (std::vector<int8_t>{-128, 127, 0}));
  EXPECT_EQ(FromBytes<uint16_t>(FindInput(request, "u16").bytes),
            (std::vector<uint16_t>{65535, 1}));
  EXPECT_EQ(FromBytes<int16_t>(FindInput(request, "i16").bytes),
            (std::vector<int16_t>{-32768, 32767}));
  EXPECT_EQ(FromBytes<uint32_t>(FindInput(request, "u32").bytes),
            (std::vector<uint32_t>{4294967295u, 0}));
  EXPECT_EQ(FromBytes<int32_t>(FindInput(request, "i32").bytes),
            (std::vector<int32_t>{std::numeric_limits<int32_t>::min(), 2147483647}));
  EXPECT_EQ(FromBytes<uint64_t>(FindInput(request, "u64").bytes),
            (std::vector<uint64_t>{std::numeric_limits<uint64_t>::max(), 0}));
}

TEST(KServeRequest, BoolFp16Fp64Fixture) {
  const InferRequest request =
      ParseInferRequest(ReadFixture("request_bool_fp16_fp64.json"), std::nullopt);
  EXPECT_EQ(FindInput(request, "flags").bytes, (std::vector<uint8_t>{1, 0, 0, 1}));
  // Expected bits from Python's struct.pack('<e', x), which rounds the double to nearest
  // even directly: ties (1 + 2^-11, 1 + 3 * 2^-11, 2^-25), subnormals, the largest half, and
  // 1 + 2^-11 + 2^-40, which rounding through float first would get wrong (0x3c00).
  EXPECT_EQ(FromBytes<uint16_t>(FindInput(request, "half").bytes),
            (std::vector<uint16_t>{0x3c00, 0x7bff, 0x868e, 0x3555, 0x3c00, 0x3c02, 0x0001, 0x0000,
                                   0x3c01, 0x0001}));
  EXPECT_EQ(FromBytes<double>(FindInput(request, "wide").bytes),
            (std::vector<double>{0.1, -1e300, std::numeric_limits<double>::denorm_min()}));
  const Tensor& empty = FindInput(request, "empty");
  EXPECT_EQ(empty.shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(empty.bytes.empty());
}

TEST(KServeRequest, BinaryOutputParametersResolvePerOutput) {
  const InferRequest request =
      ParseInferRequest(ReadFixture("request_binary_output.json"), std::nullopt);
  EXPECT_EQ(request.id, "abc");
  EXPECT_TRUE(request.binary_output);
  EXPECT_EQ(request.parameters.at("priority"), 2);  // kept verbatim for the caller
  ASSERT_EQ(request.outputs.size(), 3u);
  EXPECT_TRUE(request.outputs[0].binary);   // inherits binary_data_output
  EXPECT_FALSE(request.outputs[1].binary);  // its own binary_data: false wins
  EXPECT_TRUE(request.outputs[2].binary);
  EXPECT_TRUE(OutputWantsBinary(request, "output0"));
  EXPECT_FALSE(OutputWantsBinary(request, "aux"));
  EXPECT_TRUE(OutputWantsBinary(request, "not_listed"));  // falls back to binary_data_output

  const InferRequest plain = ParseInferRequest(ReadFixture("request_fp32_flat.json"), std::nullopt);
  EXPECT_FALSE(OutputWantsBinary(plain, "output0"));
  EXPECT_FALSE(OutputWantsBinary(plain, "other"));
}

// The binary fixture's JSON header followed by 48 bytes of FP32 and 4 bytes of FP16.
struct BinaryRequest {
  std::string body;
  size_t header_length = 0;
  std::vector<float> images;
  std::vector<uint16_t> scale;
};

BinaryRequest MakeBinaryRequest() {
  BinaryRequest request;
  request.body = ReadFixture("request_binary_header.json");
  request.header_length = request.body.size();
  request.images = {0.25f,
                    -1.0f,
                    3.5f,
                    1e-30f,
                    std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity(),
                    -0.0f,
                    1.0f,
                    2.0f,
                    3.0f,
                    4.0f,
                    5.0f};
  request.scale = {0x3c00, 0xfbff};
  const std::vector<uint8_t> images = ToBytes(request.images);
  const std::vector<uint8_t> scale = ToBytes(request.scale);
  request.body.append(images.begin(), images.end());
  request.body.append(scale.begin(), scale.end());
  return request;
}

TEST(KServeRequest, BinaryInputsSliceTheTailInOrder) {
  const BinaryRequest binary = MakeBinaryRequest();
  const InferRequest request = ParseInferRequest(binary.body, binary.header_length);
  ASSERT_EQ(request.inputs.size(), 3u);
  const Tensor& images = FindInput(request, "images");
  EXPECT_TRUE(images.binary);
  EXPECT_EQ(images.shape, (std::vector<int64_t>{1, 3, 2, 2}));
  // Binary data is viewed untouched (no copy): NaN and infinity are fine here.
  EXPECT_EQ(BytesOf(images), ToBytes(binary.images));
  const Tensor& mask = FindInput(request, "mask");
  EXPECT_FALSE(mask.binary);
  EXPECT_EQ(mask.bytes, (std::vector<uint8_t>{1, 2, 3, 4}));
  const Tensor& scale = FindInput(request, "scale");
  EXPECT_TRUE(scale.binary);
  EXPECT_EQ(BytesOf(scale), ToBytes(binary.scale));
  ASSERT_EQ(request.outputs.size(), 1u);
  EXPECT_TRUE(request.outputs[0].binary);
}

TEST(KServeRequest, HeaderLengthOfWholeJsonBodyIsAccepted) {
  const std::string body = ReadFixture("request_fp32_flat.json");
  EXPECT_EQ(ParseInferRequest(body, body.size()).inputs.size(), 1u);
}

// ---------------------------------------------------------------------------------------
// Invalid requests: every invalid_*.json fixture with the reason it must produce.

struct InvalidCase {
  const char* fixture;
  std::optional<size_t> tail_bytes;  // set: zero bytes appended, header length = fixture size
  const char* reason;                // substring of the one-line message
};

const std::vector<InvalidCase>& InvalidCases() {
  static const std::vector<InvalidCase> cases = {
      {"invalid_not_json.json", std::nullopt, "request body: invalid JSON: "},
      {"invalid_not_object.json", std::nullopt, "must be a JSON object, got array"},
      {"invalid_missing_inputs.json", std::nullopt, "\"inputs\" is missing"},
      {"invalid_empty_inputs.json", std::nullopt, "\"inputs\" must be a non-empty array"},
      {"invalid_unknown_datatype.json", std::nullopt,
       "input 'images': unknown datatype \"FLOAT32\""},
      {"invalid_shape_mismatch.json", std::nullopt,
       "input 'images': data has 10 elements, shape [1,3,2,2] needs 12"},
      {"invalid_uint8_out_of_range.json", std::nullopt,
       "input 'pixels': data[1] = 300 is out of range for UINT8"},
      {"invalid_int32_fraction.json", std::nullopt,
       "input 'ids': data[2] = 1.5 is not an integer, as needed by INT32"},
      {"invalid_int64_out_of_range.json", std::nullopt,
       "input 'big': data[0] = 9223372036854775808 is out of range for INT64"},
      {"invalid_fp32_out_of_range.json", std::nullopt,
       "input 'f': data[1] = 1e+39 is out of range for FP32"},
      {"invalid_fp16_out_of_range.json", std::nullopt,
       "input 'h': data[0] = 70000 is out of range for FP16"},
      {"invalid_string_element.json", std::nullopt,
       "input 'f': data[1] = \"2.0\" is not a number, as needed by FP32"},
      {"invalid_bool_from_number.json", std::nullopt,
       "input 'flags': data[0] = 1 is not true/false, as needed by BOOL"},
      {"invalid_negative_shape.json", std::nullopt,
       "input 'images': \"shape\" [-1,3] must hold non-negative integers"},
      {"invalid_missing_shape.json", std::nullopt, "input 'images': \"shape\" is missing"},
      {"invalid_duplicate_input.json", std::nullopt, "input 'x' appears twice"},
      {"invalid_data_and_binary.json", std::nullopt,
       "input 'x': has both \"data\" and parameters.binary_data_size"},
      {"invalid_no_data.json", std::nullopt,
       "input 'x': needs \"data\" or parameters.binary_data_size"},
      {"invalid_data_not_array.json", std::nullopt,
       "input 'x': \"data\" must be an array, got 1.0"},
      {"invalid_name_not_string.json", std::nullopt, "inputs[0]: \"name\" must be a string"},
      {"invalid_bytes.json", std::nullopt, "input 'text': BYTES tensors are not supported"},
      {"invalid_id_not_string.json", std::nullopt, "\"id\" must be a string"},
      {"invalid_binary_output_flag.json", std::nullopt,
       "parameters.binary_data_output must be true or false"},
      {"invalid_duplicate_output.json", std::nullopt, "output 'y' is requested twice"},
      {"invalid_classification.json", std::nullopt,
       "output 'y': parameters.classification is not supported"},
      {"invalid_binary_without_header.json", std::nullopt,
       "input 'x': parameters.binary_data_size needs the Inference-Header-Content-Length header"},
      {"invalid_binary_size_mismatch.json", 12,
       "input 'images': binary_data_size is 12 bytes, FP32 shape [1,3,2,2] needs 48"},
  };
  return cases;
}

TEST(KServeRequest, InvalidFixturesAreRejectedWithTheirReason) {
  for (const InvalidCase& c : InvalidCases()) {
    SCOPED_TRACE(c.fixture);
    std::string body = ReadFixture(c.fixture);
    std::optional<size_t> header_length;
    if (c.tail_bytes) {
      header_length = body.size();
      body.append(*c.tail_bytes, '\0');
    }
    const std::optional<cvdeploy::Error> error = ParseError(body, header_length);
    if (!error) continue;
    EXPECT_EQ(HttpStatusOf(error->code()), 400);
    const std::string message = error->what();
    EXPECT_NE(message.find(c.reason), std::string::npos) << "message: " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
  }
}

TEST(KServeRequest, EveryInvalidFixtureHasACase) {
  std::set<std::string> covered;
  for (const InvalidCase& c : InvalidCases()) covered.insert(c.fixture);
  size_t fixtures = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kFixtureDir)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("invalid_")) continue;
    ++fixtures;
    EXPECT_TRUE(covered.count(name)) << name << " has no expected reason";
  }
  EXPECT_EQ(fixtures, covered.size());
}

TEST(KServeRequest, HeaderLengthBeyondBody) {
  const std::string body = ReadFixture("request_fp32_flat.json");
  const std::optional<cvdeploy::Error> error = ParseError(body, body.size() + 1);
  ASSERT_TRUE(error);
  EXPECT_EQ(HttpStatusOf(error->code()), 400);
  EXPECT_NE(std::string(error->what())
                .find("Inference-Header-Content-Length is " + std::to_string(body.size() + 1) +
                      " but the body has only " + std::to_string(body.size()) + " bytes"),
            std::string::npos)
      << error->what();
}

TEST(KServeRequest, HeaderLengthCuttingTheJson) {
  const BinaryRequest binary = MakeBinaryRequest();
  const std::optional<cvdeploy::Error> error = ParseError(binary.body, binary.header_length - 5);
  ASSERT_TRUE(error);
  EXPECT_NE(std::string(error->what()).find("request body: invalid JSON"), std::string::npos);
}

TEST(KServeRequest, BinarySizesMustSumToTheTail) {
  BinaryRequest binary = MakeBinaryRequest();
  // Stray bytes after the last binary input.
  std::optional<cvdeploy::Error> error = ParseError(binary.body + "abc", binary.header_length);
  ASSERT_TRUE(error);
  EXPECT_NE(std::string(error->what())
                .find("the inputs' binary_data_size add up to 52 bytes, but the body has 55 "
                      "bytes after the JSON header"),
            std::string::npos)
      << error->what();
  // A tail one byte short: the last binary input runs past the end.
  error = ParseError(std::string_view(binary.body).substr(0, binary.body.size() - 1),
                     binary.header_length);
  ASSERT_TRUE(error);
  EXPECT_NE(std::string(error->what())
                .find("input 'scale': binary_data_size 4 goes past the end of the body"),
            std::string::npos)
      << error->what();
  // Binary data without the header: the JSON parser sees the tail as trailing garbage.
  error = ParseError(binary.body, std::nullopt);
  ASSERT_TRUE(error);
  // Stray bytes after a JSON-only request with a header length.
  const std::string json_only = ReadFixture("request_fp32_flat.json");
  error = ParseError(json_only + "xyz", json_only.size());
  ASSERT_TRUE(error);
  EXPECT_NE(std::string(error->what()).find("add up to 0 bytes, but the body has 3 bytes"),
            std::string::npos)
      << error->what();
}

TEST(KServeRequest, HugeShapesFailWithoutAllocating) {
  const std::string overflow =
      R"({"inputs":[{"name":"x","shape":[4294967296,4294967296,16],"datatype":"FP32","data":[1]}]})";
  std::optional<cvdeploy::Error> error = ParseError(overflow, std::nullopt);
  ASSERT_TRUE(error);
  EXPECT_NE(std::string(error->what()).find("is too large"), std::string::npos) << error->what();
  // Representable element count, but far more data than the body holds.
  const std::string lying =
      R"({"inputs":[{"name":"x","shape":[1000000000000],"datatype":"FP32","data":[1, 2]}]})";
  error = ParseError(lying, std::nullopt);
  ASSERT_TRUE(error);
  EXPECT_NE(std::string(error->what()).find("data has 2 elements, shape [1000000000000] needs"),
            std::string::npos)
      << error->what();
  const std::string header =
      R"({"inputs":[{"name":"x","shape":[1000000000000],"datatype":"FP32","parameters":{"binary_data_size":4000000000000}}]})";
  error = ParseError(header + "abcd", header.size());
  ASSERT_TRUE(error);
  EXPECT_NE(std::string(error->what()).find("goes past the end of the body"), std::string::npos)
      << error->what();
}

TEST(KServeRequest, ZeroDimensionMakesAnyShapeEmpty) {
  // The product would overflow before reaching the 0; the tensor is still just empty.
  const std::string body =
      R"({"inputs":[{"name":"x","shape":[4294967296,4294967296,0],"datatype":"FP32","data":[]}]})";
  const InferRequest request = ParseInferRequest(body, std::nullopt);
  EXPECT_EQ(request.inputs[0].shape, (std::vector<int64_t>{4294967296, 4294967296, 0}));
  EXPECT_TRUE(request.inputs[0].bytes.empty());
}

TEST(KServeRequest, DeeplyNestedDataIsRefusedWithoutOverflowingTheStack) {
  // Nesting is bounded at 64 levels before parsing (server_kserve_limits_test.cpp has the
  // other places); data nested 100,000 deep is a 400, not a crash.
  constexpr int kDepth = 100000;
  std::string body = R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":)";
  body.append(kDepth, '[');
  body += "7";
  body.append(kDepth, ']');
  body += "}]}";
  const std::optional<cvdeploy::Error> error = ParseError(body, std::nullopt);
  ASSERT_TRUE(error);
  EXPECT_EQ(HttpStatusOf(error->code()), 400);
  EXPECT_NE(std::string(error->what()).find("nested deeper than 64 levels"), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// Large inputs: a 1x3x640x640 FP32 tensor as JSON (~1.2M numbers) and as binary data.

TEST(KServeRequest, LargeJsonAndBinaryInputs) {
  constexpr size_t kCount = 3 * 640 * 640;
  std::vector<float> values(kCount);
  for (size_t i = 0; i < kCount; ++i) values[i] = static_cast<float>(i % 256) / 255.0f;

  std::string body =
      R"({"inputs":[{"name":"images","shape":[1,3,640,640],"datatype":"FP32","data":[)";
  body.reserve(kCount * 12);
  for (size_t i = 0; i < kCount; ++i) {
    if (i > 0) body += ',';
    char buffer[32];
    const auto result = std::to_chars(buffer, buffer + sizeof(buffer), values[i]);
    body.append(buffer, result.ptr);
  }
  body += "]}]}";

  auto start = std::chrono::steady_clock::now();
  InferRequest request = ParseInferRequest(body, std::nullopt);
  const double json_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(request.inputs[0].bytes, ToBytes(values));

  std::string binary_body =
      R"({"inputs":[{"name":"images","shape":[1,3,640,640],"datatype":"FP32","parameters":{"binary_data_size":)" +
      std::to_string(kCount * 4) + "}}]}";
  const size_t header_length = binary_body.size();
  const std::vector<uint8_t> bytes = ToBytes(values);
  binary_body.append(bytes.begin(), bytes.end());
  start = std::chrono::steady_clock::now();
  request = ParseInferRequest(binary_body, header_length);
  const double binary_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(BytesOf(request.inputs[0]), bytes);

  std::cout << "1x3x640x640 FP32: JSON " << body.size() / 1e6 << " MB parsed in " << json_ms
            << " ms; binary " << bytes.size() / 1e6 << " MB in " << binary_ms << " ms\n";
  // Generous bounds that only catch super-linear work, not a slow machine.
  EXPECT_LT(json_ms, 20000.0);
  EXPECT_LT(binary_ms, 2000.0);
}

}  // namespace
}  // namespace cvdeploy::server::kserve
