// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/store_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "cvdeploy/error.h"

namespace cvdeploy::security {

FileStamp StampOf(const std::string& path) {
  struct stat st {};
  FileStamp s;
  if (::stat(path.c_str(), &st) != 0) return s;
  s.exists = true;
  s.device = static_cast<uint64_t>(st.st_dev);
  s.inode = static_cast<uint64_t>(st.st_ino);
  s.size = static_cast<uint64_t>(st.st_size);
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  s.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return s;
}

StoreLock::StoreLock(const std::string& path, bool wait) {
  const std::string lock_path = path + ".lock";
  fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw BadInput(lock_path + ": cannot create lock file: " + std::strerror(errno));
  while (::flock(fd_, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    if (err == EWOULDBLOCK && !wait) return;
    ::close(fd_);
    throw BadInput(lock_path + ": cannot lock: " + std::strerror(err));
  }
  locked_ = true;
}

StoreLock::~StoreLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

bool IsValidStoreName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

void CheckStoreName(std::string_view what, std::string_view name) {
  if (!IsValidStoreName(name)) {
    throw InvalidArgument(std::string(what) +
                          " name: must be 1 to 64 characters from A-Z a-z 0-9 . _ -");
  }
}

std::string FormatUtc(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<std::chrono::system_clock::time_point> ParseUtc(std::string_view text) {
  if (text.size() != 20) return std::nullopt;
  const std::string s(text);
  std::tm tm{};
  char z = 0;
  int n = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z, &n) != 7 ||
      n != 20 || z != 'Z') {
    return std::nullopt;
  }
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t secs = ::timegm(&tm);
  return std::chrono::system_clock::from_time_t(secs);
}

nlohmann::json TimeJson(const std::optional<std::chrono::system_clock::time_point>& t) {
  return t ? nlohmann::json(FormatUtc(*t)) : nlohmann::json(nullptr);
}

std::optional<std::chrono::system_clock::time_point> TimeField(const nlohmann::json& j,
                                                               const char* key,
                                                               const std::string& at) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  if (!j[key].is_string()) throw BadInput(at + ": '" + key + "' is not a time string");
  auto t = ParseUtc(j[key].get<std::string>());
  if (!t) throw BadInput(at + ": '" + key + "' is not a UTC time (YYYY-MM-DDTHH:MM:SSZ)");
  return t;
}

std::vector<std::string> StringList(const nlohmann::json& j, const char* key,
                                    const std::string& at) {
  std::vector<std::string> out;
  if (!j.contains(key)) return out;
  if (!j[key].is_array()) throw BadInput(at + ": '" + key + "' is not a list");
  for (const auto& v : j[key]) {
    if (!v.is_string()) throw BadInput(at + ": '" + key + "' holds a non-string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::string StringField(const nlohmann::json& j, const char* key, const std::string& at) {
  if (!j.contains(key) || !j[key].is_string()) {
    throw BadInput(at + ": '" + key + "' is missing or not a string");
  }
  return j[key].get<std::string>();
}

}  // namespace cvdeploy::security
