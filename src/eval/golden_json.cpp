// SPDX-License-Identifier: Apache-2.0
// The JSON form of a golden set (GoldenSetToJson / GoldenSetFromJson). The reader parses
// untrusted bytes (a golden.json beside a model, a package manifest): depth-bounded parse,
// then every field checked for type, range and size, with "SOURCE: PATH: reason" errors.
// Needs only the core (it is in the fuzzing harness's parser sources).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <string>

#include "cvdeploy/error.h"
#include "cvdeploy/json.h"
#include "eval/golden_internal.h"

namespace cvdeploy {
namespace {

using Json = nlohmann::ordered_json;
using golden::kMaxClasses;

// Reads one JSON value with a path for messages ("records[3].result.detections[0].box").
class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  [[noreturn]] void Fail(const std::string& path, const std::string& reason) const {
    throw BadInput(source_ + ": " + path + ": " + reason);
  }
  const Json& Field(const Json& obj, const std::string& path, const char* key) const {
    const auto it = obj.find(key);
    if (it == obj.end()) Fail(path, std::string("missing field '") + key + "'");
    return *it;
  }
  const Json& Object(const Json& j, const std::string& path) const {
    if (!j.is_object()) Fail(path, "expected an object");
    return j;
  }
  const Json& Array(const Json& j, const std::string& path, size_t max) const {
    if (!j.is_array()) Fail(path, "expected an array");
    if (j.size() > max) {
      Fail(path, "has " + std::to_string(j.size()) + " entries, more than the limit " +
                     std::to_string(max));
    }
    return j;
  }
  double Number(const Json& j, const std::string& path, double lo, double hi) const {
    if (!j.is_number()) Fail(path, "expected a number");
    const double v = j.get<double>();
    if (!std::isfinite(v) || v < lo || v > hi) {
      Fail(path, "value out of range [" + Num(lo) + ", " + Num(hi) + "]");
    }
    return v;
  }
  int Int(const Json& j, const std::string& path, int64_t lo, int64_t hi) const {
    if (!j.is_number_integer()) Fail(path, "expected an integer");
    const int64_t v = j.is_number_unsigned() && j.get<uint64_t>() > uint64_t(INT64_MAX)
                          ? INT64_MAX
                          : j.get<int64_t>();
    if (v < lo || v > hi) {
      Fail(path, "value out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return static_cast<int>(v);
  }
  int64_t Int64(const Json& j, const std::string& path, int64_t lo, int64_t hi) const {
    if (!j.is_number_integer()) Fail(path, "expected an integer");
    if (j.is_number_unsigned() && j.get<uint64_t>() > uint64_t(INT64_MAX)) {
      Fail(path, "value out of range");
    }
    const int64_t v = j.get<int64_t>();
    if (v < lo || v > hi) Fail(path, "value out of range");
    return v;
  }
  bool Bool(const Json& j, const std::string& path) const {
    if (!j.is_boolean()) Fail(path, "expected true or false");
    return j.get<bool>();
  }
  std::string String(const Json& j, const std::string& path, size_t max) const {
    if (!j.is_string()) Fail(path, "expected a string");
    const auto& s = j.get_ref<const std::string&>();
    if (s.size() > max) Fail(path, "string longer than " + std::to_string(max) + " bytes");
    return s;
  }
  std::string Hex64(const Json& j, const std::string& path) const {
    std::string s = String(j, path, 64);
    bool ok = s.size() == 64;
    for (char c : s) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!ok) Fail(path, "expected 64 lower-case hex digits (sha256)");
    return s;
  }

 private:
  static std::string Num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", v);
    return buf;
  }
  std::string source_;
};

constexpr double kCoord = 1e7;  // |pixel coordinate| bound (images are far smaller)

Json DetectionToJson(const Detection& d) {
  Json j = {{"class_id", d.class_id},
            {"class_name", d.class_name},
            {"confidence", d.confidence},
            {"box", {d.box.x1, d.box.y1, d.box.x2, d.box.y2}}};
  if (d.rotated) {
    const RotatedBox& r = *d.rotated;
    j["rotated"] = {r.cx, r.cy, r.w, r.h, r.angle};
  }
  if (!d.keypoints.empty()) {
    Json k = Json::array();
    for (const Keypoint& p : d.keypoints) k.push_back({p.x, p.y, p.visibility});
    j["keypoints"] = std::move(k);
  }
  if (!d.top5.empty()) {
    Json t = Json::array();
    for (const ClassScore& c : d.top5) {
      t.push_back({{"class_id", c.class_id}, {"class_name", c.class_name}, {"score", c.score}});
    }
    j["top5"] = std::move(t);
  }
  return j;
}

std::vector<float> Floats(const Reader& r, const Json& j, const std::string& path, size_t n,
                          double lo, double hi) {
  r.Array(j, path, n);
  if (j.size() != n) r.Fail(path, "expected " + std::to_string(n) + " numbers");
  std::vector<float> out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(static_cast<float>(r.Number(j[i], path + "[" + std::to_string(i) + "]", lo, hi)));
  }
  return out;
}

