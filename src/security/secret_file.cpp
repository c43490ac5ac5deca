// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cvdeploy/error.h"

namespace cvdeploy::security {

void CheckSecretFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) throw NotFound(path + ": no such file");
    throw BadInput(path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) throw BadInput(path + ": not a regular file");
  if (st.st_uid != ::geteuid()) {
    throw PermissionDenied(path + ": owned by another user (uid " + std::to_string(st.st_uid) +
                           "); a secret file must belong to the user running cvdeploy");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw PermissionDenied(path + ": permissions " + mode +
                           " are too open; a secret file must not be accessible by group or "
                           "others (chmod 600 " +
                           path + ")");
  }
}

std::string ReadSecretFile(const std::string& path) {
  CheckSecretFile(path);
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) throw BadInput(path + ": cannot read");
  return text.str();
}

void WriteSecretFile(const std::string& path, std::string_view content) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw BadInput(path + ": cannot write: " + std::strerror(errno));
  size_t done = 0;
  bool ok = true;
  while (ok && done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = ok ? errno : saved;
    ::unlink(tmp.c_str());
    throw BadInput(path + ": cannot write: " + std::strerror(err));
  }
}

}  // namespace cvdeploy::security
