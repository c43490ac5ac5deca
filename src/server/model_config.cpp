// SPDX-License-Identifier: Apache-2.0
#include "server/model_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/json.h"
#include "cvdeploy/system.h"

namespace cvdeploy::server {
namespace fs = std::filesystem;

std::vector<int64_t> VersionPolicy::Select(const std::vector<int64_t>& available) const {
  std::vector<int64_t> sorted = available;
  std::sort(sorted.begin(), sorted.end());
  switch (kind) {
    case Kind::kAll:
      return sorted;
    case Kind::kSpecific: {
      std::vector<int64_t> out;
      for (int64_t v : sorted) {
        if (std::find(versions.begin(), versions.end(), v) != versions.end()) out.push_back(v);
      }
      return out;
    }
    case Kind::kLatest:
    default: {
      const size_t n = std::min(sorted.size(), static_cast<size_t>(std::max(latest, 0)));
      return std::vector<int64_t>(sorted.end() - static_cast<long>(n), sorted.end());
    }
  }
}

bool ModelConfig::LoadsAlike(const ModelConfig& other) const {
  ModelConfig a = *this, b = other;
  a.version_policy = b.version_policy = VersionPolicy{};
  return a == b;
}

namespace {

// Why `path` (which stat() says is not a regular file) cannot be a model or config file,
// e.g. "not a regular file (a symbolic link to a directory)". lstat tells a link from its
// target; a FIFO is never opened.
std::string NotRegularReason(const std::string& path, mode_t mode) {
  struct stat link {};
  const bool via_link = ::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode);
  return "not a regular file (" + std::string(via_link ? "a symbolic link to " : "") +
         FileKindOf(mode) + ")";
}

// The reason stat() failed on an existing name: a dangling symlink, a loop, a permission.
std::string StatFailure(const std::string& path, int error) {
  struct stat link {};
  if (error == ENOENT && ::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
    return "a symbolic link to a missing file";
  }
  return std::string("cannot be examined: ") + std::strerror(error);
}

// Reads a small regular file without ever blocking: opened non-blocking (a FIFO swapped in
// after a check cannot stall the caller) and checked with fstat on the open descriptor.
// Returns false with *error set ("not a regular file (a FIFO)", "larger than N bytes", ...);
// *absent is set when the name does not exist at all.
bool ReadSmallRegularFile(const std::string& path, uint64_t max_bytes, std::string* text,
                          std::string* error, bool* absent) {
  *absent = false;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    struct stat link {};
    if ((e == ENOENT || e == ENOTDIR) && ::lstat(path.c_str(), &link) != 0) {
      *absent = true;
    } else {
      *error = StatFailure(path, e);
    }
    return false;
  }
  // Devices and FIFOs are refused before open(): opening some devices has side effects.
  if (!S_ISREG(st.st_mode)) {
    *error = NotRegularReason(path, st.st_mode);
    return false;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    *error = std::string("cannot be read: ") + std::strerror(errno);
    return false;
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // Checked again on the descriptor: the name may have been swapped since stat().
  if (::fstat(fd, &st) != 0) {
    *error = std::string("cannot be examined: ") + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = NotRegularReason(path, st.st_mode);
    return false;
  }
  const std::string too_large = "larger than " + std::to_string(max_bytes) + " bytes";
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    *error = too_large + " (" + std::to_string(st.st_size) + ")";
    return false;
  }
  text->clear();
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = std::string("cannot be read: ") + std::strerror(errno);
      return false;
    }
    if (n == 0) return true;
    text->append(buffer, static_cast<size_t>(n));
    if (text->size() > max_bytes) {  // it grew after fstat
      *error = too_large;
      return false;
    }
  }
}

int IntIn(const nlohmann::json& v, const std::string& where, const std::string& key, int lo,
          int hi) {
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
    throw BadInput(where + ": \"" + key + "\" must be an integer in [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "]");
  }
  return v.get<int>();
}

