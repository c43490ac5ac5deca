// SPDX-License-Identifier: Apache-2.0
#include "server/model_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "cvdeploy/error.h"

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

namespace {

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
    } else {
      throw BadInput(where + ": unknown key \"" + key + "\"");
    }
  }
  return c;
}

ModelConfig ReadModelConfig(const std::string& model_dir) {
  const fs::path path = fs::path(model_dir) / "config.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) return ModelConfig{};
  std::ifstream in(path);
  if (!in) throw BadInput(path.string() + ": cannot be read");
  nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
  if (doc.is_discarded()) throw BadInput(path.string() + ": not valid JSON");
  return ParseModelConfig(doc, path.string());
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
      const fs::path file = vdir.path() / "model.onnx";
      std::error_code fec;
      const auto size = fs::file_size(file, fec);
      if (fec) continue;
      const auto mtime = fs::last_write_time(file, fec).time_since_epoch().count();
      versions[std::stoll(v)] =
          VersionFile{file.string(), std::to_string(size) + "@" + std::to_string(mtime)};
    }
  }
  return out;
}

}  // namespace cvdeploy::server
