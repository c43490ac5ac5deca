// SPDX-License-Identifier: Apache-2.0
#include "support/assets.h"

#include <algorithm>
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

std::vector<std::string> CocoStems(size_t n) {
  std::vector<std::string> stems;
  for (const auto& e : std::filesystem::directory_iterator(Asset("datasets/coco128/labels"))) {
    stems.push_back(e.path().stem().string());
  }
  std::sort(stems.begin(), stems.end());
  stems.resize(std::min(n, stems.size()));
  return stems;
}

}  // namespace cvdeploy::testing
