// SPDX-License-Identifier: Apache-2.0
#include "train/model_weights.h"

#include <map>

#include "cvdeploy/error.h"
#include "model/onnx_model.h"

namespace cvdeploy::train {

std::vector<uint8_t> AddTrainingRecord(const std::vector<uint8_t>& bytes, const std::string& name,
                                       nlohmann::ordered_json step) {
  onnx::ModelProto model = model::ParseModel(bytes, name);
  model::AddOptimizationRecord(model, std::move(step));
  model::CheckModel(model, name);
  return model::SerializeModel(model);
}

ImageInputDims ImageInput(const std::vector<uint8_t>& bytes, const std::string& name) {
  onnx::ModelProto model = model::ParseModel(bytes, name);
  std::map<std::string, bool> initializers;
  for (const onnx::TensorProto& t : model.graph().initializer()) initializers[t.name()] = true;
  for (const onnx::ValueInfoProto& input : model.graph().input()) {
    if (initializers.count(input.name()) != 0) continue;
    const onnx::TensorShapeProto& shape = input.type().tensor_type().shape();
    if (shape.dim_size() != 4) continue;
    auto dim = [&shape](int i) {
      return shape.dim(i).has_dim_value() ? shape.dim(i).dim_value() : 0;
    };
    return ImageInputDims{dim(0), dim(2), dim(3)};
  }
  throw Error(ErrorCode::kBadInput, name + ": no image input [B, 3, H, W]");
}

}  // namespace cvdeploy::train
