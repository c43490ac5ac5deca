// SPDX-License-Identifier: Apache-2.0
// Files compiled into the server (the dashboard's web/dashboard/*), generated at build time by
// cmake/EmbedFiles.cmake: no file is read at run time. Immutable static data; thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

namespace cvdeploy::server {

struct EmbeddedFile {
  const char* path;  // relative to web/dashboard, e.g. "app.js"
  const unsigned char* data;
  size_t size;
};

extern const EmbeddedFile kEmbeddedFiles[];
extern const size_t kEmbeddedFileCount;

// The file at `path`, or nullptr.
inline const EmbeddedFile* FindEmbeddedFile(std::string_view path) {
  for (size_t i = 0; i < kEmbeddedFileCount; ++i) {
    if (path == kEmbeddedFiles[i].path) return &kEmbeddedFiles[i];
  }
  return nullptr;
}

}  // namespace cvdeploy::server
