// SPDX-License-Identifier: Apache-2.0
// Ultralytics dataset YAML files without a YAML dependency: the top-level `names:` entry and the
// keys a dataset file needs (`path`, `train`, `val`, `test`, `nc`), in the forms Ultralytics
// dataset files use. A subset of YAML, not a YAML parser: anchors, multi-document files and
// nested structures other than these are not understood (and ignored, never misread as data).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cvdeploy::model {

// Accepts a block list ("- person"), a block mapping ("0: person"), and inline
// "[person, 'traffic light']" or "{0: person, 1: bicycle}". Quotes and "# comments" are
// stripped. Mapping gaps are named by their index. Returns {} when there is no names entry.
// Throws Error(kBadInput) "names: class id N out of range (at most 1048575)" for a mapping
// key beyond that (every id below a key gets a name, so a huge key would exhaust memory).
std::vector<std::string> ParseYamlNames(std::string_view text);

// The keys of an Ultralytics dataset YAML, as written (paths are not resolved here).
struct DatasetYaml {
  std::string path;  // dataset root ("" when absent)
  // "train", "val", "test": each a scalar ("images/val") or a list of entries (block "- a"
  // or flow "[a, b]"); a key with an empty or null value ("", "~", "null") is left out.
  std::map<std::string, std::vector<std::string>> splits;
  std::vector<std::string> names;  // ParseYamlNames
  std::optional<int> nc;           // `nc:` when it is an integer in [1, 1048576]
};

// Reads the top-level keys above; other keys (download:, yaml comments) are ignored. Throws
// Error(kBadInput) "KEY: reason" for a split with more than 4096 entries, an `nc` that is not
// an integer in range, or what ParseYamlNames refuses.
DatasetYaml ParseDatasetYaml(std::string_view text);

}  // namespace cvdeploy::model
