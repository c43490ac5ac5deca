// SPDX-License-Identifier: Apache-2.0
#include "model/metadata.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <sstream>

#include "core/file_util.h"
#include "cvdeploy/error.h"
#include "model/yaml_names.h"

namespace cvdeploy::model {
namespace {

constexpr uint64_t kMaxNamesFileBytes = 16u << 20;

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    s += (i ? ", " : "") + (shape[i] < 0 ? std::string("?") : std::to_string(shape[i]));
  }
  return s + "]";
}

// Minimal scanner for the Python literals Ultralytics writes: dicts of int -> str and lists.
class LiteralScanner {
 public:
  explicit LiteralScanner(const std::string& text) : text_(text) {}
  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  char Peek() {
    SkipSpace();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }
  bool AtEnd() {
    SkipSpace();
    return pos_ >= text_.size();
  }
  // A decimal integer in [lo, hi]; anything else (e.g. 99999999999999999999, which
  // std::stol answered with a bare "stol" exception) fails with the offending digits.
  int64_t Integer(int64_t lo = std::numeric_limits<int64_t>::min(),
                  int64_t hi = std::numeric_limits<int64_t>::max()) {
    SkipSpace();
    size_t start = pos_;
    if (pos_ < text_.size() && (text_[pos_] == '-' || text_[pos_] == '+')) ++pos_;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    if (start == pos_ || !std::isdigit(static_cast<unsigned char>(text_[pos_ - 1]))) {
      Fail("expected an integer");
    }
    const char* first = text_.data() + start + (text_[start] == '+' ? 1 : 0);
    const char* last = text_.data() + pos_;
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(first, last, value);
    if (ec != std::errc() || end != last || value < lo || value > hi) {
      pos_ = start;
      Fail("integer " + std::string(text_.data() + start, last) + " out of range");
    }
    return value;
  }
  int Int() {
    return static_cast<int>(
        Integer(std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
  }
  std::string String() {
    SkipSpace();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
      Fail("expected a quoted string");
    }
    const char quote = text_[pos_++];
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      char c = text_[pos_++];
      if (c == '\\' && pos_ < text_.size()) c = text_[pos_++];
      out.push_back(c);
    }
    if (pos_ >= text_.size()) Fail("unterminated string");
    ++pos_;
    return out;
  }
  [[noreturn]] void Fail(const std::string& what) const {
    throw BadInput("malformed literal '" + text_.substr(0, 60) + (text_.size() > 60 ? "..." : "") +
                   "': " + what + " at offset " + std::to_string(pos_));
  }

 private:
  const std::string& text_;
  size_t pos_ = 0;
};

int64_t Dim(const TensorInfo& t, size_t i) { return i < t.shape.size() ? t.shape[i] : -1; }

std::vector<std::string> DefaultNames(int nc) {
  std::vector<std::string> names;
  for (int i = 0; i < nc; ++i) names.push_back("class" + std::to_string(i));
  return names;
}

}  // namespace

std::vector<std::string> ParseNamesLiteral(const std::string& text) {
  LiteralScanner s(text);
  std::vector<std::string> names;
  if (s.Consume('{')) {
    std::map<int64_t, std::string> by_id;
    while (!s.Consume('}')) {
      const int64_t id = s.Int();
      if (!s.Consume(':')) s.Fail("expected ':'");
      if (id < 0 || !by_id.emplace(id, s.String()).second) s.Fail("negative or duplicate id");
      if (!s.Consume(',') && s.Peek() != '}') s.Fail("expected ',' or '}'");
    }
    int64_t expected = 0;
    for (auto& [id, name] : by_id) {
      if (id != expected++) s.Fail("class ids are not contiguous from 0");
      names.push_back(std::move(name));
    }
  } else if (s.Consume('[')) {
    while (!s.Consume(']')) {
      names.push_back(s.String());
      if (!s.Consume(',') && s.Peek() != ']') s.Fail("expected ',' or ']'");
    }
  } else {
    s.Fail("expected '{' or '['");
  }
  if (!s.AtEnd()) s.Fail("trailing characters");
  return names;
}

