// SPDX-License-Identifier: Apache-2.0
// Status (ok or {code, message}) and Expected<T> (a value or an Error).
#include "cvdeploy/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace cvdeploy {
namespace {

TEST(Status, OkAndError) {
  const Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(ok.message(), "");
  EXPECT_NO_THROW(ok.ThrowIfError());
  EXPECT_THROW(ok.code(), std::bad_optional_access);  // a precondition that fails loudly

  const Status failed(ErrorCode::kNotFound, "unknown model 'm'");
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(failed.code(), ErrorCode::kNotFound);
  EXPECT_EQ(failed.message(), "unknown model 'm'");
  try {
    failed.ThrowIfError();
    FAIL() << "ThrowIfError did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_STREQ(e.what(), "unknown model 'm'");
  }
}

TEST(Status, FromAnErrorKeepsCodeMessageAndSetting) {
  const Status status = LimitError("max_pixels", "x.png: too many pixels");
  EXPECT_EQ(status.code(), ErrorCode::kTooLarge);
  EXPECT_EQ(status.message(), "x.png: too many pixels");
  EXPECT_EQ(status.error().setting(), "max_pixels");
  const Status copy = status;  // copies are independent values
  EXPECT_EQ(copy.message(), status.message());
}

TEST(Expected, HoldsAValue) {
  Expected<std::vector<int>> v(std::vector<int>{1, 2, 3});
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(static_cast<bool>(v));
  EXPECT_EQ(v.value().size(), 3u);
  EXPECT_EQ((*v)[1], 2);
  EXPECT_EQ(v->back(), 3);
  v->push_back(4);
  EXPECT_EQ(v.value().size(), 4u);
  EXPECT_TRUE(v.status().ok());
  const std::vector<int> moved = *std::move(v);
  EXPECT_EQ(moved.size(), 4u);
}

TEST(Expected, HoldsAnError) {
  const Expected<std::shared_ptr<int>> e = Unavailable("model 'm' is loading");
  ASSERT_FALSE(e.ok());
  EXPECT_FALSE(static_cast<bool>(e));
  EXPECT_EQ(e.error().code(), ErrorCode::kUnavailable);
  EXPECT_STREQ(e.error().what(), "model 'm' is loading");
  EXPECT_EQ(e.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(e.status().message(), "model 'm' is loading");
  // Using the value of an error throws the error itself.
  try {
    [[maybe_unused]] const auto& p = e.value();
    FAIL() << "value() of an error did not throw";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  }
  EXPECT_THROW(*e, Error);
  const Expected<int> value(1);
  EXPECT_THROW(value.error(), std::bad_variant_access);
}

TEST(Expected, FromAStatusAndAsAReturnType) {
  auto find = [](int key) -> Expected<std::string> {
    if (key == 1) return std::string("one");
    if (key == 2) return Status(ErrorCode::kInvalidArgument, "key 2 is reserved");
    return NotFound("no key " + std::to_string(key));
  };
  EXPECT_EQ(*find(1), "one");
  EXPECT_EQ(find(2).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(find(3).error().code(), ErrorCode::kNotFound);
  EXPECT_STREQ(find(3).error().what(), "no key 3");
}

}  // namespace
}  // namespace cvdeploy
