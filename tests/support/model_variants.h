// SPDX-License-Identifier: Apache-2.0
// Altered copies of a sample model for integrity tests (golden sets, packages): the same graph
// with one metadata entry changed, or with the weights of its last Conv scaled. Each is
// written to a fresh temp dir as model.onnx and its path returned; throws std::runtime_error
// when the model lacks what is to be changed.
#pragma once

#include <string>

namespace onnx {
class ModelProto;
}

namespace cvdeploy::testing {

// Writes `model` to MakeTempDir(tag)/model.onnx.
std::string WriteModelProto(const onnx::ModelProto& model, const std::string& tag);
// Sets metadata_props[key] = value (the key must exist).
void SetModelMetadata(onnx::ModelProto& model, const std::string& key, const std::string& value);
// `source` with metadata `key` set to `value`.
std::string ModelWithMetadata(const std::string& source, const std::string& key,
                              const std::string& value, const std::string& tag);
// `source` with the weight initializer of its last Conv multiplied by `factor`.
std::string ModelWithScaledLastConv(const std::string& source, float factor,
                                    const std::string& tag);

}  // namespace cvdeploy::testing
