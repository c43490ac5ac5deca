// SPDX-License-Identifier: Apache-2.0
#include "cli/output_path.h"

#include <filesystem>

#include "cvdeploy/error.h"

namespace cvdeploy::cli {
namespace {

// `mkdir -p dir`: "" on success, else why not.
std::string CreateDirectories(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ec.message();
  if (!std::filesystem::is_directory(dir, ec)) return "a file is in the way";
  return "";
}

[[noreturn]] void CannotCreate(const std::string& flag, const std::string& path,
                               const std::string& dir, const std::string& reason) {
  std::string message = flag;
  message.append(" ").append(path).append(": cannot create directory ").append(dir);
  throw InvalidArgument(message.append(": ").append(reason));
}

}  // namespace

const std::string& OutputDirectory(const std::string& flag, const std::string& dir) {
  if (dir.empty() || dir == "-") return dir;
  if (const std::string why = CreateDirectories(dir); !why.empty()) {
    CannotCreate(flag, dir, dir, why);
  }
  return dir;
}

const std::string& OutputPath(const std::string& flag, const std::string& path) {
  if (path.empty() || path == "-") return path;
  const std::string parent = std::filesystem::path(path).parent_path().string();
  if (parent.empty()) return path;
  if (const std::string why = CreateDirectories(parent); !why.empty()) {
    CannotCreate(flag, path, parent, why);
  }
  return path;
}

}  // namespace cvdeploy::cli