std::vector<int> ParseIntList(const std::string& text) {
  LiteralScanner s(text);
  std::vector<int> values;
  const char open = s.Peek();
  if (open != '[' && open != '(') {
    values.push_back(s.Int());
  } else {
    s.Consume(open);
    const char close = open == '[' ? ']' : ')';
    while (!s.Consume(close)) {
      values.push_back(s.Int());
      if (!s.Consume(',') && s.Peek() != close) s.Fail("expected ',' or closing bracket");
    }
  }
  if (!s.AtEnd()) s.Fail("trailing characters");
  return values;
}

bool ParseBool(const std::string& text) {
  const std::string t = Trim(text);
  return t == "True" || t == "true" || t == "1";
}

std::vector<std::string> ReadNamesFile(const std::string& path) {
  // A regular file only (a FIFO or /dev/zero is refused, never read), at most 16 MiB: a names
  // file holds a few thousand short names at most.
  const std::string text = Trim(core::ReadFileText(path, kMaxNamesFileBytes));
  if (text.empty()) throw BadInput(path + ": names file is empty");
  try {
    if (text[0] == '{' || text[0] == '[') return ParseNamesLiteral(text);
  } catch (const Error& e) {
    throw BadInput(path + ": " + e.what());
  }
  // A dataset YAML's "names:" entry, else one name per line.
  std::vector<std::string> names;
  if (text.find("names:") != std::string::npos) {
    try {
      names = model::ParseYamlNames(text);
    } catch (const Error& e) {
      throw BadInput(path + ": " + e.what());
    }
  } else {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      if (const std::string t = Trim(line); !t.empty() && t[0] != '#') names.push_back(t);
    }
  }
  if (names.empty()) throw BadInput(path + ": no class names found");
  return names;
}

namespace {

// Class names whose count is not the model's: "names file has 2 entries, the model has 80"
// for the caller's override (ModelOptions::names, the CLI's --names), or naming the metadata.
Error NamesCountMismatch(const std::string& model_name, size_t given, int64_t model_classes,
                         bool overridden) {
  const std::string counts =
      std::to_string(given) + " entries, the model has " + std::to_string(model_classes);
  if (overridden)
    return Error(ErrorCode::kBadInput, model_name + ": names file has " + counts, "names");
  return BadInput(model_name + ": metadata 'names' has " + counts + " classes in its output");
}

// The output layout and the class names of `meta.task` (already decided) from the first
// output's shape; throws Error(kBadInput) naming the model when no YOLO layout fits, or when
// `names` (the caller's override when `names_overridden`) has another count than the output.
void ResolveLayout(const std::string& model_name, const std::vector<TensorInfo>& outputs,
                   const std::optional<std::vector<std::string>>& names, bool names_overridden,
                   ModelMeta& meta) {
  auto fail = [&](const std::string& why) { return BadInput(model_name + ": " + why); };
  const TensorInfo& out = outputs[0];
  if (meta.task == Task::kClassify) {
    if (out.shape.size() != 2 || Dim(out, 1) <= 0) {
      throw fail("classify model output '" + out.name + "' " + ShapeText(out.shape) +
                 " is not [batch, classes]");
    }
    meta.layout = OutputLayout::kClassify;
    const int nc = static_cast<int>(Dim(out, 1));
    if (names && static_cast<int>(names->size()) != nc) {
      throw NamesCountMismatch(model_name, names->size(), nc, names_overridden);
    }
    meta.names = names ? *names : DefaultNames(nc);
    return;
  }

  if (out.shape.size() != 3) {
    throw fail("output '" + out.name + "' " + ShapeText(out.shape) + " is not a YOLO " +
               std::string(TaskName(meta.task)) + " head (expected rank 3)");
  }
  int extra = 0;
  if (meta.task == Task::kSegment) {
    if (outputs.size() < 2 || outputs[1].shape.size() != 4 || Dim(outputs[1], 1) <= 0) {
      throw fail("segment model needs a second output of prototypes [batch, 32, h, w]");
    }
    meta.mask_channels = static_cast<int>(Dim(outputs[1], 1));
    extra = meta.mask_channels;
  } else if (meta.task == Task::kObb) {
    extra = 1;
  }
  const int64_t a = Dim(out, 1), d = Dim(out, 2);
  if (meta.task == Task::kPose && !meta.kpt_shape) {
    // Without kpt_shape metadata assume COCO keypoints when the channel count allows it.
    meta.kpt_shape = std::make_pair(17, 3);
    meta.inferred.push_back("kpt_shape [17, 3] (no metadata)");
  }
  if (meta.task == Task::kPose) extra = meta.kpt_shape->first * meta.kpt_shape->second;

  int nc = names ? static_cast<int>(names->size()) : -1;
  if (meta.end2end) {
    meta.layout = OutputLayout::kEndToEnd;
    if (d != 6 + extra) {
      throw fail("end-to-end output '" + out.name + "' " + ShapeText(out.shape) + " should have " +
                 std::to_string(6 + extra) + " values per detection");
    }
    if (nc < 0) {
      nc = 80;
      meta.inferred.push_back("80 classes (end-to-end output, no names metadata)");
    }
  } else if (nc > 0 && a == 4 + nc + extra) {
    meta.layout = OutputLayout::kChannelsFirst;
  } else if (nc > 0 && d == 5 + nc + extra) {
    meta.layout = OutputLayout::kYoloV5;
  } else if (nc > 0 && d == 6 + extra && a > d) {
    meta.layout = OutputLayout::kEndToEnd;
    meta.end2end = true;
  } else if (nc < 0 && a > 0 && d > 0 && a < d && a - 4 - extra > 0) {
    meta.layout = OutputLayout::kChannelsFirst;
    nc = static_cast<int>(a - 4 - extra);
  } else if (nc < 0 && a > 0 && d > 0 && a > d && d - 5 - extra > 0) {
    meta.layout = OutputLayout::kYoloV5;
    nc = static_cast<int>(d - 5 - extra);
  } else {
    // The names do not fit: say so when the output implies a class count without them
    // (channels first [4 + nc, anchors] when anchors outnumber channels, else YOLOv5's
    // [anchors, 5 + nc] when that fits).
    if (nc > 0 && a > 0 && d > 0) {
      const int64_t channels_first = a - 4 - extra, yolov5 = d - 5 - extra;
      const int64_t implied = a < d || yolov5 <= 0 ? channels_first : yolov5;
      if (implied > 0) {
        throw NamesCountMismatch(model_name, names->size(), implied, names_overridden);
      }
    }
    throw fail("output '" + out.name + "' " + ShapeText(out.shape) + " matches no YOLO " +
               std::string(TaskName(meta.task)) + " layout" +
               (nc > 0 ? " for " + std::to_string(nc) + " classes" : std::string()));
  }
  if (!names) meta.inferred.push_back(std::to_string(nc) + " classes (no names metadata)");
  meta.names = names ? *names : DefaultNames(nc);
}

}  // namespace

