// SPDX-License-Identifier: Apache-2.0
// The doctor's model entry points (cvdeploy/doctor.h): the facts of a model file, the checks
// that need the engine (session, golden set), the preprocessing contract and the JSON report.
#include <algorithm>
#include <cctype>
#include <memory>
#include <string>
#include <vector>

#include "cvdeploy/doctor.h"
#include "cvdeploy/error.h"
#include "cvdeploy/predictor.h"
#include "eval/doctor_internal.h"

namespace cvdeploy {
namespace {

using doctor::Make;

ModelFacts FactsFromInfo(const ModelInfo& info) {
  ModelFacts f;
  f.name = info.path;
  f.opsets = info.opsets;
  f.inputs = info.inputs;
  f.outputs = info.outputs;
  f.metadata = info.meta.raw;
  return f;
}

}  // namespace

const char* LevelName(Finding::Level level) {
  switch (level) {
    case Finding::kOk:
      return "OK";
    case Finding::kWarn:
      return "WARN";
    case Finding::kFail:
      return "FAIL";
  }
  return "FAIL";
}

Finding::Level WorstLevel(const std::vector<Finding>& findings) {
  Finding::Level worst = Finding::kOk;
  for (const Finding& f : findings) worst = std::max(worst, f.level);
  return worst;
}

Finding PreprocessingFinding(const ModelMeta& meta) {
  const std::string size = std::to_string(meta.imgsz_w) + "x" + std::to_string(meta.imgsz_h);
  return Make("preprocess", "contract", Finding::kOk,
              "letterbox to " + size + " (aspect kept, centred, pad 114, INTER_LINEAR" +
                  (meta.dynamic ? ", rect unless --no-rect" : "") + "), BGR->RGB, /255, NCHW " +
                  (meta.half ? "float16" : "float32"),
              "the Ultralytics contract: feed KServe tensors preprocessed exactly like this");
}

Finding GoldenFinding(const Predictor& predictor, const GoldenDir& golden,
                      const std::string& source) {
  try {
    const GoldenReport report = CheckGolden(predictor, golden.set, golden.inputs);
    if (report.passed) {
      return Make("golden", "check", Finding::kOk, source + ": " + report.Summary(),
                  "this machine reproduces the recorded outputs");
    }
    return Make("golden", "check", Finding::kFail, source + ": " + report.Summary(),
                "the model, its preprocessing or this runtime differs from the recording: "
                "`cvdeploy golden check --json` lists every input");
  } catch (const std::exception& e) {
    return Make("golden", "check", Finding::kFail, source + ": cannot run: " + e.what(),
                "re-record the set with `cvdeploy golden record` for this model");
  }
}

std::vector<Finding> CheckModel(const Model& model, const ModelCheckContext& context,
                                const ModelCheckOptions& options) {
  const ModelInfo& info = model.info();
  const ModelFacts facts =
      model.bytes().empty() ? FactsFromInfo(info) : ReadModelFacts(model.bytes(), info.path);
  std::vector<Finding> out = CheckModelFacts(facts, context);
  for (const std::string& w : info.warnings) {
    if (w.find("dynamic quantization") != std::string::npos) continue;  // see "precision"
    out.push_back(Make("model", "load", Finding::kWarn, w, "see the warning's own advice"));
  }
  out.push_back(PreprocessingFinding(info.meta));
  std::unique_ptr<Predictor> predictor;
  try {
    SessionOptions session = options.session;
    session.keep_model_bytes = false;
    predictor = Predictor::Create(model, session);
    out.push_back(Make("model", "session", Finding::kOk,
                       "ONNX Runtime " + predictor->engine_version() + " loads it on " +
                           predictor->provider() + " (" + std::to_string(predictor->threads()) +
                           " threads)",
                       "ready to predict and serve"));
  } catch (const std::exception& e) {
    out.push_back(Make("model", "session", Finding::kFail, e.what(),
                       "the engine refuses the model: re-export it (opset, operators)"));
  }
  if (options.golden) {
    if (predictor) {
      out.push_back(GoldenFinding(*predictor, *options.golden, options.golden_source));
    } else {
      out.push_back(Make("golden", "check", Finding::kFail,
                         options.golden_source + ": not run (no engine session)",
                         "fix the session failure above first"));
    }
  }
  return out;
}

nlohmann::ordered_json FindingsToJson(const std::vector<Finding>& findings) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  int counts[3] = {0, 0, 0};
  for (const Finding& f : findings) {
    ++counts[f.level];
    std::string level = LevelName(f.level);
    for (char& c : level) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    list.push_back({{"area", f.area},
                    {"check", f.check},
                    {"level", level},
                    {"detail", f.detail},
                    {"advice", f.advice}});
  }
  std::string status = LevelName(WorstLevel(findings));
  for (char& c : status) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return {{"findings", list},
          {"counts", {{"ok", counts[0]}, {"warn", counts[1]}, {"fail", counts[2]}}},
          {"status", status}};
}

}  // namespace cvdeploy
