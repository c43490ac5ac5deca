// SPDX-License-Identifier: Apache-2.0
// Locating the shared sample assets. Tests that need them FAIL (never skip) when the
// assets are missing, with a message saying where they were looked for.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace cvdeploy::testing {

// $CVDEPLOY_ASSETS, else <source dir>/../shared/assets.
std::string AssetsDir();
// AssetsDir()/relative; throws std::runtime_error naming the path when it does not exist.
std::string Asset(const std::string& relative);
// Path of the built cvdeploy executable.
std::string CliBinary();
// A fresh empty directory under the system temp dir, removed by the OS eventually.
std::string MakeTempDir(const std::string& tag);
// The first n coco128 image stems (label file names without .txt), sorted by name.
std::vector<std::string> CocoStems(size_t n);

}  // namespace cvdeploy::testing