Detection DetectionFromJson(const Reader& r, const Json& j, const std::string& path) {
  r.Object(j, path);
  Detection d;
  d.class_id = r.Int(r.Field(j, path, "class_id"), path + ".class_id", 0, kMaxClasses);
  d.class_name =
      r.String(r.Field(j, path, "class_name"), path + ".class_name", golden::kMaxStringLength);
  d.confidence =
      static_cast<float>(r.Number(r.Field(j, path, "confidence"), path + ".confidence", 0, 1));
  const auto b = Floats(r, r.Field(j, path, "box"), path + ".box", 4, -kCoord, kCoord);
  d.box = {b[0], b[1], b[2], b[3]};
  if (j.contains("rotated")) {
    const auto v = Floats(r, j["rotated"], path + ".rotated", 5, -kCoord, kCoord);
    d.rotated = RotatedBox{v[0], v[1], v[2], v[3], v[4]};
  }
  if (j.contains("keypoints")) {
    const std::string kp = path + ".keypoints";
    const Json& a = r.Array(j["keypoints"], kp, golden::kMaxKeypoints);
    for (size_t i = 0; i < a.size(); ++i) {
      const auto v = Floats(r, a[i], kp + "[" + std::to_string(i) + "]", 3, -kCoord, kCoord);
      d.keypoints.push_back({v[0], v[1], v[2]});
    }
  }
  if (j.contains("top5")) {
    const std::string tp = path + ".top5";
    const Json& a = r.Array(j["top5"], tp, golden::kMaxTop);
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string p = tp + "[" + std::to_string(i) + "]";
      r.Object(a[i], p);
      ClassScore c;
      c.class_id = r.Int(r.Field(a[i], p, "class_id"), p + ".class_id", 0, kMaxClasses);
      c.class_name =
          r.String(r.Field(a[i], p, "class_name"), p + ".class_name", golden::kMaxStringLength);
      c.score = static_cast<float>(r.Number(r.Field(a[i], p, "score"), p + ".score", 0, 1));
      d.top5.push_back(std::move(c));
    }
  }
  return d;
}

Json SummaryToJson(const GoldenOutputSummary& s) {
  return {{"name", s.name},         {"shape", s.shape}, {"mean", s.mean},
          {"mean_abs", s.mean_abs}, {"rms", s.rms},     {"samples", s.samples}};
}

GoldenOutputSummary SummaryFromJson(const Reader& r, const Json& j, const std::string& path) {
  r.Object(j, path);
  GoldenOutputSummary s;
  s.name = r.String(r.Field(j, path, "name"), path + ".name", golden::kMaxStringLength);
  const Json& shape = r.Array(r.Field(j, path, "shape"), path + ".shape", golden::kMaxRank);
  for (size_t i = 0; i < shape.size(); ++i) {
    s.shape.push_back(
        r.Int64(shape[i], path + ".shape[" + std::to_string(i) + "]", 0, int64_t{1} << 40));
  }
  constexpr double kBig = 1e30;
  s.mean = r.Number(r.Field(j, path, "mean"), path + ".mean", -kBig, kBig);
  s.mean_abs = r.Number(r.Field(j, path, "mean_abs"), path + ".mean_abs", 0, kBig);
  s.rms = r.Number(r.Field(j, path, "rms"), path + ".rms", 0, kBig);
  const std::string sp = path + ".samples";
  const Json& samples = r.Array(r.Field(j, path, "samples"), sp, golden::kMaxSamples);
  for (size_t i = 0; i < samples.size(); ++i) {
    s.samples.push_back(static_cast<float>(
        r.Number(samples[i], sp + "[" + std::to_string(i) + "]", -3.0e38, 3.0e38)));
  }
  return s;
}

