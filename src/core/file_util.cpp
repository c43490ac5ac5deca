// SPDX-License-Identifier: Apache-2.0
#include "core/file_util.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "cvdeploy/error.h"

namespace cvdeploy {

std::string FileKindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

}  // namespace cvdeploy

namespace cvdeploy::core {
namespace {

std::string NotRegularMessage(const std::string& path, mode_t mode) {
  return path + ": is " + FileKindOf(mode) + ", expected a regular file";
}

// Closes a descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// The file's bytes, read through one descriptor that was checked to be a regular file of at
// most `max_bytes` bytes; appended to `out` (a vector or a string).
template <typename Buffer>
void ReadRegular(const std::string& path, uint64_t max_bytes, const std::string& what,
                 const std::string& setting, Buffer* out) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  Fd file{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)};
  if (file.fd < 0) {
    const int err = errno;
    if (err == ENOENT) throw BadInput(path + ": " + ErrnoText(err));
    throw BadInput(path + ": cannot open: " + ErrnoText(err));
  }
  struct stat st {};
  if (fstat(file.fd, &st) != 0) throw BadInput(path + ": cannot stat: " + ErrnoText(errno));
  if (!S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode)) throw BadInput(path + ": is a directory, expected a file");
    throw BadInput(NotRegularMessage(path, st.st_mode));
  }
  // Throws "PATH: WHAT is SIZE bytes, larger than the limit MAX".
  const auto refuse = [&](const std::string& size_text) {
    const std::string message = path + ": " + what + " is " + size_text +
                                " bytes, larger than the limit " + std::to_string(max_bytes);
    if (!setting.empty()) throw LimitError(setting, message);
    throw BadInput(message);
  };
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) refuse(std::to_string(size));
  out->reserve(static_cast<size_t>(size));
  uint8_t chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(file.fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw BadInput(path + ": read error: " + ErrnoText(errno));
    if (n == 0) break;
    // A file that grows while read, or a /proc file that reports size 0, is still capped.
    if (out->size() + static_cast<uint64_t>(n) > max_bytes)
      refuse("more than " + std::to_string(max_bytes));
    out->insert(out->end(), chunk, chunk + n);
  }
}

}  // namespace

std::string ErrnoText(int err) { return std::strerror(err); }

}  // namespace cvdeploy::core

// The public functions (cvdeploy/file.h).
namespace cvdeploy {

using core::ErrnoText;
using core::FileKindOf;
using core::NotRegularMessage;
using core::ReadRegular;

std::vector<uint8_t> ReadFileBytes(const std::string& path, bool allow_empty, uint64_t max_bytes,
                                   const std::string& what, const std::string& setting) {
  std::vector<uint8_t> bytes;
  ReadRegular(path, max_bytes, what, setting, &bytes);
  if (bytes.empty() && !allow_empty) throw BadInput(path + ": file is empty (0 bytes)");
  return bytes;
}

std::vector<uint8_t> ReadModelBytes(const std::string& path, uint64_t max_bytes) {
  return ReadFileBytes(path, false, max_bytes, "model", "max_model_bytes");
}

std::string ReadFileText(const std::string& path, uint64_t max_bytes) {
  std::string text;
  ReadRegular(path, max_bytes, "file", "", &text);
  return text;
}

void RefuseNonRegularFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return;
  if (S_ISDIR(st.st_mode)) throw BadInput(path + ": is a directory, expected a file");
  throw BadInput(NotRegularMessage(path, st.st_mode));
}

std::string Sha256Hex(const uint8_t* data, size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data, size, digest, &length, EVP_sha256(), nullptr) != 1) {
    throw RuntimeError("sha256: OpenSSL EVP_Digest failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

void WriteFileAtomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::unique_ptr<OutputFile> opened;
  try {
    opened = std::make_unique<OutputFile>(path);
  } catch (const Error& e) {
    throw RuntimeError(e.what());  // this function's contract: every failure is kRuntime
  }
  OutputFile& out = *opened;
  out.Write(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  out.Commit();
}

// --- OutputFile ----------------------------------------------------------------------------

OutputFile::OutputFile(const std::string& path) : path_(path) {
  if (path == "-") {
    file_ = stdout;
    is_stdout_ = true;
    path_ = "stdout";
    return;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode)) {
      throw RuntimeError(path + ": is a directory, cannot write a file there");
    }
    // A device (/dev/null, /dev/full) or FIFO: written in place, never replaced by rename.
    file_ = std::fopen(path.c_str(), "w");
    if (!file_) Fail("cannot open for writing", errno);
    return;
  }
  const std::filesystem::path target(path);
  const std::filesystem::path dir =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  std::string leaf = ".";
  leaf.append(target.filename().string()).append(".tmp-XXXXXX");
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {  // a wrong path, not a failed write: exit 3
    throw BadInput(path + ": directory " + dir.string() + " does not exist");
  }
  temp_ = (dir / leaf).string();
  const int fd = mkstemp(temp_.data());
  if (fd < 0) {
    const int err = errno;
    temp_.clear();
    throw RuntimeError(path + ": cannot create a temporary file in " + dir.string() + ": " +
                       ErrnoText(err));
  }
  file_ = fdopen(fd, "w");
  if (!file_) {
    const int err = errno;
    close(fd);
    unlink(temp_.c_str());
    temp_.clear();
    Fail("cannot open for writing", err);
  }
}

OutputFile::~OutputFile() {
  if (file_ && !is_stdout_) std::fclose(file_);
  if (!temp_.empty()) unlink(temp_.c_str());
}

void OutputFile::Fail(const std::string& what, int err) {
  throw RuntimeError(path_ + ": " + what + ": " + ErrnoText(err));
}

void OutputFile::Write(std::string_view text) {
  if (!file_) throw RuntimeError(path_ + ": written after it was committed");
  if (!text.empty() && std::fwrite(text.data(), 1, text.size(), file_) != text.size()) {
    Fail("cannot write", errno);
  }
}

void OutputFile::Flush() {
  if (file_ && std::fflush(file_) != 0) Fail("cannot write", errno);
}

void OutputFile::Commit() {
  if (!file_) throw RuntimeError(path_ + ": committed twice");
  errno = 0;
  if (std::fflush(file_) != 0 || std::ferror(file_)) Fail("cannot write", errno ? errno : EIO);
  if (is_stdout_) {
    file_ = nullptr;
    return;
  }
  std::FILE* file = file_;
  file_ = nullptr;
  if (!temp_.empty() && (fchmod(fileno(file), 0644) != 0 || fsync(fileno(file)) != 0)) {
    const int err = errno;
    std::fclose(file);
    Fail("cannot finish writing", err);
  }
  if (std::fclose(file) != 0) Fail("cannot write", errno);
  if (temp_.empty()) return;
  if (rename(temp_.c_str(), path_.c_str()) != 0) {
    Fail("cannot rename the temporary file into place", errno);
  }
  temp_.clear();
}

void CheckStdout() {
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    // errno names the cause only when this flush failed; an earlier failed write is gone.
    const std::string reason = errno ? ErrnoText(errno) : "an earlier write failed";
    std::clearerr(stdout);
    throw RuntimeError("stdout: cannot write: " + reason);
  }
}

}  // namespace cvdeploy
