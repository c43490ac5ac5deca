// SPDX-License-Identifier: Apache-2.0
// The public tensor type (cvdeploy/tensor.h): element types and names, element counts with
// overflow, typed access, and storage reuse on Reshape.
#include "cvdeploy/tensor.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <stdexcept>

namespace cvdeploy {
namespace {

TEST(TensorTest, TypeNamesRoundTripAndOnnxSpellingsParse) {
  for (DataType t :
       {DataType::kBool, DataType::kUint8, DataType::kUint16, DataType::kUint32, DataType::kUint64,
        DataType::kInt8, DataType::kInt16, DataType::kInt32, DataType::kInt64, DataType::kFloat16,
        DataType::kFloat32, DataType::kFloat64}) {
    EXPECT_EQ(ParseDataType(DataTypeName(t)), t) << DataTypeName(t);
  }
  EXPECT_EQ(ParseDataType("float"), DataType::kFloat32);
  EXPECT_EQ(ParseDataType("tensor(float16)"), DataType::kFloat16);
  EXPECT_EQ(ParseDataType("double"), DataType::kFloat64);
  EXPECT_FALSE(ParseDataType("bfloat16").has_value());
  EXPECT_EQ(ElementSize(DataType::kFloat16), 2u);
  EXPECT_EQ(ElementSize(DataType::kInt64), 8u);
}

TEST(TensorTest, ElementCountRefusesNegativeAndOverflowingShapes) {
  EXPECT_EQ(ElementCount({1, 3, 640, 640}), 1228800u);
  EXPECT_EQ(ElementCount({1, 3, 640, 640}, 4), 4915200u);
  EXPECT_EQ(ElementCount({}), 1u);  // a scalar
  EXPECT_FALSE(ElementCount({2, -1}).has_value());
  const int64_t huge = std::numeric_limits<int64_t>::max();
  EXPECT_FALSE(ElementCount({huge, huge}).has_value());
  EXPECT_EQ(ElementCount({huge, huge, 0}), 0u);  // empty, whatever the other dimensions
  EXPECT_EQ(ShapeString({1, 3, 2}), "[1,3,2]");
}

TEST(TensorTest, ViewChecksItsTypeAndShape) {
  const float data[6] = {1, 2, 3, 4, 5, 6};
  const TensorView v(DataType::kFloat32, {2, 3}, data);
  EXPECT_EQ(v.bytes(), 24u);
  EXPECT_EQ(v.elements(), 6u);
  EXPECT_EQ(v.Data<float>()[5], 6.f);
  EXPECT_THROW(v.Data<int32_t>(), std::invalid_argument);
  EXPECT_THROW(TensorView(DataType::kFloat32, {-1, 3}, data), std::invalid_argument);
}

TEST(TensorTest, ReshapeKeepsALargeEnoughAllocation) {
  Tensor t(DataType::kFloat32, {2, 3, 4});
  for (size_t i = 0; i < t.elements(); ++i) EXPECT_EQ(t.Data<float>()[i], 0.f);
  const void* storage = t.data();
  t.Reshape(DataType::kFloat32, {1, 3, 4});
  EXPECT_EQ(t.data(), storage);
  EXPECT_EQ(t.bytes(), 48u);
  t.Reshape(DataType::kUint8, {96});  // same bytes, another type
  EXPECT_EQ(t.data(), storage);
  t.Data<uint8_t>()[95] = 7;
  const Tensor copy = Tensor::CopyOf(t.view());
  EXPECT_NE(copy.data(), t.data());
  EXPECT_EQ(copy.Data<uint8_t>()[95], 7);
  EXPECT_EQ(copy.shape(), (std::vector<int64_t>{96}));
}

}  // namespace
}  // namespace cvdeploy
