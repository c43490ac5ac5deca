// SPDX-License-Identifier: Apache-2.0
// The doctor's model facts and static model checks (cvdeploy/doctor.h): what a model file says
// about itself (parsed here from the ONNX protobuf: untrusted bytes, fuzzed by
// tests/fuzz/doctor_model_fuzz.cpp) against what its tensors and this machine's engine allow,
// read from the raw metadata so that a model cvdeploy refuses to load is still diagnosed,
// check by check.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <climits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cvdeploy/doctor.h"
#include "cvdeploy/error.h"
#include "eval/doctor_internal.h"
#include "model/metadata.h"
#include "model/model_info.h"

namespace cvdeploy {
namespace {

using doctor::Make;
using doctor::ShapeText;

int64_t Dim(const TensorInfo& t, size_t i) { return i < t.shape.size() ? t.shape[i] : -1; }

// The Ultralytics metadata entries, parsed; a parse error is kept as a FAIL finding.
struct Declared : doctor::DeclaredLayout {
  std::optional<std::vector<int>> imgsz, stride;
};

Declared ParseDeclared(const ModelFacts& f, std::vector<Finding>& out) {
  Declared d;
  const auto get = [&](const char* key) -> const std::string* {
    const auto it = f.metadata.find(key);
    return it == f.metadata.end() ? nullptr : &it->second;
  };
  const auto bad = [&](const char* key, const std::string& why) {
    out.push_back(Make("metadata", key, Finding::kFail,
                       std::string("metadata '") + key + "' cannot be parsed: " + why,
                       "re-export the model with Ultralytics, or fix the entry (cvdeploy refuses "
                       "to load it)"));
  };
  try {
    if (const auto* s = get("names")) d.names = model::ParseNamesLiteral(*s);
  } catch (const Error& e) {
    bad("names", e.what());
  }
  const auto ints = [&](const char* key, std::optional<std::vector<int>>& to) {
    const auto* s = get(key);
    if (!s) return;
    try {
      to = model::ParseIntList(*s);
      if (to->empty() || *std::min_element(to->begin(), to->end()) <= 0) {
        to.reset();
        bad(key, "'" + *s + "' is not a list of positive integers");
      }
    } catch (const Error& e) {
      bad(key, e.what());
    }
  };
  ints("imgsz", d.imgsz);
  ints("stride", d.stride);
  ints("kpt_shape", d.kpt_shape);
  if (const auto* t = get("task")) {
    std::string trimmed = *t;
    trimmed.erase(0, trimmed.find_first_not_of(" \t'\""));
    trimmed.erase(trimmed.find_last_not_of(" \t'\"") + 1);
    d.task = ParseTask(trimmed);
    if (!d.task) bad("task", "'" + *t + "' is not one of detect/segment/pose/classify/obb");
  }
  if (const auto* e = get("end2end")) d.end2end = model::ParseBool(*e);
  return d;
}

void CheckOpsets(const ModelFacts& f, const ModelCheckContext& c, std::vector<Finding>& out) {
  const auto it = f.opsets.find("");
  const auto ai = f.opsets.find("ai.onnx");
  const int64_t opset = it != f.opsets.end() ? it->second : ai != f.opsets.end() ? ai->second : 0;
  const int max = c.engine.max_opset;
  if (opset <= 0) {
    out.push_back(Make("model", "opset", Finding::kFail, "no ai.onnx opset import",
                       "not a valid ONNX model for ONNX Runtime: re-export it"));
  } else if (opset < 7) {
    out.push_back(Make(
        "model", "opset", Finding::kFail,
        "opset " + std::to_string(opset) + " (ONNX Runtime supports 7 and later)",
        "re-export with a current exporter (opset 17-" + std::to_string(std::max(17, max)) + ")"));
  } else if (max > 0 && opset > max) {
    out.push_back(Make("model", "opset", Finding::kFail,
                       "opset " + std::to_string(opset) + " > " + std::to_string(max) +
                           ", the highest ONNX Runtime " + c.engine.version + " implements",
                       "re-export with opset=" + std::to_string(max) +
                           " (Ultralytics export(opset=...)) or upgrade ONNX Runtime"));
  } else {
    out.push_back(Make(
        "model", "opset", max > 0 ? Finding::kOk : Finding::kWarn,
        "opset " + std::to_string(opset) +
            (max > 0 ? " <= " + std::to_string(max) + " (ONNX Runtime " + c.engine.version + ")"
                     : " (engine's maximum unknown)"),
        max > 0 ? "the engine implements every operator version of this opset"
                : "check the model loads: cvdeploy info / predict"));
  }
  for (const auto& [domain, version] : f.opsets) {
    if (domain.empty() || domain == "ai.onnx" || domain == "ai.onnx.ml" ||
        domain == "com.microsoft") {
      continue;
    }
    out.push_back(Make("model", "opset", Finding::kWarn,
                       "custom operator domain '" + domain + "' v" + std::to_string(version),
                       "ONNX Runtime needs a custom-op library for it; cvdeploy loads none"));
  }
}

void CheckInput(const ModelFacts& f, std::vector<Finding>& out) {
  if (f.inputs.size() != 1) {
    out.push_back(Make("model", "input", Finding::kFail,
                       std::to_string(f.inputs.size()) + " inputs (cvdeploy feeds one image)",
                       "export the model with a single image input [batch, 3, h, w]"));
    return;
  }
  const TensorInfo& in = f.inputs[0];
  const bool rank = in.shape.size() == 4 && Dim(in, 1) == 3;
  const bool type = in.type == "float32" || in.type == "float16";
  out.push_back(Make("model", "input", rank && type ? Finding::kOk : Finding::kFail,
                     "'" + in.name + "' " + in.type + " " + ShapeText(in),
                     rank && type ? "one NCHW float image input, as cvdeploy feeds"
                                  : "cvdeploy feeds one float32/float16 NCHW tensor with 3 "
                                    "channels: re-export the model"));
}

// Checks imgsz and stride against the input.
void CheckGeometry(const ModelFacts& f, const Declared& d, std::vector<Finding>& out) {
  if (f.inputs.size() != 1 || f.inputs[0].shape.size() != 4) return;
  const TensorInfo& in = f.inputs[0];
  const int stride = d.stride ? *std::max_element(d.stride->begin(), d.stride->end()) : 32;
  if (d.stride && (stride & (stride - 1)) != 0) {
    out.push_back(Make("metadata", "stride", Finding::kFail,
                       "stride " + std::to_string(stride) + " is not a power of two",
                       "YOLO strides are 8/16/32/64: the metadata is wrong, re-export"));
  }
  const bool fixed = Dim(in, 2) > 0 && Dim(in, 3) > 0;
  std::optional<std::pair<int, int>> declared;
  if (d.imgsz) {
    declared = {d.imgsz->at(0), d.imgsz->size() > 1 ? d.imgsz->at(1) : d.imgsz->at(0)};
  }
  const int h = fixed ? static_cast<int>(Dim(in, 2)) : declared ? declared->first : 640;
  const int w = fixed ? static_cast<int>(Dim(in, 3)) : declared ? declared->second : 640;
  const std::string size = std::to_string(h) + "x" + std::to_string(w);
  if (fixed && declared && (declared->first != h || declared->second != w)) {
    out.push_back(Make("metadata", "imgsz", Finding::kWarn,
                       "metadata imgsz " + std::to_string(declared->first) + "x" +
                           std::to_string(declared->second) + " but the input is fixed at " + size,
                       "cvdeploy letterboxes to the input's " + size +
                           "; other tools read imgsz: fix the metadata or re-export"));
  } else if (!fixed && !declared) {
    out.push_back(Make("metadata", "imgsz", Finding::kWarn,
                       "dynamic input and no imgsz metadata: 640 assumed",
                       "pass --imgsz to match the training size, or re-export with imgsz"));
  } else if (h % stride || w % stride) {
    out.push_back(
        Make("metadata", "imgsz", Finding::kFail,
             "input size " + size + " is not a multiple of stride " + std::to_string(stride),
             "the detection grid does not tile the input: re-export at a multiple "
             "of the stride"));
  } else {
    out.push_back(Make(
        "metadata", "imgsz", Finding::kOk,
        size + (fixed ? " (fixed input)" : " (metadata)") + ", stride " + std::to_string(stride),
        "images are letterboxed to this size"));
  }
}

}  // namespace

ModelFacts ReadModelFacts(const std::vector<uint8_t>& bytes, const std::string& name) {
  onnx::ModelProto proto;
  if (bytes.empty() || bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) || !proto.has_graph()) {
    throw BadInput(name + ": not an ONNX model (protobuf parse failed or no graph)");
  }
  ModelFacts f;
  f.name = name;
  for (const auto& opset : proto.opset_import()) f.opsets[opset.domain()] = opset.version();
  std::set<std::string> initializers;
  for (const auto& init : proto.graph().initializer()) initializers.insert(init.name());
  for (const auto& input : proto.graph().input()) {
    if (!initializers.count(input.name())) f.inputs.push_back(model::ToTensorInfo(input));
  }
  for (const auto& output : proto.graph().output())
    f.outputs.push_back(model::ToTensorInfo(output));
  for (const auto& p : proto.metadata_props()) f.metadata[p.key()] = p.value();
  for (const auto& node : proto.graph().node()) ++f.op_counts[node.op_type()];
  return f;
}