Json PredictToJson(const PredictOptions& p) {
  return {{"conf", p.conf},
          {"iou", p.iou},
          {"max_det", p.max_det},
          {"classes", p.classes},
          {"agnostic", p.agnostic},
          {"multi_label", p.multi_label},
          {"all_contours", p.all_contours},
          {"masks", p.masks},
          {"imgsz", p.imgsz}};
}

PredictOptions PredictFromJson(const Reader& r, const Json& j, const std::string& path) {
  r.Object(j, path);
  PredictOptions p;
  p.conf = static_cast<float>(r.Number(r.Field(j, path, "conf"), path + ".conf", 0, 1));
  p.iou = static_cast<float>(r.Number(r.Field(j, path, "iou"), path + ".iou", 0, 1));
  p.max_det = r.Int(r.Field(j, path, "max_det"), path + ".max_det", 1,
                    static_cast<int64_t>(golden::kMaxDetections));
  const Json& classes =
      r.Array(r.Field(j, path, "classes"), path + ".classes", golden::kMaxClasses);
  for (size_t i = 0; i < classes.size(); ++i) {
    p.classes.push_back(
        r.Int(classes[i], path + ".classes[" + std::to_string(i) + "]", 0, kMaxClasses));
  }
  p.agnostic = r.Bool(r.Field(j, path, "agnostic"), path + ".agnostic");
  p.multi_label = r.Bool(r.Field(j, path, "multi_label"), path + ".multi_label");
  p.all_contours = r.Bool(r.Field(j, path, "all_contours"), path + ".all_contours");
  p.masks = r.Bool(r.Field(j, path, "masks"), path + ".masks");
  p.imgsz = r.Int(r.Field(j, path, "imgsz"), path + ".imgsz", 0, 8192);
  return p;
}

GoldenTolerance ToleranceFromJson(const Reader& r, const Json& j, const std::string& path) {
  r.Object(j, path);
  GoldenTolerance t;
  t.min_iou = r.Number(r.Field(j, path, "min_iou"), path + ".min_iou", 0, 1);
  t.max_conf_diff = r.Number(r.Field(j, path, "max_conf_diff"), path + ".max_conf_diff", 0, 1);
  t.edge_conf = r.Number(r.Field(j, path, "edge_conf"), path + ".edge_conf", 0, 1);
  t.max_raw_error = r.Number(r.Field(j, path, "max_raw_error"), path + ".max_raw_error", 0, 1e6);
  t.max_kpt_error = r.Number(r.Field(j, path, "max_kpt_error"), path + ".max_kpt_error", 0, 1e6);
  return t;
}

GoldenRecord RecordFromJson(const Reader& r, const Json& j, const std::string& path) {
  r.Object(j, path);
  GoldenRecord rec;
  rec.input = r.String(r.Field(j, path, "input"), path + ".input", golden::kMaxNameLength);
  if (!golden::IsPlainFileName(rec.input)) {
    r.Fail(path + ".input", "not a plain file name (no '/', control bytes or leading '.')");
  }
  rec.sha256 = r.Hex64(r.Field(j, path, "sha256"), path + ".sha256");
  const std::string rp = path + ".result";
  const Json& res = r.Object(r.Field(j, path, "result"), rp);
  rec.result.width = r.Int(r.Field(res, rp, "width"), rp + ".width", 1, 1 << 20);
  rec.result.height = r.Int(r.Field(res, rp, "height"), rp + ".height", 1, 1 << 20);
  const std::string task = r.String(r.Field(res, rp, "task"), rp + ".task", 16);
  const auto parsed = ParseTask(task);
  if (!parsed) r.Fail(rp + ".task", "unknown task '" + task + "'");
  rec.result.task = *parsed;
  const std::string dp = rp + ".detections";
  const Json& dets = r.Array(r.Field(res, rp, "detections"), dp, golden::kMaxDetections);
  for (size_t i = 0; i < dets.size(); ++i) {
    rec.result.detections.push_back(
        DetectionFromJson(r, dets[i], dp + "[" + std::to_string(i) + "]"));
  }
  const std::string op = path + ".outputs";
  const Json& outs = r.Array(r.Field(j, path, "outputs"), op, golden::kMaxOutputs);
  for (size_t i = 0; i < outs.size(); ++i) {
    rec.outputs.push_back(SummaryFromJson(r, outs[i], op + "[" + std::to_string(i) + "]"));
  }
  return rec;
}

}  // namespace

