// SPDX-License-Identifier: Apache-2.0
// meta.json and response.json of a stored sample (cvdeploy/samples.h). The readers parse
// untrusted bytes (a sample directory anyone with write access to the store may have
// touched): size cap, depth-bounded parse, then every field checked for type, range and size,
// with "WHAT: FIELD: reason" errors. Needs only the core (it is in the fuzzing harness's
// parser sources).
#include <cmath>
#include <cstdio>

#include "cvdeploy/error.h"
#include "cvdeploy/json.h"
#include "cvdeploy/samples.h"

namespace cvdeploy::samples {
namespace {

using Json = nlohmann::json;

class Reader {
 public:
  explicit Reader(const std::string& what) : what_(what) {}
  [[noreturn]] void Fail(const std::string& field, const std::string& reason) const {
    throw BadInput(what_ + ": " + field + ": " + reason);
  }
  const Json* Optional(const Json& obj, const char* key) const {
    const auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
  }
  const Json& Field(const Json& obj, const std::string& path, const char* key) const {
    const Json* j = Optional(obj, key);
    if (!j) Fail(path.empty() ? key : path + "." + key, "missing");
    return *j;
  }
  std::string String(const Json& j, const std::string& field, size_t max) const {
    if (!j.is_string()) Fail(field, "expected a string");
    const auto& s = j.get_ref<const std::string&>();
    if (s.size() > max) Fail(field, "longer than " + std::to_string(max) + " bytes");
    return s;
  }
  double Number(const Json& j, const std::string& field, double lo, double hi) const {
    if (!j.is_number()) Fail(field, "expected a number");
    const double v = j.get<double>();
    if (!std::isfinite(v) || v < lo || v > hi) {
      char text[96];
      std::snprintf(text, sizeof(text), "out of range [%g, %g]", lo, hi);
      Fail(field, text);
    }
    return v;
  }
  int64_t Int(const Json& j, const std::string& field, int64_t lo, int64_t hi) const {
    if (!j.is_number_integer()) Fail(field, "expected an integer");
    if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      Fail(field, "out of range");
    }
    const int64_t v = j.get<int64_t>();
    if (v < lo || v > hi) {
      Fail(field, "out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return v;
  }
  bool Bool(const Json& j, const std::string& field) const {
    if (!j.is_boolean()) Fail(field, "expected true or false");
    return j.get<bool>();
  }

 private:
  std::string what_;
};

Json Parse(std::string_view text, size_t max, const std::string& what) {
  if (text.size() > max) {
    throw BadInput(what + ": " + std::to_string(text.size()) + " bytes, more than the limit " +
                   std::to_string(max));
  }
  Json j = ParseJsonBounded(text, what);
  if (!j.is_object()) throw BadInput(what + ": expected a JSON object");
  return j;
}

bool IsInputName(const std::string& name) {
  return name.empty() || name == "input.jpg" || name == "input.png" || name == "input.webp" ||
         name == "input.bmp" || name == "input.bin";
}

// Ids come from clients (X-Request-Id): printable ASCII only, so that a listing prints them
// safely.
bool Printable(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) return false;
  }
  return true;
}

constexpr double kCoord = 1e7;  // |pixel coordinate| bound (images are far smaller)
constexpr int64_t kMaxClasses = 100000;

}  // namespace

