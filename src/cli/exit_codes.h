// SPDX-License-Identifier: Apache-2.0
// The CLI's one table of exit codes (README "Command line"): every exit status the process
// returns is chosen here, from a core ErrorCode or a named command outcome.
//   0 ok, 2 usage error, 3 bad input, 4 runtime failure,
//   5 `quantize` cannot meet --max-map-drop, 6 `compare` (and `samples replay`) agreement
//   under --min-agreement,
//   7 `golden check` mismatch, 8 `drift` alert.
// Header-only and constexpr, so the unit tests check the whole table without the CLI binary.
// Each switch has no default: -Wswitch (in -Wall -Werror) fails the build until a new code is
// mapped.
#pragma once

#include "cvdeploy/error.h"

namespace cvdeploy::cli {

// Results of a command that are not errors of the core.
enum class Outcome {
  kOk,                  // the command did what was asked
  kUsage,               // the command line itself is wrong (CLI11 parse errors)
  kAccuracyGateNotMet,  // quantize: the accuracy gate could not meet --max-map-drop
  kDisagreement,        // compare: agreement under --min-agreement
  kGoldenMismatch,      // golden check: the model does not reproduce its golden set
  kDriftAlert,          // drift: a feature's PSI reached the alert threshold
};

constexpr int ExitCodeOf(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return 0;
    case Outcome::kUsage:
      return 2;
    case Outcome::kAccuracyGateNotMet:
      return 5;
    case Outcome::kDisagreement:
      return 6;
    case Outcome::kGoldenMismatch:
      return 7;
    case Outcome::kDriftAlert:
      return 8;
  }
  return 4;  // not reached: every outcome is listed above
}

constexpr int ExitCodeOf(ErrorCode code) {
  switch (code) {
    // The invocation is wrong: fix the command line (or the credentials it passes).
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kPermissionDenied:
    case ErrorCode::kUnauthenticated:
      return ExitCodeOf(Outcome::kUsage);
    // An input (file, model, label, image) cannot be used: fix or replace the input.
    case ErrorCode::kBadInput:
    case ErrorCode::kNotFound:
    case ErrorCode::kTooLarge:
    case ErrorCode::kUnsupportedMedia:
      return 3;
    // Running failed: the engine, the system or the moment (address in use, out of memory).
    case ErrorCode::kRuntime:
    case ErrorCode::kUnavailable:
    case ErrorCode::kDeadlineExceeded:
      return 4;
  }
  return 4;  // not reached: every code is listed above
}

}  // namespace cvdeploy::cli
