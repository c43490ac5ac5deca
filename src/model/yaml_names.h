// SPDX-License-Identifier: Apache-2.0
// Class names from a dataset YAML without a YAML dependency: only the top-level `names:`
// entry is read, in the forms Ultralytics dataset files use.
#pragma once

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

}  // namespace cvdeploy::model
