// SPDX-License-Identifier: Apache-2.0
// The one rule for every command's output flags (--out, --output, --json, --csv, --save-json,
// --save-dir, --save-calibration, ...): missing parent directories are created, as `mkdir -p`,
// so that `--json runs/exp1/metrics.json` works in every command alike.
#pragma once

#include <string>

namespace cvdeploy::cli {

// Creates the missing parent directories of the output file `path` given with `flag`; "-"
// (stdout) and "" are left alone. Returns `path`. Throws Error(kInvalidArgument) "FLAG PATH:
// cannot create directory DIR: REASON" (e.g. a parent is a regular file: "Not a directory").
const std::string& OutputPath(const std::string& flag, const std::string& path);

// The same for an output directory itself (--save-dir, --out DIR), created with its parents.
const std::string& OutputDirectory(const std::string& flag, const std::string& dir);

}  // namespace cvdeploy::cli
