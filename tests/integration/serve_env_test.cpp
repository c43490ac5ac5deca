// SPDX-License-Identifier: Apache-2.0
// Container-facing behaviour of `cvdeploy serve` (issue 17): every flag read from
// CVDEPLOY_<FLAG> with the command line winning, the JSON event log (--log-format json /
// CVDEPLOY_LOG_FORMAT: every stderr line one JSON object, properly escaped), and
// `cvdeploy health`, the image's HEALTHCHECK. Real server processes on 127.0.0.1.

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cvdeploy/server_log.h"
#include "support/assets.h"
#include "support/process.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string Model() { return Asset("models/yolo11n-dq.onnx"); }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Every line one JSON object with exactly time, level and msg (strings); returns the records.
std::vector<json> ExpectJsonLines(const std::string& err) {
  std::vector<json> records;
  const auto lines = Lines(err);
  EXPECT_FALSE(lines.empty()) << "no stderr at all";
  for (const auto& line : lines) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_object()) {
      ADD_FAILURE() << "stderr line is not a JSON object: " << line;
      continue;
    }
    EXPECT_EQ(j.size(), 3u) << line;
    EXPECT_TRUE(j.contains("time") && j["time"].is_string()) << line;
    EXPECT_TRUE(j.contains("msg") && j["msg"].is_string()) << line;
    const std::set<std::string> levels = {"info", "warning", "error"};
    EXPECT_TRUE(j.contains("level") && j["level"].is_string() &&
                levels.count(j["level"].get<std::string>()))
        << line;
    records.push_back(j);
  }
  return records;
}

bool HasMsg(const std::vector<json>& records, const std::string& part) {
  for (const auto& r : records) {
    if (r.value("msg", "").find(part) != std::string::npos) return true;
  }
  return false;
}

// Sets an environment variable for the CLI children this test starts, and removes it after.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() { unsetenv(name_.c_str()); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
};

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

TEST(ServeEnv, EnvironmentSetsAFlag) {
  // 1 KiB body limit from the environment: a 4 KiB body is refused with 413.
  ServerLaunch launch;
  launch.env = {{"CVDEPLOY_MAX_BODY_BYTES", "1024"}};
  ServerProcess server({"--model", Model()}, launch);
  ASSERT_TRUE(server.WaitReady());
  const HttpReply r = Http(server.port(), "POST", "/v1/models/yolo11n-dq/predict",
                           std::string(4096, 'x'), {{"Content-Type", "image/jpeg"}});
  EXPECT_EQ(r.status, 413) << r.body;
}

TEST(ServeEnv, CommandLineWinsOverEnvironment) {
  // The same variable, overridden on the command line: the body is read (and rejected as an
  // image, not for its size). CVDEPLOY_PORT out of range is not even looked at: --port 0.
  ServerLaunch launch;
  launch.env = {{"CVDEPLOY_MAX_BODY_BYTES", "1024"}, {"CVDEPLOY_PORT", "70000"}};
  ServerProcess server({"--model", Model(), "--max-body-bytes", "1048576"}, launch);
  ASSERT_TRUE(server.WaitReady());
  const HttpReply r = Http(server.port(), "POST", "/v1/models/yolo11n-dq/predict",
                           std::string(4096, 'x'), {{"Content-Type", "image/jpeg"}});
  EXPECT_NE(r.status, 413) << r.body;
  EXPECT_GE(r.status, 400) << r.body;
}

