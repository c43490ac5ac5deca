// SPDX-License-Identifier: Apache-2.0
// security::ResolveDataKey's key command (--decrypt-key-cmd) whatever the command does: prints
// the key (also with a leftover child holding the pipe), closes its stdout and lingers, never
// exits, prints too much, dies by a signal; it inherits none of our descriptors. And the trust
// store refuses a directory others can write to. The bounds on elapsed time are hang guards
// (a 30 s sleep against a 1 s timeout), not performance checks.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "cvdeploy/error.h"
#include "cvdeploy/security/model_source.h"
#include "support/assets.h"

namespace cvdeploy::security {
namespace {

using Clock = std::chrono::steady_clock;

const std::string kKeyHex = std::string(32, 'a') + std::string(32, '7');

ModelProtection WithCommand(const std::string& command) {
  ModelProtection p;
  p.decrypt_key_cmd = command;
  p.key_cmd_timeout = std::chrono::seconds(1);
  return p;
}

// The message of the error ResolveDataKey throws ("" when it does not throw).
std::string FailureOf(const std::string& command, double* seconds = nullptr) {
  const auto t0 = Clock::now();
  std::string message;
  try {
    ResolveDataKey(WithCommand(command));
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    message = e.what();
  }
  if (seconds) *seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return message;
}

TEST(KeyCommand, PrintsTheKey) {
  const auto key = ResolveDataKey(WithCommand("printf '%s\\n' " + kKeyHex));
  ASSERT_TRUE(key);
  EXPECT_EQ(key->Text(), kKeyHex + "\n");
}

TEST(KeyCommand, ALeftoverChildHoldingThePipeDoesNotLoseTheKey) {
  const auto t0 = Clock::now();
  const auto key = ResolveDataKey(WithCommand("(sleep 30 &); printf '%s\\n' " + kKeyHex));
  ASSERT_TRUE(key);
  EXPECT_EQ(key->Text(), kKeyHex + "\n");
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 20);
}

TEST(KeyCommand, ClosingStdoutAndLingeringTimesOut) {
  double seconds = 0;
  const std::string m = FailureOf("printf '%s\\n' " + kKeyHex + "; exec >&-; sleep 30", &seconds);
  EXPECT_NE(m.find("no key within 1 s"), std::string::npos) << m;
  EXPECT_LT(seconds, 20);
  EXPECT_EQ(m.find(kKeyHex), std::string::npos);
}

TEST(KeyCommand, NeverExitingTimesOut) {
  double seconds = 0;
  const std::string m = FailureOf("sleep 30", &seconds);
  EXPECT_NE(m.find("no key within 1 s"), std::string::npos) << m;
  EXPECT_LT(seconds, 20);
}

TEST(KeyCommand, TooMuchOutputFailsWithoutShowingIt) {
  const std::string m = FailureOf("head -c 5000 /dev/zero | tr '\\0' k");
  EXPECT_NE(m.find("more than 4096 bytes"), std::string::npos) << m;
  EXPECT_EQ(m.find("kkkk"), std::string::npos);
}

TEST(KeyCommand, ExitStatusAndSignalAreNamed) {
  EXPECT_NE(FailureOf("exit 3").find("exited with status 3"), std::string::npos);
  EXPECT_NE(FailureOf("kill -9 $$").find("killed by signal 9"), std::string::npos);
  const std::string m = FailureOf("echo not-a-key-but-a-secret");
  EXPECT_NE(m.find("--decrypt-key-cmd"), std::string::npos) << m;
  EXPECT_EQ(m.find("not-a-key-but-a-secret"), std::string::npos) << m;
}

TEST(KeyCommand, InheritsNoDescriptorOfOurs) {
  // Opened without O_CLOEXEC, as Boost.Asio opens sockets.
  const int fd = open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 3);
  const std::string fd_path = "/proc/self/fd/" + std::to_string(fd);
  const auto key =
      ResolveDataKey(WithCommand("[ ! -e " + fd_path + " ] && printf '%s\\n' " + kKeyHex));
  close(fd);
  ASSERT_TRUE(key);
}

TEST(TrustStore, RefusesADirectoryOthersCanWrite) {
  namespace fs = std::filesystem;
  const std::string dir = testing::MakeTempDir("trust");
  const Ed25519Key key = Ed25519Key::Generate();
  std::ofstream(dir + "/a.pub") << key.PublicPem();
  chmod((dir + "/a.pub").c_str(), 0644);
  chmod(dir.c_str(), 0755);
  EXPECT_EQ(TrustedKeys::FromDir(dir).size(), 1u);
  chmod(dir.c_str(), 0777);
  try {
    TrustedKeys::FromDir(dir);
    ADD_FAILURE() << "a world-writable trust store was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("writable by group or others"), std::string::npos)
        << e.what();
  }
  chmod(dir.c_str(), 0755);
  chmod((dir + "/a.pub").c_str(), 0664);
  EXPECT_THROW(TrustedKeys::FromDir(dir), Error);
}

}  // namespace
}  // namespace cvdeploy::security