float UnitIn(const nlohmann::json& v, const std::string& where, const std::string& key) {
  if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1) {
    throw BadInput(where + ": \"" + key + "\" must be a number in [0, 1]");
  }
  return v.get<float>();
}

VersionPolicy ParsePolicy(const nlohmann::json& v, const std::string& where) {
  const std::string what = where +
                           ": \"version_policy\" must be {\"latest\": N}, "
                           "{\"all\": true} or {\"specific\": [versions]}";
  if (!v.is_object() || v.size() != 1) throw BadInput(what);
  VersionPolicy p;
  if (v.contains("latest")) {
    p.kind = VersionPolicy::Kind::kLatest;
    p.latest = IntIn(v["latest"], where, "version_policy.latest", 1, 1000);
  } else if (v.contains("all")) {
    if (v["all"] != true) throw BadInput(what);
    p.kind = VersionPolicy::Kind::kAll;
  } else if (v.contains("specific")) {
    p.kind = VersionPolicy::Kind::kSpecific;
    if (!v["specific"].is_array() || v["specific"].empty()) throw BadInput(what);
    for (const auto& e : v["specific"]) {
      if (!e.is_number_integer() || e.get<int64_t>() < 1) throw BadInput(what);
      p.versions.push_back(e.get<int64_t>());
    }
  } else {
    throw BadInput(what);
  }
  return p;
}

DriftConfig ParseDrift(const nlohmann::json& v, const std::string& where) {
  const std::string what = where + ": \"drift\"";
  if (!v.is_object()) throw BadInput(what + " must be an object");
  DriftConfig d;
  for (const auto& [key, value] : v.items()) {
    if (key == "baseline") {
      if (!value.is_string() || value.get<std::string>().empty()) {
        throw BadInput(what + ": \"baseline\" must be a non-empty path");
      }
      d.baseline = value.get<std::string>();
    } else if (key == "window") {
      d.window = IntIn(value, where, "drift.window", 1, 1000000);
    } else if (key == "warn" || key == "alert") {
      if (!value.is_number() || !(value.get<double>() > 0 && value.get<double>() <= 100)) {
        throw BadInput(what + ": \"" + key + "\" must be a number in (0, 100]");
      }
      (key == "warn" ? d.warn : d.alert) = value.get<double>();
    } else {
      throw BadInput(what + ": unknown key \"" + key + "\"");
    }
  }
  if (d.warn > d.alert) throw BadInput(what + ": \"warn\" must not exceed \"alert\"");
  return d;
}

}  // namespace

ModelConfig ParseModelConfig(const nlohmann::json& doc, const std::string& where) {
  if (!doc.is_object()) throw BadInput(where + ": must be a JSON object");
  ModelConfig c;
  for (const auto& [key, v] : doc.items()) {
    if (key == "conf") {
      c.conf = UnitIn(v, where, key);
    } else if (key == "iou") {
      c.iou = UnitIn(v, where, key);
    } else if (key == "max_det") {
      c.max_det = IntIn(v, where, key, 1, 100000);
    } else if (key == "imgsz") {
      c.imgsz = IntIn(v, where, key, 32, 8192);
    } else if (key == "rect") {
      if (!v.is_boolean()) throw BadInput(where + ": \"rect\" must be true or false");
      c.rect = v.get<bool>();
    } else if (key == "graph_optimization") {
      const auto level = v.is_string() ? ParseGraphOptimization(v.get<std::string>())
                                       : std::optional<GraphOptimization>{};
      if (!level) {
        throw BadInput(where +
                       ": \"graph_optimization\" must be \"all\", \"extended\", \"basic\" or "
                       "\"disable\"");
      }
      c.graph_optimization = *level;
    } else if (key == "max_batch_size") {
      c.max_batch_size = std::max(1, IntIn(v, where, key, 0, 256));
    } else if (key == "max_queue_delay_us") {
      c.max_queue_delay_us = IntIn(v, where, key, 0, 10000000);
    } else if (key == "instances") {
      c.instances = IntIn(v, where, key, 1, 64);
    } else if (key == "threads") {
      c.threads = IntIn(v, where, key, 1, 256);
    } else if (key == "warmup") {
      c.warmup = IntIn(v, where, key, 0, 10000);
    } else if (key == "max_queue_size") {
      c.max_queue_size = IntIn(v, where, key, 1, 1000000);
    } else if (key == "device") {
      if (!v.is_string()) throw BadInput(where + ": \"device\" must be a string");
      c.device = v.get<std::string>();
    } else if (key == "version_policy") {
      c.version_policy = ParsePolicy(v, where);
    } else if (key == "drift") {
      c.drift = ParseDrift(v, where);
    } else {
      throw BadInput(where + ": unknown key \"" + key + "\"");
    }
  }
  return c;
}

