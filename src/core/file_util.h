// SPDX-License-Identifier: Apache-2.0
// Whole-file reads and hashing with errors that name the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cvdeploy::core {

// Reads a whole regular file. Throws Error(kBadInput) "PATH: reason" when it is missing,
// a directory, unreadable or (with allow_empty false) empty.
std::vector<uint8_t> ReadFileBytes(const std::string& path, bool allow_empty = false);

// Lower-case hex SHA-256 of a buffer.
std::string Sha256Hex(const uint8_t* data, size_t size);

// Writes `bytes` through a temporary file in the destination directory (fsync, mode 0644)
// renamed over `path`, so readers never see a half-written file and a failure leaves any old
// file intact. Throws Error(kRuntime) "PATH: reason".
void WriteFileAtomically(const std::string& path, const std::vector<uint8_t>& bytes);

// "No such file or directory" style text for errno, for one-line messages.
std::string ErrnoText(int err);

}  // namespace cvdeploy::core
