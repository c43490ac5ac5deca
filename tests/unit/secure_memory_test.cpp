// SPDX-License-Identifier: Apache-2.0
// cvdeploy/secure_memory.h and the sensitive-model options built on it: wiping really zeroes,
// locking works on a small buffer, a process marks itself non-dumpable (checked in a child so
// the test binary keeps its core dumps), a Model without its bytes keeps its description, and a
// Predictor created with keep_model_bytes = false holds no model bytes but still predicts.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cvdeploy/image.h"
#include "cvdeploy/model.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/secure_memory.h"
#include "support/assets.h"

namespace cvdeploy {
namespace {

TEST(SecureMemory, WipeZeroesEveryByte) {
  std::vector<uint8_t> bytes(4096, 0xA5);
  WipeBytes(bytes);
  EXPECT_TRUE(std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; }));
  std::string text = "a secret that must go";
  WipeBytes(text);
  EXPECT_EQ(text, std::string(text.size(), '\0'));
}

TEST(SecureMemory, LocksASmallBuffer) {
  std::vector<uint8_t> bytes(4096, 1);
  ASSERT_TRUE(LockMemory(bytes.data(), bytes.size()));  // far below any RLIMIT_MEMLOCK
  UnlockMemory(bytes.data(), bytes.size());
  EXPECT_TRUE(LockMemory(nullptr, 0));
}

TEST(SecureMemory, NonDumpableInAChild) {
  ASSERT_TRUE(ProcessIsDumpable());
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    MakeProcessNonDumpable();
    _exit(ProcessIsDumpable() ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(ProcessIsDumpable());  // the parent is untouched
}

TEST(SensitiveModel, WithoutBytesKeepsTheDescription) {
  ModelOptions options;
  options.sensitive = true;
  const Model model = Model::FromFile(testing::Asset("models/yolov8n-dq.onnx"), options);
  ASSERT_FALSE(model.bytes().empty());
  const Model bare = model.WithoutBytes();
  EXPECT_TRUE(bare.bytes().empty());
  EXPECT_EQ(bare.info().sha256, model.info().sha256);
  EXPECT_EQ(bare.meta().names, model.meta().names);
}

TEST(SensitiveModel, PredictorWithoutModelBytesStillPredicts) {
  ModelOptions options;
  options.sensitive = true;
  SessionOptions session;
  session.keep_model_bytes = false;
  session.intra_op_threads = 1;
  auto predictor = Predictor::Create(
      Model::FromFile(testing::Asset("models/yolov8n-dq.onnx"), options), session);
  EXPECT_TRUE(predictor->model().bytes().empty());
  const Result r = predictor->Predict(ReadImage(testing::Asset("images/bus.jpg")));
  EXPECT_FALSE(r.detections.empty());
}

}  // namespace
}  // namespace cvdeploy
