// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/tensor.h"

#include <cstring>
#include <stdexcept>

namespace cvdeploy {
namespace {

struct TypeEntry {
  DataType type;
  std::string_view name;
  size_t size;
};

constexpr TypeEntry kTypes[] = {
    {DataType::kBool, "bool", 1},       {DataType::kUint8, "uint8", 1},
    {DataType::kUint16, "uint16", 2},   {DataType::kUint32, "uint32", 4},
    {DataType::kUint64, "uint64", 8},   {DataType::kInt8, "int8", 1},
    {DataType::kInt16, "int16", 2},     {DataType::kInt32, "int32", 4},
    {DataType::kInt64, "int64", 8},     {DataType::kFloat16, "float16", 2},
    {DataType::kFloat32, "float32", 4}, {DataType::kFloat64, "float64", 8},
};

const TypeEntry& Entry(DataType type) {
  for (const TypeEntry& e : kTypes) {
    if (e.type == type) return e;
  }
  throw std::invalid_argument("unknown tensor element type");
}

size_t CheckedBytes(DataType dtype, const std::vector<int64_t>& shape) {
  const std::optional<size_t> bytes = ElementCount(shape, ElementSize(dtype));
  if (!bytes) {
    throw std::invalid_argument("tensor shape " + ShapeString(shape) + " is invalid or too large");
  }
  return *bytes;
}

}  // namespace

size_t ElementSize(DataType type) { return Entry(type).size; }
std::string_view DataTypeName(DataType type) { return Entry(type).name; }

std::optional<DataType> ParseDataType(std::string_view name) {
  if (name.starts_with("tensor(") && name.ends_with(")")) name = name.substr(7, name.size() - 8);
  if (name == "float") return DataType::kFloat32;
  if (name == "double") return DataType::kFloat64;
  for (const TypeEntry& e : kTypes) {
    if (e.name == name) return e.type;
  }
  return std::nullopt;
}

std::optional<size_t> ElementCount(const std::vector<int64_t>& shape, size_t element_size) {
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
  }
  for (int64_t d : shape) {
    if (d == 0) return 0;  // before any overflow check: [huge, huge, 0] is empty
  }
  size_t count = element_size;
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(d), &count)) return std::nullopt;
  }
  return count;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(shape[i]);
  }
  s += ']';
  return s;
}

TensorView::TensorView(DataType dtype, std::vector<int64_t> shape, const void* data)
    : dtype_(dtype), shape_(std::move(shape)), data_(data), bytes_(CheckedBytes(dtype_, shape_)) {}

void TensorView::CheckType(DataType wanted) const {
  if (wanted != dtype_) {
    throw std::invalid_argument("tensor holds " + std::string(DataTypeName(dtype_)) + ", not " +
                                std::string(DataTypeName(wanted)));
  }
}

Tensor::Tensor(DataType dtype, std::vector<int64_t> shape) {
  Reshape(dtype, std::move(shape));
  std::memset(data(), 0, bytes_);
}

Tensor Tensor::CopyOf(const TensorView& view) {
  Tensor t;
  t.Reshape(view.dtype(), view.shape());
  if (view.bytes() > 0) std::memcpy(t.data(), view.data(), view.bytes());
  return t;
}

void Tensor::Reshape(DataType dtype, std::vector<int64_t> shape) {
  const size_t bytes = CheckedBytes(dtype, shape);
  const size_t units = (bytes + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t);
  // resize() value-initializes only new elements; callers that need zeros use the constructor.
  if (storage_.size() < units) storage_.resize(units);
  dtype_ = dtype;
  shape_ = std::move(shape);
  bytes_ = bytes;
}

}  // namespace cvdeploy
