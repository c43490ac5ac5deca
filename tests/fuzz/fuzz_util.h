// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the libFuzzer targets of tests/fuzz. Header-only so that each target is
// one translation unit plus the few parser sources it links (cmake/Fuzz.cmake).
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace cvdeploy::fuzz {

// A private directory, created once per fuzzing process and removed at exit. Parsers that
// only read from a path get their input through a file in it. It is on /dev/shm when that is
// writable: creating a file on a disk file system costs milliseconds (measured: 340 vs 6,300
// executions per second for the config.json target), far more than the parse itself.
class ScratchDir {
 public:
  static const ScratchDir& Get() {
    static const ScratchDir dir;
    return dir;
  }
  const std::filesystem::path& path() const { return path_; }

  // Writes `data` to `name` inside the directory (replacing it) and returns the full path.
  // Aborts when the write fails: a harness that silently fed the parser nothing would fuzz
  // nothing.
  std::string Write(const std::string& name, const uint8_t* data, size_t size) const {
    const std::filesystem::path file = path_ / name;
    std::FILE* f = std::fopen(file.c_str(), "wb");
    if (f == nullptr) std::abort();
    if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
    if (std::fclose(f) != 0) std::abort();
    return file.string();
  }

  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }

 private:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string base = tmp && *tmp ? tmp : "/tmp";
    if (::access("/dev/shm", W_OK) == 0) base = "/dev/shm";
    std::string pattern = base + "/cvdeploy-fuzz-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  std::filesystem::path path_;
};

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace cvdeploy::fuzz
