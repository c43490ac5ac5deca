// SPDX-License-Identifier: Apache-2.0
// Golden sets: record a model's outputs for a few inputs, check a model against them, and
// the golden directory (DIR/golden.json + the inputs). The JSON form is golden_json.cpp, the
// comparison golden_match.cpp.
#include "cvdeploy/golden.h"

#include <filesystem>
#include <set>
#include <string>
#include <utility>

#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "eval/golden_internal.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;

// Golden inputs are small sample images; a bigger file is refused unread.
constexpr uint64_t kMaxInputBytes = uint64_t{64} << 20;
constexpr uint64_t kMaxGoldenJsonBytes = uint64_t{64} << 20;

struct Run {
  Result result;
  std::vector<GoldenOutputSummary> outputs;
};

// The server's image path (Scheduler::ExecuteImages): decode for the model's input size,
// Prepare, Run, Decode, map back to the original size. Summaries come from the same Run.
Run RunInput(const Predictor& predictor, const GoldenInput& input, const PredictOptions& predict) {
  const ModelMeta& meta = predictor.meta();
  const cv::Size model_input = predict.imgsz > 0 ? cv::Size(predict.imgsz, predict.imgsz)
                                                 : cv::Size(meta.imgsz_w, meta.imgsz_h);
  cv::Size original;
  const cv::Mat image = DecodeImageForModel(input.bytes, input.name, model_input, &original);
  Batch batch = predictor.Prepare({image}, predict);
  const std::vector<NamedTensorView> outputs = predictor.Run(batch);
  Run run;
  for (const NamedTensorView& o : outputs) {
    run.outputs.push_back(golden::SummarizeOutput(o.name, o.tensor));
  }
  run.result = std::move(predictor.Decode(outputs, batch, predict).at(0));
  if (original != image.size()) RescaleResult(run.result, original);
  // What the JSON form keeps: masks and polygons are not recorded (boxes suffice), nor times.
  run.result.speed_ms = {};
  for (Detection& d : run.result.detections) {
    d.mask = cv::Mat();
    d.mask_roi = cv::Rect();
    d.polygon.clear();
    d.polygons.clear();
  }
  return run;
}

// A name for a message: at most 64 bytes, control bytes as '?'.
std::string Printable(const std::string& name) {
  std::string out = name.substr(0, 64);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

void CheckInputNames(const std::vector<GoldenInput>& inputs, const std::string& what) {
  if (inputs.empty()) throw InvalidArgument(what + ": no golden inputs");
  if (inputs.size() > golden::kMaxRecords) {
    throw InvalidArgument(what + ": " + std::to_string(inputs.size()) +
                          " golden inputs, more than the limit " +
                          std::to_string(golden::kMaxRecords));
  }
  std::set<std::string> names;
  for (const GoldenInput& in : inputs) {
    if (!golden::IsPlainFileName(in.name) || in.name == "golden.json") {
      throw BadInput(what + ": golden input name '" + Printable(in.name) +
                     "' is not a plain file name");
    }
    if (!names.insert(in.name).second) {
      throw BadInput(what + ": two golden inputs are named '" + in.name + "'");
    }
  }
}

std::string Sha256Of(const std::vector<uint8_t>& bytes) {
  return Sha256Hex(bytes.data(), bytes.size());
}

std::map<std::string, std::string> ContractOf(const ModelMeta& meta) {
  std::map<std::string, std::string> contract;
  for (const char* key : kGoldenContractKeys) {
    const auto it = meta.raw.find(key);
    if (it != meta.raw.end()) contract[key] = it->second;
  }
  return contract;
}

// A contract entry for messages: quoted and clipped to 60 bytes, or "(absent)".
std::string Shown(const std::map<std::string, std::string>& contract, const char* key) {
  const auto it = contract.find(key);
  if (it == contract.end()) return "(absent)";
  std::string out = "'";
  out.append(it->second, 0, 60);
  if (it->second.size() > 60) out.append("...");
  out.push_back('\'');
  return out;
}

}  // namespace

GoldenSet RecordGolden(const Predictor& predictor, const std::vector<GoldenInput>& inputs,
                       const PredictOptions& predict) {
  CheckInputNames(inputs, "golden record");
  const ModelMeta& meta = predictor.meta();
  GoldenSet set;
  set.model_sha256 = predictor.info().sha256;
  set.predict = predict;
  set.imgsz_h = meta.imgsz_h;
  set.imgsz_w = meta.imgsz_w;
  set.task = std::string(TaskName(meta.task));
  set.num_classes = static_cast<int>(meta.names.size());
  set.contract = ContractOf(meta);
  set.tolerance = DefaultGoldenTolerance();
  for (const GoldenInput& in : inputs) {
    Run run = RunInput(predictor, in, predict);
    set.records.push_back(
        {in.name, Sha256Of(in.bytes), std::move(run.result), std::move(run.outputs)});
  }
  return set;
}

