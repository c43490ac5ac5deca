// SPDX-License-Identifier: Apache-2.0
// The public training entry points (cvdeploy/train.h).
#include "cvdeploy/train.h"

#include "cvdeploy/error.h"

namespace cvdeploy {

bool TrainingAvailable() { return true; }

}  // namespace cvdeploy

// Placeholders until the trainer lands (session 13, in progress).
namespace cvdeploy {
TrainResult Distill(const std::vector<uint8_t>&, const std::string& student_name,
                    const std::vector<uint8_t>&, const std::string&, const TrainOptions&) {
  throw Error(ErrorCode::kUnavailable, student_name + ": distill is not implemented yet");
}
TrainResult Finetune(const std::vector<uint8_t>&, const std::string& name, const TrainOptions&) {
  throw Error(ErrorCode::kUnavailable, name + ": finetune is not implemented yet");
}
TrainResult QuantizeAwareTrain(const std::vector<uint8_t>&, const std::string& name,
                               const QatOptions&) {
  throw Error(ErrorCode::kUnavailable, name + ": qat is not implemented yet");
}
}  // namespace cvdeploy
