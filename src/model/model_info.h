// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cvdeploy/model.h"
#include "cvdeploy/options.h"

namespace onnx {
class ValueInfoProto;
}  // namespace onnx

namespace cvdeploy::model {

// Parses the ONNX protobuf in `bytes` (graph I/O, opsets, producer, metadata_props) and
// derives ModelMeta. `name` (a path or label) prefixes every error message.
// Throws Error(kBadInput) for data that is not an ONNX model or not a YOLO model.
// For a model file of another framework (by extension: .pt, .pth, .torchscript, .engine,
// .plan, .tflite, .mlpackage, .mlmodel, .pb; or by content: a zip archive, a TFLite
// flatbuffer), "PATH: a PyTorch checkpoint, not an ONNX model: cvdeploy runs ONNX; export it
// with `yolo export model=PATH format=onnx` (add dynamic=True for rectangular inference)";
// "" for anything else. `head` is the start of the file's bytes (may be empty).
std::string ForeignModelMessage(const std::string& path, const std::vector<uint8_t>& head);

ModelInfo ParseModelInfo(const std::vector<uint8_t>& bytes, const std::string& name,
                         const ModelOptions& overrides);

// One graph input or output as ModelInfo reports it: element type name ("float32", ...;
// "typeN" for others, "non-tensor" for non-tensor values), dimensions with -1 and the dim_param
// name for symbolic or unset ones.
TensorInfo ToTensorInfo(const onnx::ValueInfoProto& value);

}  // namespace cvdeploy::model