std::string SampleMetaToJson(const SampleMeta& m) {
  nlohmann::ordered_json j = {{"format", std::string(kFormat)},
                              {"request_id", m.request_id},
                              {"trace_id", m.trace_id},
                              {"model", m.model},
                              {"version", m.version},
                              {"time", m.time},
                              {"time_ms", m.time_ms},
                              {"kind", m.kind},
                              {"input", m.input},
                              {"input_bytes", m.input_bytes},
                              {"redacted", m.redacted},
                              {"redacted_regions", m.redacted_regions}};
  if (m.kind == "tensor") {
    j["datatype"] = m.datatype;
    j["shape"] = m.shape;
  } else {
    j["options"] = {{"conf", std::round(m.conf * 1e4) / 1e4},
                    {"iou", std::round(m.iou * 1e4) / 1e4},
                    {"max_det", m.max_det},
                    {"imgsz", m.imgsz}};
  }
  nlohmann::ordered_json timings = nlohmann::ordered_json::object();
  for (const auto& [k, v] : m.timings_ms) timings[k] = std::round(v * 1000) / 1000;
  j["timings_ms"] = std::move(timings);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

SampleMeta SampleMetaFromJson(std::string_view text, const std::string& what) {
  const Json j = Parse(text, kMaxMetaBytes, what);
  const Reader r(what);
  if (r.String(r.Field(j, "", "format"), "format", 64) != kFormat) {
    r.Fail("format", "not " + std::string(kFormat));
  }
  SampleMeta m;
  auto id = [&](const char* key) {
    std::string s = r.String(r.Field(j, "", key), key, kMaxIdLength);
    if (!Printable(s)) r.Fail(key, "holds a control or non-ASCII byte");
    return s;
  };
  m.request_id = id("request_id");
  m.trace_id = id("trace_id");
  m.model = id("model");
  m.version = id("version");
  m.time = id("time");
  m.time_ms = r.Int(r.Field(j, "", "time_ms"), "time_ms", 0, int64_t{1} << 50);
  m.kind = r.String(r.Field(j, "", "kind"), "kind", 16);
  if (m.kind != "image" && m.kind != "tensor") r.Fail("kind", "expected \"image\" or \"tensor\"");
  m.input = r.String(r.Field(j, "", "input"), "input", 16);
  if (!IsInputName(m.input)) r.Fail("input", "expected input.jpg|png|webp|bmp|bin or \"\"");
  if ((m.input == "input.bin") != (m.kind == "tensor") && !m.input.empty()) {
    r.Fail("input", "'" + m.input + "' does not fit kind \"" + m.kind + "\"");
  }
  m.input_bytes = static_cast<uint64_t>(
      r.Int(r.Field(j, "", "input_bytes"), "input_bytes", 0, static_cast<int64_t>(kMaxInputBytes)));
  m.redacted = r.Bool(r.Field(j, "", "redacted"), "redacted");
  m.redacted_regions = static_cast<int>(
      r.Int(r.Field(j, "", "redacted_regions"), "redacted_regions", 0, kMaxDetections));
  if (m.kind == "tensor") {
    m.datatype = r.String(r.Field(j, "", "datatype"), "datatype", 16);
    const Json& shape = r.Field(j, "", "shape");
    if (!shape.is_array() || shape.empty() || shape.size() > 8) {
      r.Fail("shape", "expected an array of 1 to 8 dimensions");
    }
    for (size_t i = 0; i < shape.size(); ++i) {
      m.shape.push_back(r.Int(shape[i], "shape[" + std::to_string(i) + "]", 0, 1 << 20));
    }
  } else {
    const Json& o = r.Field(j, "", "options");
    if (!o.is_object()) r.Fail("options", "expected an object");
    m.conf = static_cast<float>(r.Number(r.Field(o, "options", "conf"), "options.conf", 0, 1));
    m.iou = static_cast<float>(r.Number(r.Field(o, "options", "iou"), "options.iou", 0, 1));
    m.max_det =
        static_cast<int>(r.Int(r.Field(o, "options", "max_det"), "options.max_det", 1, 100000));
    m.imgsz = static_cast<int>(r.Int(r.Field(o, "options", "imgsz"), "options.imgsz", 0, 8192));
  }
  if (const Json* t = r.Optional(j, "timings_ms")) {
    if (!t->is_object() || t->size() > 16) r.Fail("timings_ms", "expected an object of stages");
    for (const auto& [k, v] : t->items()) {
      if (k.size() > 32 || !Printable(k)) r.Fail("timings_ms", "bad stage name");
      m.timings_ms[k] = r.Number(v, "timings_ms." + k, -1, 1e9);
    }
  }
  return m;
}

Result SampleResponseFromJson(std::string_view text, const std::string& what) {
  const Json j = Parse(text, kMaxResponseBytes, what);
  const Reader r(what);
  Result result;
  result.width = static_cast<int>(r.Int(r.Field(j, "", "width"), "width", 0, 1 << 20));
  result.height = static_cast<int>(r.Int(r.Field(j, "", "height"), "height", 0, 1 << 20));
  const std::string task = r.String(r.Field(j, "", "task"), "task", 16);
  const auto parsed = ParseTask(task);
  if (!parsed) r.Fail("task", "unknown task '" + task + "'");
  result.task = *parsed;
  const Json& dets = r.Field(j, "", "detections");
  if (!dets.is_array()) r.Fail("detections", "expected an array");
  if (dets.size() > kMaxDetections) {
    r.Fail("detections", "more than " + std::to_string(kMaxDetections) + " entries");
  }
  for (size_t i = 0; i < dets.size(); ++i) {
    const std::string p = "detections[" + std::to_string(i) + "]";
    const Json& d = dets[i];
    if (!d.is_object()) r.Fail(p, "expected an object");
    Detection det;
    det.class_id =
        static_cast<int>(r.Int(r.Field(d, p, "class_id"), p + ".class_id", 0, kMaxClasses));
    det.class_name = r.String(r.Field(d, p, "class_name"), p + ".class_name", 1024);
    det.confidence =
        static_cast<float>(r.Number(r.Field(d, p, "confidence"), p + ".confidence", 0, 1));
    const Json& box = r.Field(d, p, "box");
    if (!box.is_object()) r.Fail(p + ".box", "expected an object");
    auto coord = [&](const char* key) {
      return static_cast<float>(
          r.Number(r.Field(box, p + ".box", key), p + ".box." + key, -kCoord, kCoord));
    };
    det.box = {coord("x1"), coord("y1"), coord("x2"), coord("y2")};
    if (const Json* rb = r.Optional(d, "rotated_box")) {
      const std::string rp = p + ".rotated_box";
      if (!rb->is_object()) r.Fail(rp, "expected an object");
      auto v = [&](const char* key) {
        return static_cast<float>(r.Number(r.Field(*rb, rp, key), rp + "." + key, -kCoord, kCoord));
      };
      det.rotated = RotatedBox{v("cx"), v("cy"), v("w"), v("h"), v("angle")};
    }
    result.detections.push_back(std::move(det));
  }
  return result;
}

}  // namespace cvdeploy::samples
