// SPDX-License-Identifier: Apache-2.0
// The drift baseline's JSON form (format 1) and its hardened parser (cvdeploy/drift.h).
#include <cmath>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "cvdeploy/drift.h"
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/json.h"
#include "cvdeploy/stats.h"

namespace cvdeploy::drift {
namespace {

// Largest count accepted: exactly representable in a double (JSON numbers) and far beyond any
// image set.
constexpr uint64_t kMaxCount = uint64_t{1} << 53;

uint64_t CountOf(const nlohmann::json& v, const std::string& what, const std::string& key) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
    throw BadInput(what + ": \"" + key + "\" must be a non-negative integer");
  }
  const uint64_t c = v.get<uint64_t>();
  if (c > kMaxCount) throw BadInput(what + ": \"" + key + "\" is too large");
  return c;
}

const nlohmann::json& Field(const nlohmann::json& doc, const std::string& what,
                            const std::string& key) {
  const auto it = doc.find(key);
  if (it == doc.end()) throw BadInput(what + ": missing \"" + key + "\"");
  return *it;
}

float Unit(const nlohmann::json& v, const std::string& what, const std::string& key) {
  if (!v.is_number() || !(v.get<double>() >= 0 && v.get<double>() <= 1)) {
    throw BadInput(what + ": \"" + key + "\" must be a number in [0, 1]");
  }
  return v.get<float>();
}

// Reads one feature's {"edges", "counts"} into `counts` (already sized) and returns its total.
uint64_t ReadFeature(const nlohmann::json& v, int f, const std::string& what,
                     std::vector<uint64_t>* counts) {
  const std::string name(Spec(f).name);
  const std::string where = what + ": feature \"" + name + "\"";
  if (!v.is_object()) throw BadInput(where + " must be an object");
  for (const auto& [key, unused] : v.items()) {
    if (key != "edges" && key != "counts") throw BadInput(where + ": unknown key \"" + key + "\"");
  }
  const nlohmann::json& edges = Field(v, where, "edges");
  const FeatureSpec& s = Spec(f);
  bool same = edges.is_array() && edges.size() == static_cast<size_t>(s.edge_count);
  for (int i = 0; same && i < s.edge_count; ++i) {
    same = edges[i].is_number() && edges[i].get<double>() == s.edges[i];
  }
  if (!same) {
    throw BadInput(where +
                   ": bin edges differ from this build's (a baseline of another "
                   "cvdeploy version? make it again with profile-data)");
  }
  const nlohmann::json& c = Field(v, where, "counts");
  if (!c.is_array() || c.size() != counts->size()) {
    throw BadInput(where + ": \"counts\" must be an array of " + std::to_string(counts->size()) +
                   " integers");
  }
  uint64_t total = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    (*counts)[i] = CountOf(c[i], where, "counts");
    total += (*counts)[i];
    if (total > kMaxCount) throw BadInput(where + ": counts are too large");
  }
  return total;
}

}  // namespace

std::string BaselineToJson(const Baseline& b) {
  const Histograms& h = b.histograms;
  nlohmann::ordered_json features = nlohmann::ordered_json::object();
  for (int f = 0; f < kFeatureCount; ++f) {
    const FeatureSpec& s = Spec(f);
    nlohmann::ordered_json edges = nlohmann::ordered_json::array();
    for (int i = 0; i < s.edge_count; ++i) edges.push_back(s.edges[i]);
    features[std::string(s.name)] = {{"edges", edges}, {"counts", h.counts[f]}};
  }
  const nlohmann::ordered_json doc = {{"format", kBaselineFormat},
                                      {"kind", "cvdeploy-drift-baseline"},
                                      {"model", b.model},
                                      {"conf", bench::RoundTo(b.conf, 4)},
                                      {"iou", bench::RoundTo(b.iou, 4)},
                                      {"classes", h.classes},
                                      {"images", h.images},
                                      {"boxes", h.boxes},
                                      {"features", features}};
  return doc.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Baseline BaselineFromJson(std::string_view text, const std::string& what) {
  const nlohmann::json doc = ParseJsonBounded(text, what);
  if (!doc.is_object()) throw BadInput(what + ": a drift baseline must be a JSON object");
  static const std::set<std::string> kKeys = {"format",  "kind",   "model", "conf",    "iou",
                                              "classes", "images", "boxes", "features"};
  for (const auto& [key, unused] : doc.items()) {
    if (!kKeys.count(key)) throw BadInput(what + ": unknown key \"" + key + "\"");
  }
  const nlohmann::json& format = Field(doc, what, "format");
  if (!format.is_number_integer() || format.get<int64_t>() != kBaselineFormat) {
    throw BadInput(what + ": unsupported baseline \"format\" (this build reads format " +
                   std::to_string(kBaselineFormat) + ")");
  }
  if (doc.contains("kind") && doc["kind"] != "cvdeploy-drift-baseline") {
    throw BadInput(what + ": \"kind\" must be \"cvdeploy-drift-baseline\"");
  }
  const nlohmann::json& classes = Field(doc, what, "classes");
  if (!classes.is_number_integer() || classes.get<int64_t>() < 1 ||
      classes.get<int64_t>() > kMaxClasses) {
    throw BadInput(what + ": \"classes\" must be an integer in [1, " + std::to_string(kMaxClasses) +
                   "]");
  }
  Baseline b;
  b.histograms = Histograms(classes.get<int>());
  if (doc.contains("model")) {
    if (!doc["model"].is_string()) throw BadInput(what + ": \"model\" must be a string");
    b.model = doc["model"].get<std::string>();
  }
  if (doc.contains("conf")) b.conf = Unit(doc["conf"], what, "conf");
  if (doc.contains("iou")) b.iou = Unit(doc["iou"], what, "iou");
  Histograms& h = b.histograms;
  h.images = CountOf(Field(doc, what, "images"), what, "images");
  h.boxes = CountOf(Field(doc, what, "boxes"), what, "boxes");
  if (h.images == 0) throw BadInput(what + ": a baseline of 0 images");
  const nlohmann::json& features = Field(doc, what, "features");
  if (!features.is_object() || features.size() != kFeatureCount) {
    throw BadInput(what + ": \"features\" must be an object of the " +
                   std::to_string(kFeatureCount) + " features");
  }
  for (int f = 0; f < kFeatureCount; ++f) {
    const std::string name(Spec(f).name);
    const uint64_t total =
        ReadFeature(Field(features, what + ": features", name), f, what, &h.counts[f]);
    const uint64_t expected = Spec(f).per_box ? h.boxes : h.images;
    if (total != expected) {
      throw BadInput(what + ": feature \"" + name + "\" counts " + std::to_string(total) +
                     " values, expected " + std::to_string(expected) + " (the \"" +
                     (Spec(f).per_box ? "boxes" : "images") + "\" total)");
    }
  }
  return b;
}

Baseline ReadBaseline(const std::string& path) {
  return BaselineFromJson(ReadFileText(path, kMaxBaselineBytes), path);
}

}  // namespace cvdeploy::drift
