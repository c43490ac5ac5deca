// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cvdeploy/model.h"
#include "cvdeploy/options.h"

namespace cvdeploy::model {

// Parses the ONNX protobuf in `bytes` (graph I/O, opsets, producer, metadata_props) and
// derives ModelMeta. `name` (a path or label) prefixes every error message.
// Throws Error(kBadInput) for data that is not an ONNX model or not a YOLO model.
ModelInfo ParseModelInfo(const std::vector<uint8_t>& bytes, const std::string& name,
                         const ModelOptions& overrides);

}  // namespace cvdeploy::model
