// SPDX-License-Identifier: Apache-2.0
// Output file names of one predict run: no silent overwrite when two sources share a file
// name, Ultralytics-style auto-incremented run directories, file stems for stream URLs.
// Header-only (unit-tested without the CLI binary).
#pragma once

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>
#include <string>

namespace cvdeploy::cli {

// Hands out file names in one directory, each once: the second "bus.jpg" becomes "bus_2.jpg",
// the third "bus_3.jpg". Not thread-safe (predict's sink runs on one thread).
class OutputNames {
 public:
  // The path dir/filename, or dir/STEM_N.EXT when that name was already handed out.
  std::string Reserve(const std::string& dir, const std::string& filename);

 private:
  std::set<std::string> used_;
};

// Ultralytics' increment_path: `base` when it does not exist, else base2, base3, ... (the first
// that does not exist). "runs/predict" -> "runs/predict2".
std::string IncrementPath(const std::string& base);

// A file stem for a source: its file stem for a path, "webcam0" for a webcam index, the URL
// without scheme, credentials and query, with every character outside [A-Za-z0-9._-]
// replaced by '_' ("rtsp://cam:8554/live" -> "cam_8554_live"), at most 80 characters.
std::string SourceStem(const std::string& source);

inline std::string OutputNames::Reserve(const std::string& dir, const std::string& filename) {
  const std::filesystem::path name(filename);
  std::string candidate = (std::filesystem::path(dir) / name).string();
  for (int n = 2; !used_.insert(candidate).second; ++n) {
    std::string numbered = name.stem().string();
    numbered.append("_").append(std::to_string(n)).append(name.extension().string());
    candidate = (std::filesystem::path(dir) / numbered).string();
  }
  return candidate;
}

inline std::string IncrementPath(const std::string& base) {
  std::error_code ec;
  if (!std::filesystem::exists(base, ec)) return base;
  for (int n = 2;; ++n) {
    std::string candidate = base;
    candidate.append(std::to_string(n));
    if (!std::filesystem::exists(candidate, ec)) return candidate;
  }
}

inline std::string SourceStem(const std::string& source) {
  if (!source.empty() && source.size() <= 3 &&
      std::all_of(source.begin(), source.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return "webcam" + source;
  }
  const size_t scheme = source.find("://");
  if (scheme == std::string::npos) return std::filesystem::path(source).stem().string();
  std::string rest = source.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("?#"));
  const size_t slash = rest.find('/');
  const size_t at = rest.find('@');
  if (at != std::string::npos && at < slash) rest = rest.substr(at + 1);  // never credentials
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string stem;
  for (char c : rest) {
    const bool keep =
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    stem += keep ? c : '_';
  }
  if (stem.size() > 80) stem.resize(80);
  return stem.empty() ? "stream" : stem;
}

}  // namespace cvdeploy::cli
