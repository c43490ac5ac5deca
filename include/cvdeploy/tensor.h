// SPDX-License-Identifier: Apache-2.0
// The one tensor type of the library: an owning Tensor and a non-owning TensorView, each a
// dtype, a shape and bytes (row-major, densely packed). The backend, the predictor's stages,
// the KServe codec, the server's scheduler and the model tools all exchange these, so that
// data moves between them without conversion copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cvdeploy {

// Element types (the ONNX tensor element types a YOLO deployment meets).
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
  kFloat16,
  kFloat32,
  kFloat64,
};

// Bytes per element.
size_t ElementSize(DataType type);
// The project's (and ModelInfo's) name: "float32", "float16", "uint8", "int64", "bool", ...
std::string_view DataTypeName(DataType type);
// Accepts the names above plus ONNX spellings ("float", "double", "tensor(float)");
// nullopt for any other name.
std::optional<DataType> ParseDataType(std::string_view name);

// Number of elements of `shape`; nullopt for a negative dimension or when the product (or
// the product times `element_size`, when given) does not fit in size_t.
std::optional<size_t> ElementCount(const std::vector<int64_t>& shape, size_t element_size = 1);
// "[1,3,640,640]".
std::string ShapeString(const std::vector<int64_t>& shape);

// The C++ type stored for a DataType (float16 is stored as its raw uint16_t bits).
template <class T>
constexpr DataType DataTypeOf();
template <>
constexpr DataType DataTypeOf<float>() {
  return DataType::kFloat32;
}
template <>
constexpr DataType DataTypeOf<double>() {
  return DataType::kFloat64;
}
template <>
constexpr DataType DataTypeOf<uint8_t>() {
  return DataType::kUint8;
}
template <>
constexpr DataType DataTypeOf<int8_t>() {
  return DataType::kInt8;
}
template <>
constexpr DataType DataTypeOf<int32_t>() {
  return DataType::kInt32;
}
template <>
constexpr DataType DataTypeOf<int64_t>() {
  return DataType::kInt64;
}

// Non-owning view of a tensor's bytes. The viewed memory must outlive the view; a view is
// cheap to copy (the shape is copied, the data is not).
class TensorView {
 public:
  TensorView() = default;
  // `data` holds ElementCount(shape) * ElementSize(dtype) bytes. Throws
  // std::invalid_argument for a negative dimension or a byte count that overflows.
  TensorView(DataType dtype, std::vector<int64_t> shape, const void* data);

  DataType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  const void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  size_t elements() const { return bytes_ / ElementSize(dtype_); }
  bool empty() const { return data_ == nullptr; }
  // Typed access; throws std::invalid_argument when T does not match dtype().
  template <class T>
  const T* Data() const {
    CheckType(DataTypeOf<T>());
    return static_cast<const T*>(data_);
  }

 private:
  void CheckType(DataType wanted) const;
  DataType dtype_ = DataType::kFloat32;
  std::vector<int64_t> shape_;
  const void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Owning tensor. Reshape() reuses the allocation when it is large enough, so a caller that
// keeps a Tensor across calls does not allocate in steady state. Storage is aligned for
// every element type.
class Tensor {
 public:
  Tensor() = default;
  // Zero-filled tensor of `shape`.
  Tensor(DataType dtype, std::vector<int64_t> shape);
  // A copy of `view`'s bytes.
  static Tensor CopyOf(const TensorView& view);

  // Sets dtype and shape; keeps the allocation if it is big enough (contents unspecified).
  void Reshape(DataType dtype, std::vector<int64_t> shape);

  DataType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  size_t bytes() const { return bytes_; }
  size_t elements() const { return bytes_ / ElementSize(dtype_); }
  void* data() { return storage_.data(); }
  const void* data() const { return storage_.data(); }
  template <class T>
  T* Data() {
    view().Data<T>();  // type check
    return static_cast<T*>(data());
  }
  template <class T>
  const T* Data() const {
    return view().Data<T>();
  }
  TensorView view() const { return TensorView(dtype_, shape_, storage_.data()); }
  operator TensorView() const { return view(); }  // NOLINT: a Tensor is usable as a view

 private:
  DataType dtype_ = DataType::kFloat32;
  std::vector<int64_t> shape_;
  size_t bytes_ = 0;
  std::vector<std::max_align_t> storage_;  // max_align_t elements: aligned for any dtype
};

// An engine output: the model's output name and its data. `tensor` views memory owned by
// whoever produced it (a predictor workspace or an owning Tensor); see the producer's
// contract for how long it stays valid.
struct NamedTensorView {
  std::string name;
  TensorView tensor;
};

}  // namespace cvdeploy