std::string GoldenSetToJson(const GoldenSet& set) {
  Json records = Json::array();
  for (const GoldenRecord& rec : set.records) {
    Json dets = Json::array();
    for (const Detection& d : rec.result.detections) dets.push_back(DetectionToJson(d));
    Json outs = Json::array();
    for (const GoldenOutputSummary& s : rec.outputs) outs.push_back(SummaryToJson(s));
    records.push_back({{"input", rec.input},
                       {"sha256", rec.sha256},
                       {"result",
                        {{"width", rec.result.width},
                         {"height", rec.result.height},
                         {"task", std::string(TaskName(rec.result.task))},
                         {"detections", std::move(dets)}}},
                       {"outputs", std::move(outs)}});
  }
  const GoldenTolerance& t = set.tolerance;
  const Json j = {{"format", "cvdeploy-golden"},
                  {"format_version", set.format_version},
                  {"model_sha256", set.model_sha256},
                  {"task", set.task},
                  {"num_classes", set.num_classes},
                  {"imgsz", {set.imgsz_h, set.imgsz_w}},
                  {"contract", set.contract},
                  {"predict", PredictToJson(set.predict)},
                  {"tolerance",
                   {{"min_iou", t.min_iou},
                    {"max_conf_diff", t.max_conf_diff},
                    {"edge_conf", t.edge_conf},
                    {"max_raw_error", t.max_raw_error},
                    {"max_kpt_error", t.max_kpt_error}}},
                  {"records", std::move(records)}};
  return j.dump(1) + "\n";
}

GoldenSet GoldenSetFromJson(const std::string& text, const std::string& source) {
  const Json j = ParseOrderedJsonBounded(text, source);
  const Reader r(source);
  r.Object(j, "golden set");
  if (r.String(r.Field(j, "golden set", "format"), "format", 64) != "cvdeploy-golden") {
    r.Fail("format", "expected \"cvdeploy-golden\"");
  }
  GoldenSet set;
  set.format_version = r.Int(r.Field(j, "golden set", "format_version"), "format_version", 0,
                             std::numeric_limits<int>::max());
  if (set.format_version != kGoldenFormatVersion) {
    r.Fail("format_version", "unsupported version " + std::to_string(set.format_version) +
                                 " (this build reads " + std::to_string(kGoldenFormatVersion) +
                                 ")");
  }
  const Json& sha = r.Field(j, "golden set", "model_sha256");
  set.model_sha256 = sha.is_string() && sha.get_ref<const std::string&>().empty()
                         ? std::string()
                         : r.Hex64(sha, "model_sha256");
  set.task = r.String(r.Field(j, "golden set", "task"), "task", 16);
  if (!ParseTask(set.task)) r.Fail("task", "unknown task '" + set.task + "'");
  set.num_classes = r.Int(r.Field(j, "golden set", "num_classes"), "num_classes", 0, kMaxClasses);
  const Json& imgsz = r.Array(r.Field(j, "golden set", "imgsz"), "imgsz", 2);
  if (imgsz.size() != 2) r.Fail("imgsz", "expected [height, width]");
  set.imgsz_h = r.Int(imgsz[0], "imgsz[0]", 1, 8192);
  set.imgsz_w = r.Int(imgsz[1], "imgsz[1]", 1, 8192);
  const Json& contract = r.Object(r.Field(j, "golden set", "contract"), "contract");
  for (auto it = contract.begin(); it != contract.end(); ++it) {
    const std::string& key = it.key();
    const bool known = std::any_of(std::begin(kGoldenContractKeys), std::end(kGoldenContractKeys),
                                   [&key](const char* k) { return key == k; });
    if (!known) r.Fail("contract." + key, "not a contract key");
    set.contract[key] = r.String(it.value(), "contract." + key, golden::kMaxContractValue);
  }
  set.predict = PredictFromJson(r, r.Field(j, "golden set", "predict"), "predict");
  set.tolerance = ToleranceFromJson(r, r.Field(j, "golden set", "tolerance"), "tolerance");
  const Json& records =
      r.Array(r.Field(j, "golden set", "records"), "records", golden::kMaxRecords);
  if (records.empty()) r.Fail("records", "a golden set needs at least one record");
  std::set<std::string> names;
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string path = "records[" + std::to_string(i) + "]";
    set.records.push_back(RecordFromJson(r, records[i], path));
    if (!names.insert(set.records.back().input).second) {
      r.Fail(path + ".input", "duplicate input '" + set.records.back().input + "'");
    }
  }
  return set;
}

namespace golden {

bool IsPlainFileName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength || name[0] == '.') return false;
  for (unsigned char c : name) {
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace golden
}  // namespace cvdeploy
