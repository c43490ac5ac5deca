// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/model.h"

#include "core/file_util.h"
#include "model/model_info.h"

namespace cvdeploy {

static_assert(kDefaultMaxModelBytes == core::kDefaultMaxModelBytes);

struct Model::State {
  std::vector<uint8_t> bytes;
  ModelInfo info;
};

Model Model::FromMemory(std::vector<uint8_t> bytes, const std::string& name,
                        const ModelOptions& options) {
  auto state = std::make_shared<State>();
  state->info = model::ParseModelInfo(bytes, name, options);
  state->bytes = std::move(bytes);
  return Model(std::move(state));
}

Model Model::FromFile(const std::string& path, const ModelOptions& options) {
  return FromMemory(core::ReadModelBytes(path, options.max_model_bytes), path, options);
}

const ModelInfo& Model::info() const { return state_->info; }
const std::vector<uint8_t>& Model::bytes() const { return state_->bytes; }

}  // namespace cvdeploy