std::vector<Finding> CheckModelFacts(const ModelFacts& f, const ModelCheckContext& context) {
  std::vector<Finding> out;
  CheckOpsets(f, context, out);
  CheckInput(f, out);
  static const char* const kKeys[] = {"names", "imgsz", "stride", "task"};
  std::vector<std::string> missing;
  for (const char* key : kKeys) {
    if (!f.metadata.count(key)) missing.push_back(key);
  }
  if (missing.size() == 4) {
    out.push_back(Make("metadata", "present", Finding::kWarn, "no Ultralytics metadata",
                       "task, size and class names are inferred (names 'class0'...): pass "
                       "--names/--task, or export with Ultralytics"));
  } else if (!missing.empty()) {
    std::string keys;
    for (const auto& k : missing) keys += (keys.empty() ? "" : ", ") + k;
    out.push_back(Make("metadata", "present", Finding::kWarn, "metadata lacks " + keys,
                       "those values are inferred from the tensors; check `cvdeploy info`"));
  } else {
    out.push_back(Make("metadata", "present", Finding::kOk, "Ultralytics metadata present",
                       "task, size, stride and names come from the model itself"));
  }
  const Declared d = ParseDeclared(f, out);
  CheckGeometry(f, d, out);
  if (!f.outputs.empty()) doctor::CheckLayout(f, d, out);
  doctor::CheckAxes(f, out);
  doctor::CheckPrecision(f, context, out);
  return out;
}

}  // namespace cvdeploy
