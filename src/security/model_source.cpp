// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/model_source.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/secure_memory.h"

extern char** environ;

namespace cvdeploy::security {

namespace {

constexpr size_t kMaxKeyOutput = 4096;

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// Runs `command` with /bin/sh -c in its own process group, its stdout into a pipe (stdin
// /dev/null, stderr inherited: a key command's own diagnostics go to the server's log; no other
// descriptor of ours is inherited; default signal mask and dispositions), and returns at most
// kMaxKeyOutput bytes of stdout once the shell has exited. Whatever the command does (closing
// stdout and lingering, leaving a child that holds the pipe, never exiting), this returns
// within `timeout`: at the deadline the whole process group is killed.
std::string RunKeyCommand(const std::string& command, std::chrono::seconds timeout) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw RuntimeError(std::string("--decrypt-key-cmd: pipe: ") + std::strerror(errno));
  }
  Fd read_end{pipe_fds[0]}, write_end{pipe_fds[1]};
  fcntl(read_end.fd, F_SETFL, fcntl(read_end.fd, F_GETFL) | O_NONBLOCK);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.fd, 1);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    throw RuntimeError(std::string("--decrypt-key-cmd: cannot start /bin/sh: ") +
                       std::strerror(rc));
  }
  close(write_end.fd);
  write_end.fd = -1;

  std::string out;
  out.reserve(kMaxKeyOutput);
  LockMemory(out.data(), out.capacity());
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false, too_long = false, exited = false, eof = false;
  int status = 0;
  char buf[512];
  for (;;) {
    if (!exited && waitpid(pid, &status, WNOHANG) == pid) exited = true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    bool got_data = false;
    if (!eof) {
      pollfd p{read_end.fd, POLLIN, 0};
      const int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 50)));
      if (n < 0 && errno != EINTR) {
        const int e = errno;
        kill(-pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        throw RuntimeError(std::string("--decrypt-key-cmd: poll: ") + std::strerror(e));
      }
      for (;;) {  // drain what is there (non-blocking)
        const ssize_t got = read(read_end.fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got == 0) eof = true;
        if (got <= 0) break;
        got_data = true;
        if (out.size() + static_cast<size_t>(got) > kMaxKeyOutput) {
          too_long = true;
          break;
        }
        out.append(buf, static_cast<size_t>(got));
      }
      if (too_long) break;
    } else if (!exited) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(left.count(), 20)));
    }
    // The shell is gone and its output is read (or a leftover child holds the pipe quietly).
    if (exited && (eof || !got_data)) break;
  }
  WipeMemory(buf, sizeof buf);
  if (timed_out || too_long) {
    kill(-pid, SIGKILL);
    if (!exited) {
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    WipeBytes(out);
    throw InvalidArgument(timed_out ? "--decrypt-key-cmd: no key within " +
                                          std::to_string(timeout.count()) + " s; killed"
                                    : "--decrypt-key-cmd: printed more than " +
                                          std::to_string(kMaxKeyOutput) + " bytes; not a key");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    WipeBytes(out);
    throw InvalidArgument("--decrypt-key-cmd: " +
                          (WIFEXITED(status)
                               ? "exited with status " + std::to_string(WEXITSTATUS(status))
                               : "killed by signal " + std::to_string(WTERMSIG(status))) +
                          " (its stderr is above)");
  }
  return out;
}

std::optional<GoldenDir> GoldenFromPackage(const nlohmann::json& manifest,
                                           std::vector<PackagePart>& parts,
                                           const std::string& name) {
  const auto it = manifest.find("golden");
  if (it == manifest.end() || it->is_null()) return std::nullopt;
  GoldenDir golden;
  golden.set = GoldenSetFromJson(it->dump(), name + ": manifest golden");
  for (auto& part : parts) {
    constexpr std::string_view kPrefix = "golden/";
    if (part.name.compare(0, kPrefix.size(), kPrefix) != 0) continue;
    GoldenInput in;
    in.name = part.name.substr(kPrefix.size());
    in.bytes = std::move(part.bytes);
    golden.inputs.push_back(std::move(in));
  }
  return golden;
}

