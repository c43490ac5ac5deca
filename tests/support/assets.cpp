// SPDX-License-Identifier: Apache-2.0
#include "support/assets.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace cvdeploy::testing {

std::string AssetsDir() {
  if (const char* env = std::getenv("CVDEPLOY_ASSETS"); env != nullptr && *env != '\0') {
    return env;
  }
  return std::string(CVDEPLOY_SOURCE_DIR) + "/../shared/assets";
}

std::string Asset(const std::string& relative) {
  const std::string path = AssetsDir() + "/" + relative;
  if (!std::filesystem::exists(path)) {
    throw std::runtime_error("sample asset missing: " + path +
                             " (set CVDEPLOY_ASSETS to the shared assets directory)");
  }
  return path;
}

std::string CliBinary() { return CVDEPLOY_BINARY; }

std::string MakeTempDir(const std::string& tag) {
  std::string pattern = (std::filesystem::temp_directory_path() / ("cvdeploy-" + tag + "-XXXXXX"));
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + pattern);
  return pattern;
}

}  // namespace cvdeploy::testing
