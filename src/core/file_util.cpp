// SPDX-License-Identifier: Apache-2.0
#include "core/file_util.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
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

}  // namespace cvdeploy::core
