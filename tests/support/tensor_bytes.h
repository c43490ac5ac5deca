// SPDX-License-Identifier: Apache-2.0
// Typed values to raw bytes and back (host byte order, bit for bit), for tests that compare
// tensor data exactly.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace cvdeploy::testing {

template <typename T>
std::vector<uint8_t> ToBytes(const std::vector<T>& values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(T));
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

template <typename T>
std::vector<T> FromBytes(const std::vector<uint8_t>& bytes) {
  std::vector<T> values(bytes.size() / sizeof(T));
  if (!values.empty()) std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
  return values;
}

}  // namespace cvdeploy::testing