GoldenReport CheckGolden(const Predictor& predictor, const GoldenSet& set,
                         const std::vector<GoldenInput>& inputs) {
  GoldenReport report;
  report.inputs = set.records.size();
  const ModelMeta& meta = predictor.meta();
  auto fail = [&](const std::string& input, const std::string& reason) {
    report.failures.push_back({input, reason});
  };
  if (set.task != TaskName(meta.task)) {
    fail("", "model task is " + std::string(TaskName(meta.task)) + ", recorded " + set.task);
  }
  if (set.num_classes != static_cast<int>(meta.names.size())) {
    fail("", "model has " + std::to_string(meta.names.size()) + " classes, recorded " +
                 std::to_string(set.num_classes));
  }
  if (set.imgsz_h != meta.imgsz_h || set.imgsz_w != meta.imgsz_w) {
    fail("", "preprocessing contract changed: model input " + std::to_string(meta.imgsz_h) + "x" +
                 std::to_string(meta.imgsz_w) + ", recorded " + std::to_string(set.imgsz_h) + "x" +
                 std::to_string(set.imgsz_w));
  }
  const auto contract = ContractOf(meta);
  for (const char* key : kGoldenContractKeys) {
    const std::string a = Shown(contract, key), b = Shown(set.contract, key);
    if (a != b) {
      std::string reason = "preprocessing contract changed: metadata ";
      reason.append(key).append(" is ").append(a).append(", recorded ").append(b);
      fail("", reason);
    }
  }
  if (set.records.empty()) fail("", "the golden set has no records");
  for (const GoldenRecord& rec : set.records) {
    const GoldenInput* input = nullptr;
    for (const GoldenInput& in : inputs) {
      if (in.name == rec.input) input = &in;
    }
    if (!input) {
      fail(rec.input, "input missing");
      continue;
    }
    if (Sha256Of(input->bytes) != rec.sha256) {
      fail(rec.input, "input changed since it was recorded (sha256 differs)");
      continue;
    }
    Run run;
    try {
      run = RunInput(predictor, *input, set.predict);
    } catch (const Error& e) {
      fail(rec.input, std::string("cannot run: ") + e.what());
      continue;
    }
    std::vector<std::string> reasons;
    golden::CompareStats stats;
    golden::CompareResults(rec.result, run.result, set.predict, set.tolerance, &stats, &reasons);
    golden::CompareOutputs(rec.outputs, run.outputs, set.tolerance, &reasons);
    report.detections_matched += stats.matched;
    report.detections_expected += stats.expected;
    for (std::string& r : reasons) fail(rec.input, std::move(r));
  }
  report.passed = report.failures.empty();
  return report;
}

std::string GoldenReport::Summary() const {
  const std::string counts = std::to_string(inputs) + " inputs, " +
                             std::to_string(detections_matched) + "/" +
                             std::to_string(detections_expected) + " detections matched";
  if (passed) return "golden set: passed (" + counts + ")";
  std::string first =
      failures.empty()
          ? std::string("no result")
          : (failures[0].input.empty() ? "" : failures[0].input + ": ") + failures[0].reason;
  return "golden set: FAILED (" + std::to_string(failures.size()) + " findings; " + counts +
         "): " + first;
}

void WriteGoldenDir(const std::string& dir, const GoldenSet& set,
                    const std::vector<GoldenInput>& inputs) {
  CheckInputNames(inputs, dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    throw Error(ErrorCode::kRuntime, dir + ": cannot create the golden directory" +
                                         (ec ? ": " + ec.message() : std::string()));
  }
  for (const GoldenInput& in : inputs) WriteFileAtomically(dir + "/" + in.name, in.bytes);
  const std::string json = GoldenSetToJson(set);
  WriteFileAtomically(dir + "/golden.json", std::vector<uint8_t>(json.begin(), json.end()));
}

GoldenDir ReadGoldenDir(const std::string& dir) {
  const std::string path = dir + "/golden.json";
  GoldenDir out;
  out.set = GoldenSetFromJson(ReadFileText(path, kMaxGoldenJsonBytes), path);
  for (const GoldenRecord& rec : out.set.records) {
    if (rec.input == "golden.json") throw BadInput(path + ": an input named golden.json");
    out.inputs.push_back(
        {rec.input, ReadFileBytes(dir + "/" + rec.input, false, kMaxInputBytes, "golden input")});
  }
  return out;
}

std::vector<GoldenInput> ReadGoldenInputs(const std::string& source) {
  std::vector<GoldenInput> inputs;
  for (const std::string& path : ExpandSources({source})) {
    if (HasVideoExtension(path)) throw BadInput(path + ": a video; golden inputs are images");
    inputs.push_back({fs::path(path).filename().string(),
                      ReadFileBytes(path, false, kMaxInputBytes, "golden input")});
  }
  CheckInputNames(inputs, source);
  return inputs;
}

}  // namespace cvdeploy