TEST(ServeEnv, InvalidEnvironmentValueIsAUsageError) {
  ScopedEnv env("CVDEPLOY_PORT", "70000");
  const ProcessResult r = RunCli({"serve", "--model", Model()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--port"), std::string::npos) << r.err;
}

TEST(ServeEnv, PortAndHostFromEnvironment) {
  const int port = FreePort();
  ASSERT_GT(port, 0);
  const std::string dir = MakeTempDir("serve-env");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int err = open((dir + "/stderr.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, STDIN_FILENO);
    dup2(devnull, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    setenv("CVDEPLOY_HOST", "127.0.0.1", 1);
    setenv("CVDEPLOY_PORT", std::to_string(port).c_str(), 1);
    setenv("CVDEPLOY_MODEL", Model().c_str(), 1);
    setenv("CVDEPLOY_LOG_FORMAT", "json", 1);
    const std::string bin = CliBinary();
    execl(bin.c_str(), bin.c_str(), "serve", static_cast<char*>(nullptr));
    _exit(127);
  }
  const bool ready =
      WaitFor([&] { return Http(port, "GET", "/v2/health/ready", "", {}, 2).status == 200; }, 60);
  // The health subcommand against the same server: healthy, then not once it is gone.
  const ProcessResult healthy =
      RunCli({"health", "--url", "http://127.0.0.1:" + std::to_string(port) + "/v2/health/ready"});
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string err = ReadFileText(dir + "/stderr.log");
  ASSERT_TRUE(ready) << err;
  EXPECT_EQ(healthy.exit_code, 0) << healthy.out << healthy.err;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << err;
  const auto records = ExpectJsonLines(err);
  EXPECT_TRUE(HasMsg(records, "listening on http://127.0.0.1:" + std::to_string(port))) << err;
  const ProcessResult gone =
      RunCli({"health", "--url", "http://127.0.0.1:" + std::to_string(port) + "/v2/health/ready",
              "--timeout", "2"});
  EXPECT_EQ(gone.exit_code, 1) << gone.out << gone.err;
}

TEST(ServeLogFormat, JsonLifecycleEveryLineParses) {
  ServerProcess server({"--model", Model(), "--log-format", "json"});
  ASSERT_TRUE(server.WaitReady());
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(60), 0) << server.Stderr();
  const auto records = ExpectJsonLines(server.Stderr());
  for (const char* part : {"listening on", "loading model", "ready",
                           "shutting down: draining in-flight requests", "stopped"}) {
    EXPECT_TRUE(HasMsg(records, part)) << part << " missing in " << server.Stderr();
  }
  // The access log on stdout is untouched: JSON records of requests, not events.
  EXPECT_EQ(server.Stdout().find("\"level\""), std::string::npos) << server.Stdout();
}

TEST(ServeLogFormat, TextStaysTheDefault) {
  ServerProcess server({"--model", Model()});
  ASSERT_TRUE(server.WaitReady());
  server.Signal(SIGTERM);
  EXPECT_EQ(server.Wait(60), 0);
  EXPECT_NE(server.Stderr().find("cvdeploy serve: info: listening on"), std::string::npos)
      << server.Stderr();
  EXPECT_NE(server.Stderr().find("cvdeploy serve: info: stopped"), std::string::npos);
}

TEST(ServeLogFormat, JsonEscapesAFailingModelPath) {
  // A model that fails to load, named with a quote, a backslash and a tab: the load events
  // carry the path, escaped; an error is logged and the process exits 3 (--exit-on-error).
  const fs::path dir = MakeTempDir("serve-json-escape");
  const fs::path bad = dir / "bad\"q\\x\tname.onnx";
  std::ofstream(bad) << "not an onnx model";
  ScopedEnv env("CVDEPLOY_LOG_FORMAT", "json");
  const ProcessResult r = RunCli({"serve", "--port", "0", "--model", bad.string() + ":bad"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  const auto records = ExpectJsonLines(r.err);
  bool path_found = false, error_found = false;
  for (const auto& rec : records) {
    if (rec["msg"].get<std::string>().find(bad.string()) != std::string::npos) path_found = true;
    if (rec["level"] == "error") error_found = true;
  }
  EXPECT_TRUE(path_found) << r.err;
  EXPECT_TRUE(error_found) << r.err;
}

TEST(ServeLogFormat, JsonStartupErrorIsJsonToo) {
  // An option error found before the server starts (poll without a repository) is one JSON
  // error line, with the usual exit code 2.
  const ProcessResult r = RunCli({"serve", "--model", Model(), "--log-format", "json",
                                  "--model-control", "poll", "--poll-interval", "1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  const auto records = ExpectJsonLines(r.err);
  ASSERT_EQ(records.size(), 1u) << r.err;
  EXPECT_EQ(records[0]["level"], "error");
  EXPECT_NE(records[0]["msg"].get<std::string>().find("--model-repository"), std::string::npos);
}

TEST(ServeLogFormat, UnknownFormatIsAUsageError) {
  ScopedEnv env("CVDEPLOY_LOG_FORMAT", "xml");
  const ProcessResult r = RunCli({"serve", "--model", Model()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--log-format"), std::string::npos) << r.err;
}

TEST(ServerLogLine, JsonIsValidForAnyBytes) {
  using server::FormatLogLine;
  using server::LogFormat;
  using server::LogLevel;
  const std::string nasty = std::string("a\"b\\c\nd\te\x01 \xff\xfe end");
  const std::string line =
      FormatLogLine(LogFormat::kJson, "2026-12-03T00:00:00.000Z", LogLevel::kWarning, nasty);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  const json j = json::parse(line, nullptr, false);
  ASSERT_TRUE(j.is_object()) << line;
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["time"], "2026-12-03T00:00:00.000Z");
  // Control characters round-trip; the invalid bytes become U+FFFD (EF BF BD).
  EXPECT_EQ(j["msg"].get<std::string>(), "a\"b\\c\nd\te\x01 \xef\xbf\xbd\xef\xbf\xbd end");
  const std::string text = FormatLogLine(LogFormat::kText, "", LogLevel::kError, "two\nlines");
  EXPECT_EQ(text, "cvdeploy serve: error: two lines");
  EXPECT_THROW(server::ParseLogFormat("JSON"), std::exception);
}

TEST(Health, UsageAndRefusedConnection) {
  const ProcessResult bad = RunCli({"health", "--url", "ftp://127.0.0.1/"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  const int port = FreePort();
  const ProcessResult refused = RunCli(
      {"health", "--url", "http://127.0.0.1:" + std::to_string(port) + "/", "--timeout", "2"});
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_NE(refused.out.find("no answer"), std::string::npos) << refused.out;
}

TEST(Health, SilentServerTimesOut) {
  // A listener that accepts (through the backlog) and never answers: no hang, exit 1.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const ProcessResult r =
      RunCli({"health", "--url",
              "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/v2/health/ready",
              "--timeout", "0.5"});
  close(fd);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("timed out"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace cvdeploy::testing