OpenedModel OpenPackage(const std::string& path, const ModelProtection& protection,
                        const ModelOptions& options, const OpenModelOptions& open) {
  const std::vector<uint8_t> file = ReadFileBytes(
      path, false, MaxPackageBytes(options.max_model_bytes), "package", "max_model_bytes");
  const std::string_view bytes(reinterpret_cast<const char*>(file.data()), file.size());
  const ParsedPackage package = ParsePackage(bytes, path);
  std::string signer;
  bool signature_checked = false;
  if (!protection.trusted_keys_dir.empty()) {
    // With trusted signers named, a package must be signed by one of them: otherwise a signed
    // package stripped of its signature (flags, signer and signature removed, payload changed)
    // would pass as an unsigned one.
    if (!package.is_signed) {
      throw BadInput(path + ": signature: unsigned package refused (--trusted-keys " +
                     protection.trusted_keys_dir + " is given)");
    } else {
      VerifyPackageSignature(package, TrustedKeys::FromDir(protection.trusted_keys_dir), path);
      signer = package.signer_fingerprint;
      signature_checked = true;
    }
  } else if (protection.require_signed) {
    throw InvalidArgument("--require-signed needs --trusted-keys DIR");
  }
  std::optional<DataKey> key;
  if (package.encrypted) {
    if (!protection.HasKey()) {
      throw InvalidArgument(path + ": decryption: the package is encrypted (data key " +
                            package.data_key_id +
                            "); give --decrypt-key-file or --decrypt-key-cmd");
    }
    // Before any plaintext exists: no core dump, no ptrace by the same user.
    MakeProcessNonDumpable();
    key = ResolveDataKey(protection);
  }
  std::vector<PackagePart> parts = OpenPackagePayload(package, key ? &*key : nullptr, path);
  if (parts.empty() || parts.front().name != "model.onnx") {
    throw BadInput(path + ": manifest: the first entry must be model.onnx");
  }
  ModelOptions model_options = options;
  model_options.sensitive = package.encrypted;
  OpenedModel opened{Model::FromMemory(std::move(parts.front().bytes), path, model_options),
                     true,
                     package.encrypted,
                     signer,
                     signature_checked,
                     package.manifest,
                     std::nullopt};
  if (open.load_golden) opened.golden = GoldenFromPackage(package.manifest, parts, path);
  return opened;
}

}  // namespace

OpenedModel::~OpenedModel() {
  if (!encrypted || !golden) return;
  for (GoldenInput& in : golden->inputs) {
    WipeBytes(in.bytes);
    UnlockMemory(in.bytes.data(), in.bytes.capacity());
  }
}

void ModelProtection::Check() const {
  if (!decrypt_key_file.empty() && !decrypt_key_cmd.empty()) {
    throw InvalidArgument("give either --decrypt-key-file or --decrypt-key-cmd, not both");
  }
  if (require_signed && trusted_keys_dir.empty()) {
    throw InvalidArgument("--require-signed needs --trusted-keys DIR");
  }
}

std::optional<DataKey> ResolveDataKey(const ModelProtection& protection) {
  protection.Check();
  if (!protection.decrypt_key_file.empty()) return DataKey::FromFile(protection.decrypt_key_file);
  if (protection.decrypt_key_cmd.empty()) return std::nullopt;
  std::string text = RunKeyCommand(protection.decrypt_key_cmd, protection.key_cmd_timeout);
  try {
    DataKey key = DataKey::FromText(text, "--decrypt-key-cmd output");
    WipeBytes(text);
    return key;
  } catch (...) {
    WipeBytes(text);
    throw;
  }
}

OpenedModel OpenModel(const std::string& path, const ModelProtection& protection,
                      const ModelOptions& options, const OpenModelOptions& open) {
  protection.Check();
  if (IsPackagePath(path)) return OpenPackage(path, protection, options, open);
  if (protection.require_signed) {
    throw BadInput(path +
                   ": signature: a plain ONNX model is unsigned; --require-signed serves only "
                   "signed packages (cvdeploy pack --sign-key)");
  }
  OpenedModel opened{
      Model::FromFile(path, options), false, false, "", false, nullptr, std::nullopt};
  if (open.load_golden) {
    const auto dir = std::filesystem::path(path).parent_path() / "golden";
    std::error_code ec;
    if (std::filesystem::exists(dir / "golden.json", ec))
      opened.golden = ReadGoldenDir(dir.string());
  }
  return opened;
}

}  // namespace cvdeploy::security
