// SPDX-License-Identifier: Apache-2.0
// Bounded JSON reading: the public functions (cvdeploy/json.h), also reachable as core::
// inside the library.
#pragma once

#include "cvdeploy/json.h"

namespace cvdeploy::core {

using cvdeploy::JsonNestingDepth;
using cvdeploy::JsonTooDeepMessage;
using cvdeploy::kMaxJsonDepth;
using cvdeploy::ParseJsonBounded;
using cvdeploy::ParseOrderedJsonBounded;

}  // namespace cvdeploy::core
