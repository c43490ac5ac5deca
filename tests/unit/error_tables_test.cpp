// SPDX-License-Identifier: Apache-2.0
// The two edge tables: ExitCodeOf (CLI) and HttpStatusOf (server) cover every ErrorCode with
// the documented values (README "Command line", docs/server.md "Errors and limits"), and
// ErrorCode values are not exit codes.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "cli/exit_codes.h"
#include "cvdeploy/error.h"
#include "server/http_error.h"

namespace cvdeploy {
namespace {

struct Row {
  ErrorCode code;
  int exit_code;
  int http_status;
};

// Every code, in declaration order. CodesAreListedCompletely ties this list to the enum.
const std::vector<Row> kTable = {
    {ErrorCode::kInvalidArgument, 2, 400},  {ErrorCode::kBadInput, 3, 422},
    {ErrorCode::kRuntime, 4, 500},          {ErrorCode::kNotFound, 3, 404},
    {ErrorCode::kTooLarge, 3, 413},         {ErrorCode::kUnsupportedMedia, 3, 415},
    {ErrorCode::kPermissionDenied, 2, 403}, {ErrorCode::kUnauthenticated, 2, 401},
    {ErrorCode::kUnavailable, 4, 503},      {ErrorCode::kDeadlineExceeded, 4, 504},
};

TEST(ErrorCodes, CodesAreListedCompletely) {
  // The enum starts at 1 and has no gaps: every value in [1, size] is named, the next is not.
  for (size_t i = 0; i < kTable.size(); ++i) {
    EXPECT_EQ(static_cast<int>(kTable[i].code), static_cast<int>(i) + 1);
    EXPECT_NE(ErrorCodeName(kTable[i].code), "unknown error");
  }
  EXPECT_EQ(ErrorCodeName(static_cast<ErrorCode>(static_cast<int>(kTable.size()) + 1)),
            "unknown error");
  std::set<std::string_view> names;
  for (const Row& row : kTable) names.insert(ErrorCodeName(row.code));
  EXPECT_EQ(names.size(), kTable.size());
}

TEST(ErrorCodes, ExitCodeOfEveryCode) {
  for (const Row& row : kTable) {
    SCOPED_TRACE(std::string(ErrorCodeName(row.code)));
    EXPECT_EQ(cli::ExitCodeOf(row.code), row.exit_code);
    // Nothing may rely on a code's value being its exit code.
    EXPECT_NE(static_cast<int>(row.code), cli::ExitCodeOf(row.code));
  }
  // Port in use and the like are runtime failures, not usage errors.
  EXPECT_EQ(cli::ExitCodeOf(Unavailable("cannot listen on 127.0.0.1:1").code()), 4);
  EXPECT_EQ(cli::ExitCodeOf(LimitError("max_pixels", "x").code()), 3);
}

TEST(ErrorCodes, ExitCodeOfOutcomes) {
  EXPECT_EQ(cli::ExitCodeOf(cli::Outcome::kOk), 0);
  EXPECT_EQ(cli::ExitCodeOf(cli::Outcome::kUsage), 2);
  EXPECT_EQ(cli::ExitCodeOf(cli::Outcome::kAccuracyGateNotMet), 5);
  EXPECT_EQ(cli::ExitCodeOf(cli::Outcome::kDisagreement), 6);
  EXPECT_EQ(cli::ExitCodeOf(cli::Outcome::kGoldenMismatch), 7);
  static_assert(cli::ExitCodeOf(ErrorCode::kInvalidArgument) ==
                cli::ExitCodeOf(cli::Outcome::kUsage));
}

TEST(ErrorCodes, HttpStatusOfEveryCode) {
  for (const Row& row : kTable) {
    SCOPED_TRACE(std::string(ErrorCodeName(row.code)));
    EXPECT_EQ(server::HttpStatusOf(row.code), row.http_status);
  }
  static_assert(server::HttpStatusOf(ErrorCode::kBadInput) == 422);
}

TEST(ErrorCodes, ShorthandsCarryTheirCode) {
  EXPECT_EQ(BadInput("x").code(), ErrorCode::kBadInput);
  EXPECT_EQ(InvalidArgument("x").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(RuntimeError("x").code(), ErrorCode::kRuntime);
  EXPECT_EQ(NotFound("x").code(), ErrorCode::kNotFound);
  EXPECT_EQ(TooLarge("x").code(), ErrorCode::kTooLarge);
  EXPECT_EQ(UnsupportedMedia("x").code(), ErrorCode::kUnsupportedMedia);
  EXPECT_EQ(PermissionDenied("x").code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(Unauthenticated("x").code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(Unavailable("x").code(), ErrorCode::kUnavailable);
  EXPECT_EQ(DeadlineExceeded("x").code(), ErrorCode::kDeadlineExceeded);
  const LimitError limit("max_model_bytes", "m.onnx: too big");
  EXPECT_EQ(limit.code(), ErrorCode::kTooLarge);
  EXPECT_EQ(limit.setting(), "max_model_bytes");
  EXPECT_STREQ(limit.what(), "m.onnx: too big");
  const Error device = InvalidArgument("device 'npu': expected cpu", "device");
  EXPECT_EQ(device.setting(), "device");
  EXPECT_EQ(BadInput("x").setting(), "");
}

}  // namespace
}  // namespace cvdeploy
