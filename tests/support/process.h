// SPDX-License-Identifier: Apache-2.0
// Runs a program (normally the cvdeploy CLI) and captures its exit code and output.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cvdeploy::testing {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string out, err;
};

// Runs `program` with `args` in `cwd` ("" = current dir), stdin from /dev/null. Kills the
// child and reports exit code 124 after `timeout_s` seconds.
ProcessResult RunProcess(const std::string& program, const std::vector<std::string>& args,
                         const std::string& cwd = "", int timeout_s = 300);

// RunProcess(CliBinary(), args, cwd).
// One JSON document per non-empty line (the CLI's --json output).
std::vector<nlohmann::json> ParseJsonLines(const std::string& text);

ProcessResult RunCli(const std::vector<std::string>& args, const std::string& cwd = "");

// "cvdeploy ARGS" with its exit code, stdout and stderr, for assertion messages.
std::string DescribeRun(const std::vector<std::string>& args, const ProcessResult& run);

// Runs the CLI in `cwd` and records a GoogleTest failure unless it exits with `code` and
// writes exactly one stderr line that contains `names` (and no uncaught-exception text).
ProcessResult ExpectCliError(const std::vector<std::string>& args, int code,
                             const std::string& names, const std::string& cwd = "");

}  // namespace cvdeploy::testing
