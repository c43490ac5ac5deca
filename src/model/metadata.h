// SPDX-License-Identifier: Apache-2.0
// Ultralytics metadata parsing (Python literals stored as strings in metadata_props) and
// inference of task/layout from tensor shapes when metadata is missing.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cvdeploy/model.h"
#include "cvdeploy/options.h"

namespace cvdeploy::model {

// "{0: 'person', 1: \"traffic light\"}" or "['a', 'b']" -> names indexed by id.
// Throws Error(kBadInput) with the reason for malformed text or non-contiguous ids.
std::vector<std::string> ParseNamesLiteral(const std::string& text);

// "[640, 640]", "(17, 3)", "640" -> integers. Throws Error(kBadInput) when malformed.
std::vector<int> ParseIntList(const std::string& text);

// "True"/"true"/"1" -> true.
bool ParseBool(const std::string& text);

// Reads a names file: one name per line, or a YAML-ish "names:" block, or a dict literal.
std::vector<std::string> ReadNamesFile(const std::string& path);

// Builds the model description from metadata, input/output tensors and user overrides.
// Throws Error(kBadInput) "MODEL: reason" when the graph is not a YOLO model we can run
// (wrong input rank/channels, unrecognised output layout), and Error(kInvalidArgument)
// when an override contradicts the model (e.g. --imgsz on a fixed-size model).
ModelMeta BuildMeta(const std::string& model_name, const std::map<std::string, std::string>& props,
                    const std::vector<TensorInfo>& inputs, const std::vector<TensorInfo>& outputs,
                    const ModelOptions& overrides);

}  // namespace cvdeploy::model
