// SPDX-License-Identifier: Apache-2.0
// The real `cvdeploy keys` and `cvdeploy users` commands: what they print (a key or a TOTP
// secret once, on stdout alone), what their files hold (no key, secret part or password),
// their errors (one line, the CLI's exit codes), and that the libraries accept what the CLI
// wrote: a created key authenticates until `keys revoke`, a user added with
// --password-stdin logs in with a code from oathtool.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "cvdeploy/security/api_keys.h"
#include "cvdeploy/security/users.h"
#include "support/process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

constexpr char kPassword[] = "a long enough passphrase";

class CliKeysUsersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cvdeploy_cli_auth_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    keys_ = (dir_ / "keys.json").string();
    users_ = (dir_ / "users.json").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // The CLI with `stdin_text` on its standard input (through sh, the text as an argument).
  static ProcessResult RunWithStdin(const std::string& stdin_text,
                                    const std::vector<std::string>& args) {
    // sh -c SCRIPT BINARY TEXT ARGS...: $0 is the binary, $1 the text, the rest the arguments.
    std::vector<std::string> sh = {"-c", "t=\"$1\"; shift; printf '%s\\n' \"$t\" | \"$0\" \"$@\"",
                                   CVDEPLOY_BINARY, stdin_text};
    sh.insert(sh.end(), args.begin(), args.end());
    return RunProcess("/bin/sh", sh);
  }
  ProcessResult AddUser(const std::string& name, const std::string& password) {
    return RunWithStdin(password, {"users", "add", name, "--role", "admin", "--password-stdin",
                                   "--users-file", users_});
  }

  fs::path dir_;
  std::string keys_, users_;
};

