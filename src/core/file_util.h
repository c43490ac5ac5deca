// SPDX-License-Identifier: Apache-2.0
// Whole-file reads and checked writes with errors that name the file.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "cvdeploy/file.h"

namespace cvdeploy::core {

// The public file functions (cvdeploy/file.h), also reachable as core:: inside the library.
using cvdeploy::CheckStdout;
using cvdeploy::FileKindOf;
using cvdeploy::kDefaultMaxFileBytes;
using cvdeploy::kDefaultMaxModelBytes;
using cvdeploy::OutputFile;
using cvdeploy::ReadFileBytes;
using cvdeploy::ReadFileText;
using cvdeploy::ReadModelBytes;
using cvdeploy::RefuseNonRegularFile;
using cvdeploy::Sha256Hex;
using cvdeploy::WriteFileAtomically;

// "No such file or directory" style text for errno, for one-line messages.
std::string ErrnoText(int err);

}  // namespace cvdeploy::core
