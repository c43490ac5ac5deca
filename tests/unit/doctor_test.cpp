// SPDX-License-Identifier: Apache-2.0
// The doctor's checks on crafted inputs (cvdeploy/doctor.h): a consistent YOLO detect model is
// all OK, and each metadata inconsistency, opset, axis and precision trap is triggered
// deliberately and must produce its WARN or FAIL; the environment checks likewise on crafted
// EnvironmentFacts; ReadModelFacts and the JSON report on real bytes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cvdeploy/doctor.h"
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "support/assets.h"

namespace cvdeploy {
namespace {

TensorInfo Tensor(const std::string& name, std::vector<int64_t> shape,
                  const std::string& type = "float32") {
  TensorInfo t;
  t.name = name;
  t.type = type;
  t.shape = std::move(shape);
  t.dim_names.assign(t.shape.size(), "");
  return t;
}

std::string Names(int n) {
  std::string s = "{";
  for (int i = 0; i < n; ++i)
    s += (i ? ", " : "") + std::to_string(i) + ": 'c" + std::to_string(i) + "'";
  return s + "}";
}

// YOLO11n detect as exported by Ultralytics: everything consistent.
ModelFacts Detect() {
  ModelFacts f;
  f.name = "crafted.onnx";
  f.opsets = {{"", 17}};
  f.inputs = {Tensor("images", {1, 3, 640, 640})};
  f.outputs = {Tensor("output0", {1, 84, 8400})};
  f.metadata = {{"task", "detect"},
                {"imgsz", "[640, 640]"},
                {"stride", "32"},
                {"batch", "1"},
                {"names", Names(80)}};
  f.op_counts = {{"Conv", 88}, {"Sigmoid", 80}};
  return f;
}

ModelCheckContext Context(std::vector<std::string> isa = {"sse4_2", "avx", "avx2", "avx512_vnni"}) {
  ModelCheckContext c;
  c.machine.isa = std::move(isa);
  c.engine.version = "1.30.0";
  c.engine.max_opset = 23;
  return c;
}

const Finding* Find(const std::vector<Finding>& findings, const std::string& area,
                    const std::string& check) {
  for (const Finding& f : findings) {
    if (f.area == area && f.check == check) return &f;
  }
  return nullptr;
}

std::string Dump(const std::vector<Finding>& findings) {
  std::string s;
  for (const Finding& f : findings) {
    s += std::string(LevelName(f.level)) + " " + f.area + "/" + f.check + ": " + f.detail + "\n";
  }
  return s;
}

// Expects the finding area/check at `level` (with `text` in its detail).
void Expect(const std::vector<Finding>& findings, const std::string& area, const std::string& check,
            Finding::Level level, const std::string& text = "") {
  const Finding* f = Find(findings, area, check);
  ASSERT_NE(f, nullptr) << area << "/" << check << " missing in\n" << Dump(findings);
  EXPECT_EQ(f->level, level) << Dump(findings);
  EXPECT_NE(f->detail.find(text), std::string::npos) << f->detail;
  EXPECT_FALSE(f->advice.empty()) << area << "/" << check;
}

TEST(DoctorModel, ConsistentDetectModelIsAllOk) {
  const auto findings = CheckModelFacts(Detect(), Context());
  EXPECT_EQ(WorstLevel(findings), Finding::kOk) << Dump(findings);
  Expect(findings, "model", "opset", Finding::kOk, "opset 17");
  Expect(findings, "metadata", "names", Finding::kOk, "80 class names");
  Expect(findings, "metadata", "task", Finding::kOk, "channels-first");
  Expect(findings, "axes", "batch", Finding::kOk, "fixed at 1");
  Expect(findings, "axes", "spatial", Finding::kOk, "fixed");
  Expect(findings, "precision", "type", Finding::kOk);
}

TEST(DoctorModel, NamesCountAgainstOutputChannelsFails) {
  ModelFacts f = Detect();
  f.metadata["names"] = Names(79);
  Expect(CheckModelFacts(f, Context()), "metadata", "names", Finding::kFail, "79 classes");
}

TEST(DoctorModel, UnparsableMetadataFails) {
  ModelFacts f = Detect();
  f.metadata["names"] = "{0: 'a', 2: 'b'}";  // ids not contiguous
  Expect(CheckModelFacts(f, Context()), "metadata", "names", Finding::kFail, "cannot be parsed");
  f = Detect();
  f.metadata["imgsz"] = "[640, x]";
  Expect(CheckModelFacts(f, Context()), "metadata", "imgsz", Finding::kFail, "cannot be parsed");
  f = Detect();
  f.metadata["task"] = "tracking";
  Expect(CheckModelFacts(f, Context()), "metadata", "task", Finding::kFail, "tracking");
}

TEST(DoctorModel, ImgszAgainstFixedInputWarns) {
  ModelFacts f = Detect();
  f.metadata["imgsz"] = "[480, 480]";
  Expect(CheckModelFacts(f, Context()), "metadata", "imgsz", Finding::kWarn, "480x480");
}

TEST(DoctorModel, ImgszNotAMultipleOfStrideFails) {
  ModelFacts f = Detect();
  f.inputs = {Tensor("images", {1, 3, -1, -1})};
  f.metadata["imgsz"] = "[630, 630]";
  Expect(CheckModelFacts(f, Context()), "metadata", "imgsz", Finding::kFail, "stride 32");
  f.metadata["stride"] = "24";
  f.metadata["imgsz"] = "[480, 480]";
  Expect(CheckModelFacts(f, Context()), "metadata", "stride", Finding::kFail, "power of two");
}

TEST(DoctorModel, DynamicInputWithoutImgszWarns) {
  ModelFacts f = Detect();
  f.inputs = {Tensor("images", {-1, 3, -1, -1})};
  f.metadata.erase("imgsz");
  const auto findings = CheckModelFacts(f, Context());
  Expect(findings, "metadata", "imgsz", Finding::kWarn, "640 assumed");
  Expect(findings, "metadata", "present", Finding::kWarn, "imgsz");
  Expect(findings, "axes", "batch", Finding::kOk, "dynamic batch");
  Expect(findings, "axes", "spatial", Finding::kOk, "dynamic");
}

TEST(DoctorModel, NoMetadataWarns) {
  ModelFacts f = Detect();
  f.metadata.clear();
  const auto findings = CheckModelFacts(f, Context());
  Expect(findings, "metadata", "present", Finding::kWarn, "no Ultralytics metadata");
  Expect(findings, "metadata", "task", Finding::kOk, "(inferred)");
  EXPECT_EQ(Find(findings, "metadata", "names"), nullptr);
}

TEST(DoctorModel, TaskAgainstOutputLayoutFails) {
  ModelFacts f = Detect();
  f.metadata["task"] = "classify";  // but the output is a rank-3 detection head
  Expect(CheckModelFacts(f, Context()), "metadata", "task", Finding::kFail, "[B, nc]");
  f = Detect();
  f.metadata["task"] = "segment";  // no prototype output
  Expect(CheckModelFacts(f, Context()), "metadata", "task", Finding::kFail, "prototype");
  f = Detect();
  f.metadata["task"] = "pose";
  f.metadata["kpt_shape"] = "[17, 3]";  // 84 - 4 - 51 = 29 classes, 80 names
  Expect(CheckModelFacts(f, Context()), "metadata", "names", Finding::kFail, "has 29");
  f.metadata["kpt_shape"] = "[27, 3]";  // 84 - 4 - 81 < 1: no class channels left
  Expect(CheckModelFacts(f, Context()), "metadata", "task", Finding::kFail, "no class channels");
}

TEST(DoctorModel, PoseWithoutKptShapeWarns) {
  ModelFacts f = Detect();
  f.outputs = {Tensor("output0", {1, 56, 8400})};
  f.metadata["task"] = "pose";
  f.metadata["names"] = Names(1);
  const auto findings = CheckModelFacts(f, Context());
  Expect(findings, "metadata", "kpt_shape", Finding::kWarn, "17x3");
  Expect(findings, "metadata", "names", Finding::kOk, "1 class names");
}

TEST(DoctorModel, SegmentAndClassifyAndEndToEndLayouts) {
  ModelFacts seg = Detect();
  seg.metadata["task"] = "segment";
  seg.outputs = {Tensor("output0", {1, 116, 8400}), Tensor("output1", {1, 32, 160, 160})};
  EXPECT_EQ(WorstLevel(CheckModelFacts(seg, Context())), Finding::kOk);
  ModelFacts cls = Detect();
  cls.metadata["task"] = "classify";
  cls.outputs = {Tensor("output0", {1, 80})};
  EXPECT_EQ(WorstLevel(CheckModelFacts(cls, Context())), Finding::kOk);
  cls.outputs = {Tensor("output0", {1, 1000})};
  Expect(CheckModelFacts(cls, Context()), "metadata", "names", Finding::kFail, "has 1000");
  ModelFacts e2e = Detect();
  e2e.metadata["end2end"] = "True";
  e2e.outputs = {Tensor("output0", {1, 300, 6})};
  Expect(CheckModelFacts(e2e, Context()), "metadata", "task", Finding::kOk, "end-to-end");
  e2e.outputs = {Tensor("output0", {1, 300, 7})};
  Expect(CheckModelFacts(e2e, Context()), "metadata", "task", Finding::kFail, "end-to-end");
}

TEST(DoctorModel, OpsetAgainstTheEngine) {
  ModelFacts f = Detect();
  f.opsets[""] = 24;
  Expect(CheckModelFacts(f, Context()), "model", "opset", Finding::kFail, "24 > 23");
  f.opsets[""] = 6;
  Expect(CheckModelFacts(f, Context()), "model", "opset", Finding::kFail, "7 and later");
  f.opsets.clear();
  Expect(CheckModelFacts(f, Context()), "model", "opset", Finding::kFail, "no ai.onnx");
  f.opsets = {{"", 17}, {"com.example", 1}};
  const auto findings = CheckModelFacts(f, Context());
  EXPECT_EQ(WorstLevel(findings), Finding::kWarn) << Dump(findings);
  ModelCheckContext unknown = Context();
  unknown.engine.max_opset = 0;
  Expect(CheckModelFacts(Detect(), unknown), "model", "opset", Finding::kWarn, "unknown");
}

TEST(DoctorModel, InputThatCvdeployCannotFeedFails) {
  ModelFacts f = Detect();
  f.inputs = {Tensor("images", {1, 3, 640, 640}, "uint8")};
  Expect(CheckModelFacts(f, Context()), "model", "input", Finding::kFail, "uint8");
  f.inputs.push_back(Tensor("extra", {1}));
  Expect(CheckModelFacts(f, Context()), "model", "input", Finding::kFail, "2 inputs");
}

TEST(DoctorModel, PrecisionTraps) {
  ModelFacts dyn = Detect();
  dyn.op_counts["ConvInteger"] = 64;
  dyn.op_counts["DynamicQuantizeLinear"] = 64;
  Expect(CheckModelFacts(dyn, Context()), "precision", "quantization", Finding::kWarn,
         "64 ConvInteger");
  ModelCheckContext gpu = Context();
  gpu.device = "cuda";
  Expect(CheckModelFacts(dyn, gpu), "precision", "quantization", Finding::kOk);

  ModelFacts qdq = Detect();
  qdq.op_counts["QuantizeLinear"] = 70;
  qdq.op_counts["DequantizeLinear"] = 150;
  Expect(CheckModelFacts(qdq, Context()), "precision", "quantization", Finding::kOk,
         "VNNI present");
  Expect(CheckModelFacts(qdq, Context({"sse4_2", "avx", "avx2"})), "precision", "quantization",
         Finding::kWarn, "VNNI absent");

  ModelFacts half = Detect();
  half.inputs = {Tensor("images", {1, 3, 640, 640}, "float16")};
  Expect(CheckModelFacts(half, Context()), "precision", "float16", Finding::kWarn, "cpu");
  Expect(CheckModelFacts(half, gpu), "precision", "float16", Finding::kOk);
}

TEST(DoctorModel, PreprocessingContract) {
  ModelMeta meta;
  meta.imgsz_h = 480;
  meta.imgsz_w = 640;
  meta.dynamic = true;
  const Finding f = PreprocessingFinding(meta);
  EXPECT_EQ(f.level, Finding::kOk);
  EXPECT_NE(f.detail.find("640x480"), std::string::npos) << f.detail;
  EXPECT_NE(f.detail.find("pad 114"), std::string::npos) << f.detail;
  EXPECT_NE(f.detail.find("BGR->RGB"), std::string::npos) << f.detail;
  EXPECT_NE(f.detail.find("rect"), std::string::npos) << f.detail;
}

TEST(DoctorModel, ReadModelFactsFromRealBytes) {
  const std::string path = testing::Asset("models/yolov8n_int8.onnx");
  const ModelFacts f = ReadModelFacts(ReadModelBytes(path), path);
  ASSERT_EQ(f.inputs.size(), 1u);
  EXPECT_EQ(f.inputs[0].shape, (std::vector<int64_t>{1, 3, 640, 640}));
  EXPECT_GT(f.op_counts.at("ConvInteger"), 0);
  EXPECT_TRUE(f.metadata.count("names"));
  EXPECT_GT(f.opsets.at(""), 0);
  const std::vector<uint8_t> junk = {'n', 'o', 't', ' ', 'o', 'n', 'n', 'x'};
  EXPECT_THROW(ReadModelFacts(junk, "junk.onnx"), Error);
}

TEST(DoctorEngine, MaxOpsetFromTheVersionMatrix) {
  EXPECT_EQ(OrtMaxOpset("1.30.0"), 23);
  EXPECT_EQ(OrtMaxOpset("1.23.2"), 23);
  EXPECT_EQ(OrtMaxOpset("1.21.0"), 22);
  EXPECT_EQ(OrtMaxOpset("1.18.1"), 21);
  EXPECT_EQ(OrtMaxOpset("1.14.0"), 18);
  EXPECT_EQ(OrtMaxOpset("2.0.0"), 23);
  EXPECT_EQ(OrtMaxOpset("1.5.0"), 0);
  EXPECT_EQ(OrtMaxOpset("garbage"), 0);
  const EngineInfo engine = DetectEngine();
  EXPECT_EQ(engine.max_opset, OrtMaxOpset(engine.version));
  EXPECT_GE(engine.max_opset, 21) << engine.version;
  EXPECT_FALSE(engine.providers.empty());
}

EnvironmentFacts GoodEnvironment() {
  EnvironmentFacts e;
  e.machine.cpu_model = "Test CPU";
  e.machine.logical_cores = 8;
  e.machine.physical_cores = 4;
  e.machine.isa = {"sse4_2", "avx", "avx2", "f16c", "avx512f", "avx512_vnni"};
  e.machine.memory_gib = 16;
  e.engine = {"1.30.0", 21, {"CPUExecutionProvider"}, 23};
  e.opencv_version = "4.6.0";
  e.opencv_parallel = "pthreads";
  e.opencv_threads = 8;
  e.image_codecs = {{"jpg", true}, {"png", true}, {"webp", true}};
  e.video_backends = {"FFMPEG", "V4L2"};
  e.affinity_cpus = 8;
  return e;
}

TEST(DoctorEnvironment, HealthyMachineIsAllOk) {
  const auto findings = CheckEnvironment(GoodEnvironment());
  EXPECT_EQ(WorstLevel(findings), Finding::kOk) << Dump(findings);
  Expect(findings, "threads", "plan", Finding::kOk, "4 physical cores");
  Expect(findings, "engine", "version", Finding::kOk, "1.30.0");
}

TEST(DoctorEnvironment, EachProblemIsReported) {
  EnvironmentFacts e = GoodEnvironment();
  e.machine.isa = {"sse4_2", "avx"};
  auto findings = CheckEnvironment(e);
  Expect(findings, "cpu", "isa", Finding::kWarn, "no AVX2");
  Expect(findings, "cpu", "precision", Finding::kWarn, "VNNI/AMX): no");

  e = GoodEnvironment();
  e.affinity_cpus = 2;
  e.cpu_quota = 1.5;
  e.machine.memory_gib = 1;
  e.env = {{"OMP_NUM_THREADS", "8"}};
  findings = CheckEnvironment(e);
  Expect(findings, "cpu", "affinity", Finding::kWarn, "2 of 8");
  Expect(findings, "cpu", "quota", Finding::kWarn, "1.50");
  Expect(findings, "memory", "total", Finding::kWarn, "1.0 GiB");
  Expect(findings, "threads", "environment", Finding::kWarn, "OMP_NUM_THREADS=8");

  e = GoodEnvironment();
  e.image_codecs["webp"] = false;
  e.video_backends = {"V4L2"};
  findings = CheckEnvironment(e);
  Expect(findings, "opencv", "image codecs", Finding::kWarn, "missing: webp");
  Expect(findings, "opencv", "video", Finding::kWarn, "V4L2");
  e.image_codecs["png"] = false;
  Expect(CheckEnvironment(e), "opencv", "image codecs", Finding::kFail, "png");

  e = GoodEnvironment();
  e.engine.version.clear();
  Expect(CheckEnvironment(e), "engine", "version", Finding::kFail);
}

TEST(DoctorEnvironment, DetectsThisMachine) {
  const EnvironmentFacts e = DetectEnvironment();
  EXPECT_GE(e.machine.logical_cores, 1);
  EXPECT_FALSE(e.opencv_version.empty());
  EXPECT_TRUE(e.image_codecs.at("jpg"));
  EXPECT_TRUE(e.image_codecs.at("png"));
  EXPECT_GE(e.affinity_cpus, 1);
  EXPECT_FALSE(CheckEnvironment(e).empty());
}

TEST(DoctorReport, Json) {
  std::vector<Finding> findings = {{"cpu", "isa", Finding::kOk, "avx2", "fine"},
                                   {"model", "names", Finding::kFail, "79 vs 80", "fix names"},
                                   {"axes", "batch", Finding::kWarn, "x", "y"}};
  const auto j = FindingsToJson(findings);
  EXPECT_EQ(j["status"], "fail");
  EXPECT_EQ(j["counts"]["ok"], 1);
  EXPECT_EQ(j["counts"]["warn"], 1);
  EXPECT_EQ(j["counts"]["fail"], 1);
  ASSERT_EQ(j["findings"].size(), 3u);
  EXPECT_EQ(j["findings"][1]["level"], "fail");
  EXPECT_EQ(j["findings"][1]["advice"], "fix names");
  EXPECT_EQ(FindingsToJson({})["status"], "ok");
  EXPECT_EQ(WorstLevel({}), Finding::kOk);
}

}  // namespace
}  // namespace cvdeploy
