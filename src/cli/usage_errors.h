// SPDX-License-Identifier: Apache-2.0
// Explains a failed command-line parse the way a user needs it, from what CLI11 left over:
//   - Ultralytics-style arguments (`model=x.onnx source=bus.jpg`, `detect predict`): the
//     equivalent cvdeploy command line as a hint;
//   - an unknown subcommand: "unknown command 'predcit' (did you mean 'predict'?)";
//   - an unknown flag: "unknown flag --modle (did you mean --model?)";
//   - any other unexpected argument.
// These win over CLI11's own error (e.g. "--model is required", which a mistyped --model
// would otherwise produce). Suggestions come from cli/suggest.h (edit distance <= 2 or a
// prefix). Called on the main thread after App::parse threw; reads the App's parse state only.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace cvdeploy::cli {

struct UsageExplanation {
  std::string message;  // one line: what is wrong, without the "cvdeploy: usage error: " prefix
  std::string hint;     // "" or a second line, e.g. "did you mean: cvdeploy predict --model x"
};

// `app` is the top-level App whose parse of `args` (argv without the program name) threw a
// CLI::ParseError. Returns nullopt when nothing was left over that explains the failure better
// than CLI11's own message.
std::optional<UsageExplanation> ExplainUsageError(CLI::App& app,
                                                  const std::vector<std::string>& args);

}  // namespace cvdeploy::cli
