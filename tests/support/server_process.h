// SPDX-License-Identifier: Apache-2.0
// Integration-test support for the server: a `cvdeploy serve` child process on an ephemeral
// loopback port, and a small blocking HTTP client (Boost.Beast) plus raw sockets for
// misbehaving-client tests.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <sys/types.h>

namespace cvdeploy::testing {

// How the server child is started beyond its arguments.
struct ServerLaunch {
  double start_timeout_s = 60;
  std::string cwd;                         // "" = the test's own
  std::map<std::string, std::string> env;  // set (overriding) in the child
  int uid = -1, gid = -1;                  // >= 0: setgid/setuid before exec (needs root)
};

class ServerProcess {
 public:
  // Starts `cvdeploy serve --host 127.0.0.1 --port 0 ARGS` with stdout (the access log) and
  // stderr in files of a temp dir; waits until it is listening. Throws std::runtime_error
  // with the server's stderr if it exits or does not listen within `start_timeout_s`.
  explicit ServerProcess(const std::vector<std::string>& args, double start_timeout_s = 60);
  ServerProcess(const std::vector<std::string>& args, const ServerLaunch& launch);
  ~ServerProcess();  // SIGKILL if still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Polls GET /v2/health/ready until 200; false on timeout.
  bool WaitReady(double timeout_s = 60) const;
  void Signal(int sig) const;
  // Exit code (128 + signal if killed), or -1 if still running after `timeout_s`.
  int Wait(double timeout_s);
  std::string Stderr() const;
  std::string Stdout() const;

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_code_ = -1;
  std::string dir_;
};

struct HttpReply {
  int status = 0;                              // 0: no answer (connection failed or closed)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string error;  // why status is 0
};

// One request on a fresh connection. `headers` as name -> value.
HttpReply Http(int port, const std::string& method, const std::string& target,
               const std::string& body = "", const std::map<std::string, std::string>& headers = {},
               double timeout_s = 60);

// Raw TCP for protocol-level tests: connect, send bytes, read until close or timeout.
int ConnectRaw(int port);  // fd, or -1
bool SendRaw(int fd, const std::string& bytes);
std::string ReadRaw(int fd, double timeout_s);  // everything until EOF or timeout
// Whether the peer closed the connection within `timeout_s` (reads and discards data).
bool WaitClosed(int fd, double timeout_s);

// The bytes of a file.
std::string ReadFileText(const std::string& path);

// Polls `condition` every 20 ms until it holds (true) or `timeout_s` passes (false).
bool WaitFor(const std::function<bool()>& condition, double timeout_s);

}  // namespace cvdeploy::testing
