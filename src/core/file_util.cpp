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

namespace cvdeploy::core {

std::string ErrnoText(int err) { return std::strerror(err); }

std::vector<uint8_t> ReadFileBytes(const std::string& path, bool allow_empty) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw BadInput(path + ": " + ErrnoText(errno));
  if (S_ISDIR(st.st_mode)) throw BadInput(path + ": is a directory, expected a file");
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw BadInput(path + ": cannot open: " + ErrnoText(errno));
  std::vector<uint8_t> bytes;
  if (S_ISREG(st.st_mode)) bytes.reserve(static_cast<size_t>(st.st_size));
  uint8_t chunk[1 << 16];
  size_t n = 0;
  while ((n = std::fread(chunk, 1, sizeof(chunk), file.get())) > 0) {
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  if (std::ferror(file.get())) throw BadInput(path + ": read error: " + ErrnoText(errno));
  if (bytes.empty() && !allow_empty) throw BadInput(path + ": file is empty (0 bytes)");
  return bytes;
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
  const std::filesystem::path target(path);
  const std::filesystem::path dir =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  std::string leaf = ".";
  leaf.append(target.filename().string()).append(".tmp-XXXXXX");
  std::string temp = (dir / leaf).string();
  const int fd = mkstemp(temp.data());
  if (fd < 0) {
    throw RuntimeError(path + ": cannot create a temporary file in " + dir.string() + ": " +
                       ErrnoText(errno));
  }
  auto fail = [&](const std::string& what) {
    const int err = errno;
    close(fd);
    unlink(temp.c_str());
    return RuntimeError(path + ": " + what + ": " + ErrnoText(err));
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw fail("cannot write");
    done += static_cast<size_t>(n);
  }
  if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) throw fail("cannot finish writing");
  if (close(fd) != 0) {
    const int err = errno;
    unlink(temp.c_str());
    throw RuntimeError(path + ": cannot write: " + ErrnoText(err));
  }
  if (rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(temp.c_str());
    throw RuntimeError(path + ": cannot rename the temporary file into place: " + ErrnoText(err));
  }
}

}  // namespace cvdeploy::core
