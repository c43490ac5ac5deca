// SPDX-License-Identifier: Apache-2.0
// Whole-file reads with size limits, and checked, atomic writes: what a front end needs to read
// its inputs and publish its outputs safely. Errors name the file.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "cvdeploy/options.h"  // kDefaultMaxModelBytes

namespace cvdeploy {

// Largest other input file (image, labels, names, JSON) read by default, as a backstop
// against reading a huge file into memory; the callers' own limits are usually smaller.
inline constexpr uint64_t kDefaultMaxFileBytes = uint64_t{1} << 31;

// Reads a whole regular file of at most `max_bytes` bytes. The file is opened without
// blocking (a FIFO cannot hang the open) and the opened descriptor is checked with fstat
// (no window between a check and the open): anything but a regular file (directory, FIFO,
// character device such as /dev/zero, socket) is refused before a byte is read, and so is a
// file whose size exceeds the limit. Files that report a size of 0 but have content (/proc)
// are read up to the limit. Throws Error(kBadInput) "PATH: reason" when the file is missing,
// not regular, unreadable, too large ("PATH: WHAT is N bytes, larger than the limit M"; a
// LimitError whose setting is `setting`, when given) or (with allow_empty false) empty.
// `what` names the kind of file in that message ("file", "model").
std::vector<uint8_t> ReadFileBytes(const std::string& path, bool allow_empty = false,
                                   uint64_t max_bytes = kDefaultMaxFileBytes,
                                   const std::string& what = "file",
                                   const std::string& setting = "");
// ReadFileBytes for a model file: "PATH: model is N bytes, larger than the limit M", a
// LimitError with setting "max_model_bytes" (the front ends name their own flag or key).
std::vector<uint8_t> ReadModelBytes(const std::string& path,
                                    uint64_t max_bytes = kDefaultMaxModelBytes);
// The same as text (labels, names files, JSON documents); an empty file gives "".
std::string ReadFileText(const std::string& path, uint64_t max_bytes = kDefaultMaxFileBytes);

// Throws Error(kBadInput) "PATH: is a directory, expected a file" (or FIFO, character
// device, ...) unless `path` is missing or names a regular file (after symlinks). For paths
// that a library opens itself (a video through OpenCV), checked before handing them over.
void RefuseNonRegularFile(const std::string& path);

// What a file that is not a regular one is, for messages: "a directory", "a FIFO",
// "a character device", "a block device", "a socket", "a symbolic link" (from an lstat mode),
// else "not a regular file".
std::string FileKindOf(mode_t mode);

// Lower-case hex SHA-256 of a buffer.
std::string Sha256Hex(const uint8_t* data, size_t size);

// Writes `bytes` through a temporary file in the destination directory (fsync, mode 0644)
// renamed over `path`, so readers never see a half-written file and a failure leaves any old
// file intact. An existing non-regular `path` (a device such as /dev/null or /dev/full, a
// FIFO) is written in place instead (never replaced). Throws Error(kRuntime) "PATH: reason"
// for every failure, a missing directory included.
void WriteFileAtomically(const std::string& path, const std::vector<uint8_t>& bytes);

// An output written progressively and published by Commit(). "-" is standard output
// (named "stdout" in messages). Any other path behaves as WriteFileAtomically: a temporary
// file renamed over `path` at Commit() (a failed run leaves no partial output and any old
// file intact), or in place for an existing non-regular file. Every write, flush and close
// is checked: a failure throws Error(kRuntime) "PATH: cannot write: REASON" (e.g. "No
// space left on device"); a destination directory that does not exist is Error(kBadInput).
// Destroyed without Commit() (an exception unwinding), the temporary is removed. Not thread-safe.
class OutputFile {
 public:
  explicit OutputFile(const std::string& path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void Write(std::string_view text);
  // Pushes buffered text to the file or stdout (for JSON Lines read while they are written).
  void Flush();
  // Flushes, closes and publishes the output. Call once, after the last Write.
  void Commit();
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void Fail(const std::string& what, int err);

  std::string path_, temp_;
  std::FILE* file_ = nullptr;
  bool is_stdout_ = false;
};

// Flushes standard output and throws Error(kRuntime) "stdout: cannot write: REASON" when
// anything written to it was lost (e.g. redirected to /dev/full).
void CheckStdout();

}  // namespace cvdeploy
