// SPDX-License-Identifier: Apache-2.0
// Results without exceptions, for paths that answer later or on another thread (the server's
// repository, scheduler and control paths): `Status` is ok or an error code with a message;
// `Expected<T>` is a value or an Error. Both carry cvdeploy::ErrorCode, so the front end maps
// them through the same table as thrown errors. (C++20 has no std::expected.)
#pragma once

#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "cvdeploy/error.h"

namespace cvdeploy {

// Ok, or {code, message}. Cheap to copy when ok. Not thread-safe to modify; a const Status
// may be read from any thread.
class Status {
 public:
  Status() = default;  // ok
  Status(ErrorCode code, const std::string& message) : error_(Error(code, message)) {}
  // The status of a caught error (its code, message and setting).
  Status(const Error& error) : error_(error) {}  // NOLINT: implicit on purpose

  static Status Ok() { return Status(); }

  bool ok() const noexcept { return !error_.has_value(); }
  // Precondition: !ok() (std::bad_optional_access otherwise).
  ErrorCode code() const { return error_.value().code(); }
  // Empty when ok.
  std::string message() const { return ok() ? std::string() : std::string(error_->what()); }
  // The error this status holds. Precondition: !ok() (std::bad_optional_access otherwise).
  const Error& error() const { return error_.value(); }
  // Throws the error when not ok.
  void ThrowIfError() const {
    if (error_) throw *error_;
  }

 private:
  std::optional<Error> error_;
};

// A T or an Error. `value()`, `*` and `->` on an error throw that error (so a caller that
// cannot handle it passes it on as an exception); check ok() first to branch.
template <class T>
class Expected {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Error>, "Expected<Error> is ambiguous");

 public:
  Expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Expected(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit
  // Precondition: !status.ok() (std::bad_optional_access otherwise: an ok Status has no value).
  Expected(const Status& status) : v_(std::in_place_index<1>, status.error()) {}  // NOLINT

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    Check();
    return std::get<0>(v_);
  }
  const T& value() const& {
    Check();
    return std::get<0>(v_);
  }
  T&& value() && {
    Check();
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // Precondition: !ok() (std::bad_variant_access otherwise).
  const Error& error() const { return std::get<1>(v_); }
  // Ok, or the error as a Status.
  Status status() const { return ok() ? Status() : Status(error()); }

 private:
  void Check() const {
    if (v_.index() != 0) throw std::get<1>(v_);
  }
  std::variant<T, Error> v_;
};

}  // namespace cvdeploy