ModelConfig ReadModelConfig(const std::string& model_dir) {
  const std::string path = (fs::path(model_dir) / "config.json").string();
  std::string text, error;
  bool absent = false;
  if (!ReadSmallRegularFile(path, kMaxModelConfigBytes, &text, &error, &absent)) {
    if (absent) return ModelConfig{};
    throw BadInput(path + ": " + error);
  }
  // Depth-bounded before any tree exists: error messages and comparisons walk it recursively.
  ModelConfig config = ParseModelConfig(ParseJsonBounded(text, path), path);
  if (!config.drift.baseline.empty() && fs::path(config.drift.baseline).is_relative()) {
    config.drift.baseline = (fs::path(model_dir) / config.drift.baseline).string();
  }
  return config;
}

std::optional<VersionFile> ProbeModelFile(const std::string& path) {
  struct stat link {};
  if (::lstat(path.c_str(), &link) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
    return std::nullopt;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const std::string why = StatFailure(path, errno);
    return VersionFile{path, "!" + why, why};
  }
  if (!S_ISREG(st.st_mode)) {
    const std::string why = NotRegularReason(path, st.st_mode);
    return VersionFile{path, "!" + why, why};
  }
  const int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                           static_cast<int64_t>(st.st_mtim.tv_nsec);
  return VersionFile{path, std::to_string(st.st_size) + "@" + std::to_string(mtime_ns), ""};
}

std::optional<VersionFile> ProbeVersionDir(const fs::path& vdir) {
  auto onnx = ProbeModelFile((vdir / "model.onnx").string());
  auto package = ProbeModelFile((vdir / "model.cvdm").string());
  if (onnx && package) {
    const std::string why = "both model.onnx and model.cvdm are present; keep one";
    return VersionFile{package->path, "!" + why, why};
  }
  if (package) return package;
  // A plain model's golden set belongs to the version: a changed golden.json reloads it.
  if (onnx && onnx->error.empty()) {
    if (auto golden = ProbeModelFile((vdir / "golden" / "golden.json").string())) {
      onnx->signature += "+golden:" + golden->signature;
    }
  }
  return onnx;
}

std::map<std::string, std::map<int64_t, VersionFile>> ScanRepository(const std::string& dir) {
  std::map<std::string, std::map<int64_t, VersionFile>> out;
  std::error_code ec;
  for (const auto& model : fs::directory_iterator(dir, ec)) {
    if (!model.is_directory(ec)) continue;
    const std::string name = model.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    auto& versions = out[name];
    for (const auto& vdir : fs::directory_iterator(model.path(), ec)) {
      const std::string v = vdir.path().filename().string();
      if (!vdir.is_directory(ec) || v.empty() || v.size() > 18 ||
          v.find_first_not_of("0123456789") != std::string::npos || v[0] == '0') {
        continue;
      }
      // A model file that exists but is not a regular file is a broken version, listed with
      // its error, so that the version it replaced keeps serving instead of vanishing.
      auto file = ProbeVersionDir(vdir.path());
      if (file) versions[std::stoll(v)] = std::move(*file);
    }
  }
  return out;
}

}  // namespace cvdeploy::server
