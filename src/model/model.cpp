// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/model.h"

#include <filesystem>

#include "cvdeploy/error.h"

#include "core/file_util.h"
#include "cvdeploy/secure_memory.h"
#include "model/model_info.h"

namespace cvdeploy {

static_assert(kDefaultMaxModelBytes == core::kDefaultMaxModelBytes);

struct Model::State {
  std::vector<uint8_t> bytes;
  ModelInfo info;
  bool sensitive = false;
  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() {
    if (sensitive) {
      WipeBytes(bytes);
      UnlockMemory(bytes.data(), bytes.capacity());
    }
  }
};

Model Model::FromMemory(std::vector<uint8_t> bytes, const std::string& name,
                        const ModelOptions& options) {
  auto state = std::make_shared<State>();
  // Moved in first, so that the destructor wipes the bytes even when parsing throws.
  state->bytes = std::move(bytes);
  state->sensitive = options.sensitive;
  const bool locked = !options.sensitive || LockMemory(state->bytes.data(), state->bytes.size());
  state->info = model::ParseModelInfo(state->bytes, name, options);
  if (!locked) {
    state->info.warnings.push_back(
        "the decrypted model (" + std::to_string(state->bytes.size()) +
        " bytes) could not be locked in memory (RLIMIT_MEMLOCK; raise it with ulimit -l or "
        "LimitMEMLOCK=): it may be swapped out");
  }
  return Model(std::move(state));
}

Model Model::WithoutBytes() const {
  auto state = std::make_shared<State>();
  state->info = state_->info;
  return Model(std::move(state));
}

Model Model::FromFile(const std::string& path, const ModelOptions& options) {
  // A Core ML package or a SavedModel is a directory: say what it is before the file read
  // refuses it as "a directory".
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    if (std::string message = model::ForeignModelMessage(path, {}); !message.empty()) {
      throw BadInput(message);
    }
  }
  return FromMemory(core::ReadModelBytes(path, options.max_model_bytes), path, options);
}

const ModelInfo& Model::info() const { return state_->info; }
const std::vector<uint8_t>& Model::bytes() const { return state_->bytes; }

}  // namespace cvdeploy
