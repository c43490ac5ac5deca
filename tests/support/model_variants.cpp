// SPDX-License-Identifier: Apache-2.0
#include "support/model_variants.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "model/onnx_model.h"
#include "support/assets.h"

namespace cvdeploy::testing {

std::string WriteModelProto(const onnx::ModelProto& model, const std::string& tag) {
  const std::string out = MakeTempDir(tag) + "/model.onnx";
  core::WriteFileAtomically(out, optimize::SerializeModel(model));
  return out;
}

void SetModelMetadata(onnx::ModelProto& model, const std::string& key, const std::string& value) {
  for (auto& p : *model.mutable_metadata_props()) {
    if (p.key() == key) {
      p.set_value(value);
      return;
    }
  }
  throw std::runtime_error("metadata key " + key + " not found");
}

std::string ModelWithMetadata(const std::string& source, const std::string& key,
                              const std::string& value, const std::string& tag) {
  onnx::ModelProto model = optimize::LoadModel(source);
  SetModelMetadata(model, key, value);
  return WriteModelProto(model, tag);
}

std::string ModelWithScaledLastConv(const std::string& source, float factor,
                                    const std::string& tag) {
  onnx::ModelProto model = optimize::LoadModel(source);
  onnx::GraphProto* graph = model.mutable_graph();
  std::vector<std::string> initializers;
  for (const onnx::TensorProto& init : graph->initializer()) initializers.push_back(init.name());
  std::string weight;
  for (const onnx::NodeProto& node : graph->node()) {
    if (node.op_type() != "Conv") continue;
    if (std::find(initializers.begin(), initializers.end(), node.input(1)) != initializers.end())
      weight = node.input(1);
  }
  if (weight.empty()) throw std::runtime_error("no Conv weight initializer in " + source);
  for (onnx::TensorProto& init : *graph->mutable_initializer()) {
    if (init.name() != weight) continue;
    std::vector<float> values = optimize::FloatData(init);
    for (float& v : values) v *= factor;
    init = optimize::FloatTensor(init.name(), {init.dims().begin(), init.dims().end()}, values);
  }
  return WriteModelProto(model, tag);
}

}  // namespace cvdeploy::testing