TEST_F(CliKeysUsersTest, KeysCreateListRevoke) {
  const std::vector<std::string> create = {
      "keys",   "create",   "--name",          "ci-bot",    "--role", "inferencer",  "--role",
      "viewer", "--models", "yolo11n,yolov8n", "--expires", "90d",    "--keys-file", keys_};
  const ProcessResult made = RunCli(create);
  ASSERT_EQ(made.exit_code, 0) << DescribeRun(create, made);
  // stdout is the key and a newline, nothing else.
  ASSERT_TRUE(std::regex_match(made.out, std::regex("cvd_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n")))
      << made.out;
  const std::string key = made.out.substr(0, made.out.size() - 1);
  EXPECT_EQ(made.err.find(key), std::string::npos);
  EXPECT_NE(made.err.find("ci-bot"), std::string::npos);
  const std::string file = Read(keys_);
  EXPECT_EQ(file.find(key), std::string::npos);
  EXPECT_EQ(file.find(key.substr(21)), std::string::npos) << "the secret part is in the file";
  struct stat st {};
  ASSERT_EQ(::stat(keys_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  const ProcessResult list = RunCli({"keys", "list", "--keys-file", keys_});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("ci-bot"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("inferencer,viewer"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("yolo11n,yolov8n"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("active"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find(key.substr(21)), std::string::npos);
  const ProcessResult json = RunCli({"keys", "list", "--json", "--keys-file", keys_});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto doc = nlohmann::json::parse(json.out);
  ASSERT_EQ(doc.size(), 1u);
  EXPECT_EQ(doc[0]["name"], "ci-bot");
  EXPECT_EQ(doc[0]["roles"], nlohmann::json({"inferencer", "viewer"}));
  EXPECT_FALSE(doc[0]["expires"].is_null());
  EXPECT_FALSE(doc[0].contains("hash"));

  // A server's store, then `keys revoke` in another process: refused at the next request.
  security::ApiKeyStore server(keys_);
  ASSERT_TRUE(server.Authenticate(key, Clock::now()).ok());
  const ProcessResult revoke = RunCli({"keys", "revoke", "ci-bot", "--keys-file", keys_});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  EXPECT_EQ(server.Authenticate(key, Clock::now()).reason, "revoked");
  EXPECT_NE(RunCli({"keys", "list", "--keys-file", keys_}).out.find("revoked"), std::string::npos);
}

TEST_F(CliKeysUsersTest, KeysErrors) {
  ASSERT_EQ(
      RunCli({"keys", "create", "--name", "a", "--role", "r", "--keys-file", keys_}).exit_code, 0);
  ExpectCliError({"keys", "create", "--name", "a", "--role", "r", "--keys-file", keys_}, 2,
                 "already exists");
  ExpectCliError({"keys", "revoke", "nope", "--keys-file", keys_}, 3, "nope");
  ExpectCliError(
      {"keys", "create", "--name", "b", "--role", "r", "--expires", "5y", "--keys-file", keys_}, 2,
      "5y");
  ExpectCliError({"keys", "create", "--name", "bad name", "--role", "r", "--keys-file", keys_}, 2,
                 "key name");
  ExpectCliError({"keys", "create", "--name", "b", "--keys-file", keys_}, 2, "--role");
  ExpectCliError({"keys", "list", "--keys-file", (dir_ / "missing.json").string()}, 3,
                 "missing.json");
  ::chmod(keys_.c_str(), 0644);
  ExpectCliError({"keys", "list", "--keys-file", keys_}, 2, keys_);
  ExpectCliError({"keys", "create", "--name", "c", "--role", "r", "--keys-file", keys_}, 2, keys_);
}

TEST_F(CliKeysUsersTest, UsersAddWithPasswordStdinAndLoginWithOathtool) {
  const ProcessResult add = AddUser("alice", kPassword);
  ASSERT_EQ(add.exit_code, 0) << add.out << add.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      add.out, m,
      std::regex("otpauth://totp/cvdeploy:alice\\?secret=([A-Z2-7]{32})&issuer=cvdeploy&"
                 "algorithm=SHA1&digits=6&period=30\n([A-Z2-7]{32})\n")))
      << add.out;
  const std::string b32 = m[1];
  EXPECT_EQ(m[2], b32);
  const std::string file = Read(users_);
  EXPECT_EQ(file.find(kPassword), std::string::npos);
  EXPECT_EQ(add.err.find(kPassword), std::string::npos);
  const ProcessResult list = RunCli({"users", "list", "--users-file", users_});
  EXPECT_NE(list.out.find("alice"), std::string::npos);
  EXPECT_EQ(list.out.find(b32), std::string::npos);

  if (::access("/usr/bin/oathtool", X_OK) != 0) GTEST_SKIP() << "oathtool is not installed";
  // Codes at chosen times: 2026-12-04 14:00:00 UTC is 1796392800.
  const auto t0 = Clock::time_point(std::chrono::seconds(1796392800));
  auto oath = [&](const char* when) {
    const auto run = RunProcess("/usr/bin/oathtool", {"--totp", "-b", b32, "--now", when});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return run.out.substr(0, run.out.find('\n'));
  };
  security::UserStore store(users_);
  const auto ok = store.Login("alice", kPassword, oath("2026-12-04 14:00:05 UTC"), "c", t0);
  ASSERT_TRUE(ok.ok()) << ok.reason;
  EXPECT_TRUE(ok.identity->mfa);
  EXPECT_EQ(store.Login("alice", kPassword, oath("2026-12-04 14:00:05 UTC"), "c", t0).reason,
            "replayed_totp");
  const auto later = t0 + std::chrono::seconds(120);
  EXPECT_EQ(store.Login("alice", kPassword, oath("2026-12-04 14:00:30 UTC"), "c", later).reason,
            "bad_totp");  // 3 steps before `later`

  // reset-totp prints a new secret once; the old one stops working.
  const ProcessResult reset = RunCli({"users", "reset-totp", "alice", "--users-file", users_});
  ASSERT_EQ(reset.exit_code, 0) << reset.err;
  EXPECT_EQ(reset.out.find(b32), std::string::npos);
  EXPECT_NE(reset.out.find("otpauth://totp/cvdeploy:alice?secret="), std::string::npos);
  const auto t2 = t0 + std::chrono::seconds(600);
  EXPECT_EQ(store.Login("alice", kPassword, oath("2026-12-04 14:10:00 UTC"), "c", t2).reason,
            "bad_totp");
}

TEST_F(CliKeysUsersTest, UsersPasswordRulesAndErrors) {
  // No flag takes a password: --password is not an option at all.
  ExpectCliError(
      {"users", "add", "bob", "--role", "admin", "--password", kPassword, "--users-file", users_},
      2, "--password");
  EXPECT_FALSE(fs::exists(users_));
  ProcessResult shorter = AddUser("bob", "elevenchars");
  EXPECT_EQ(shorter.exit_code, 2) << shorter.err;
  EXPECT_NE(shorter.err.find("shorter than 12"), std::string::npos) << shorter.err;
  EXPECT_EQ(shorter.err.find("elevenchars"), std::string::npos);
  EXPECT_EQ(AddUser("longusername", "LongUserName").exit_code, 2);  // the name as password
  // Without --password-stdin and without a terminal (setsid: no controlling tty).
  const ProcessResult no_tty = RunProcess(
      "/usr/bin/setsid",
      {CVDEPLOY_BINARY, "users", "add", "bob", "--role", "admin", "--users-file", users_});
  EXPECT_EQ(no_tty.exit_code, 2) << no_tty.err;
  EXPECT_NE(no_tty.err.find("--password-stdin"), std::string::npos) << no_tty.err;

  ASSERT_EQ(AddUser("bob", kPassword).exit_code, 0);
  EXPECT_EQ(AddUser("bob", kPassword).exit_code, 2);  // duplicate
  const std::string new_password = "an entirely new passphrase";
  const ProcessResult passwd = RunWithStdin(
      new_password, {"users", "passwd", "bob", "--password-stdin", "--users-file", users_});
  ASSERT_EQ(passwd.exit_code, 0) << passwd.err;
  EXPECT_EQ(Read(users_).find(new_password), std::string::npos);
  ExpectCliError({"users", "remove", "nobody", "--users-file", users_}, 3, "nobody");
  ASSERT_EQ(RunCli({"users", "remove", "bob", "--users-file", users_}).exit_code, 0);
  EXPECT_EQ(RunCli({"users", "list", "--users-file", users_}).out.find("bob"), std::string::npos);
  ::chmod(users_.c_str(), 0644);
  ExpectCliError({"users", "list", "--users-file", users_}, 2, "too open");
}

// The terminal prompt, through a pseudo-terminal (Python's pty module): asked twice, not
// echoed. Each answer is typed only after its prompt has appeared, because the prompt flushes
// typed-ahead input (TCSAFLUSH); waiting for the text instead of sleeping keeps the test
// independent of how fast the machine is.
constexpr const char* kPtyDriver = R"(
import os, pty, sys, time
command, first, second = sys.argv[1], sys.argv[2], sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    os.execv("/bin/sh", ["/bin/sh", "-c", command])
seen = b""
def read_until(text, timeout=60):
    global seen
    end = time.time() + timeout
    while text not in seen and time.time() < end:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        seen += chunk
read_until(b"Password for")
time.sleep(0.2)
os.write(fd, first.encode() + b"\n")
read_until(b"Repeat the password")
time.sleep(0.2)
os.write(fd, second.encode() + b"\n")
read_until(b"\x00", timeout=60)
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode("utf-8", "replace"))
sys.exit(os.waitstatus_to_exitcode(status))
)";

TEST_F(CliKeysUsersTest, UsersAddPromptsWithoutEcho) {
  auto run = [&](const std::string& name, const std::string& second) {
    const std::string command = std::string(CVDEPLOY_BINARY) + " users add " + name +
                                " --role admin --users-file " + users_;
    return RunProcess("/usr/bin/env", {"python3", "-c", kPtyDriver, command, kPassword, second});
  };
  const ProcessResult ok = run("carol", kPassword);
  ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("Password for carol:"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("Repeat the password:"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("otpauth://totp/cvdeploy:carol?secret="), std::string::npos) << ok.out;
  EXPECT_EQ(ok.out.find(kPassword), std::string::npos) << "the password was echoed: " << ok.out;
  const ProcessResult differ = run("dave", "a different passphrase");
  EXPECT_NE(differ.exit_code, 0) << differ.out;
  EXPECT_NE(differ.out.find("differ"), std::string::npos) << differ.out;
  const ProcessResult list = RunCli({"users", "list", "--users-file", users_});
  EXPECT_NE(list.out.find("carol"), std::string::npos);
  EXPECT_EQ(list.out.find("dave"), std::string::npos);
}

}  // namespace
}  // namespace cvdeploy::testing