ModelMeta BuildMeta(const std::string& model_name, const std::map<std::string, std::string>& props,
                    const std::vector<TensorInfo>& inputs, const std::vector<TensorInfo>& outputs,
                    const ModelOptions& overrides) {
  auto fail = [&](const std::string& why) { return BadInput(model_name + ": " + why); };
  ModelMeta meta;
  meta.raw = props;
  auto prop = [&](const char* key) -> const std::string* {
    auto it = props.find(key);
    return it == props.end() ? nullptr : &it->second;
  };
  // ParseIntList on a metadata value; errors name the model and the key.
  auto int_list = [&](const char* key, const std::string& text) {
    try {
      return ParseIntList(text);
    } catch (const Error& e) {
      throw fail(std::string("metadata '") + key + "': " + e.what());
    }
  };

  // --- input: exactly one float image tensor [batch, 3, height, width].
  if (inputs.size() != 1) {
    throw fail("not a YOLO image model: expected 1 input, found " + std::to_string(inputs.size()));
  }
  const TensorInfo& in = inputs[0];
  if (in.shape.size() != 4) {
    throw fail("not a YOLO image model: input '" + in.name + "' has rank " +
               std::to_string(in.shape.size()) + " " + ShapeText(in.shape) +
               ", expected rank 4 [batch, 3, height, width]");
  }
  if (in.shape[1] != 3) {
    throw fail("not a YOLO image model: input '" + in.name + "' " + ShapeText(in.shape) +
               " does not have 3 channels in NCHW order");
  }
  if (in.type != "float32" && in.type != "float16") {
    throw fail("input '" + in.name + "' has element type " + in.type +
               ", expected float32 or float16");
  }
  if (outputs.empty()) throw fail("model has no outputs");
  meta.half = in.type == "float16";
  if (auto* h = prop("half")) meta.half = meta.half || ParseBool(*h);
  meta.batch = static_cast<int>(in.shape[0]);
  meta.dynamic = in.shape[2] < 0 || in.shape[3] < 0;
  if (auto* s = prop("stride")) {
    std::vector<int> v = int_list("stride", *s);
    if (!v.empty() && v[0] > 0) meta.stride = *std::max_element(v.begin(), v.end());
  }

  // --- input size: fixed dims win; otherwise metadata imgsz, then 640.
  if (!meta.dynamic) {
    meta.imgsz_h = static_cast<int>(in.shape[2]);
    meta.imgsz_w = static_cast<int>(in.shape[3]);
  } else if (auto* s = prop("imgsz")) {
    std::vector<int> v = int_list("imgsz", *s);
    if (v.size() == 1) v.push_back(v[0]);
    if (v.size() != 2 || v[0] <= 0 || v[1] <= 0)
      throw fail("metadata imgsz '" + *s + "' is invalid");
    meta.imgsz_h = v[0];
    meta.imgsz_w = v[1];
  } else {
    meta.inferred.push_back("imgsz 640 (dynamic input, no imgsz metadata)");
  }
  if (overrides.imgsz) {
    const int sz = *overrides.imgsz;
    if (sz <= 0)
      throw InvalidArgument("imgsz must be positive, got " + std::to_string(sz), "imgsz");
    if (!meta.dynamic && (sz != meta.imgsz_h || sz != meta.imgsz_w)) {
      throw InvalidArgument(model_name + ": input is fixed at " + std::to_string(meta.imgsz_w) +
                                "x" + std::to_string(meta.imgsz_h) + "; imgsz " +
                                std::to_string(sz) +
                                " needs a model exported with dynamic spatial axes",
                            "imgsz");
    }
    meta.imgsz_h = meta.imgsz_w = sz;
  }
  if (meta.dynamic && (meta.imgsz_h % meta.stride || meta.imgsz_w % meta.stride)) {
    // The caller's choice (an override) is a usage error; the file's own metadata is bad input.
    const std::string why = model_name + ": imgsz " + std::to_string(meta.imgsz_w) +
                            " is not a multiple of the model stride " + std::to_string(meta.stride);
    throw overrides.imgsz ? InvalidArgument(why) : BadInput(why);
  }

  // --- names, task, keypoints, end2end from metadata.
  std::optional<std::vector<std::string>> names;
  if (overrides.names) {
    names = overrides.names;
  } else if (auto* n = prop("names")) {
    try {
      names = ParseNamesLiteral(*n);
    } catch (const Error& e) {
      throw fail(std::string("metadata 'names': ") + e.what());
    }
  }
  std::optional<Task> task = overrides.task;
  if (!task) {
    if (auto* t = prop("task")) {
      task = ParseTask(Trim(*t));
      if (!task)
        throw fail("metadata task '" + *t + "' is not one of detect/segment/pose/classify/obb");
    }
  }
  if (auto* k = prop("kpt_shape")) {
    std::vector<int> v = int_list("kpt_shape", *k);
    if (v.size() != 2 || v[0] <= 0 || (v[1] != 2 && v[1] != 3)) {
      throw fail("metadata kpt_shape '" + *k + "' is invalid");
    }
    meta.kpt_shape = std::make_pair(v[0], v[1]);
  }
  if (auto* e = prop("end2end")) meta.end2end = ParseBool(*e);

  const TensorInfo& out = outputs[0];
  // Infer the task from the output structure when nothing says it.
  if (!task) {
    if (outputs.size() >= 2 && outputs[1].shape.size() == 4) {
      task = Task::kSegment;
    } else if (out.shape.size() == 2) {
      task = Task::kClassify;
    } else if (out.shape.size() == 3 && Dim(out, 1) == 56 && Dim(out, 2) > 56 && !names) {
      task = Task::kPose;  // 4 box + 1 person + 17 x 3 keypoints: the COCO pose layout
      meta.kpt_shape = std::make_pair(17, 3);
    } else {
      task = Task::kDetect;
    }
    meta.inferred.push_back(std::string("task ") + std::string(TaskName(*task)) +
                            " (from output shapes; no task metadata)");
  }
  meta.task = *task;

  ResolveLayout(model_name, outputs, names, overrides.names.has_value(), meta);
  return meta;
}

}  // namespace cvdeploy::model

namespace cvdeploy {
std::vector<std::string> ReadNamesFile(const std::string& path) {
  return model::ReadNamesFile(path);
}
}  // namespace cvdeploy
