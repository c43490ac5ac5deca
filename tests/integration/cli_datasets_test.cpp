// SPDX-License-Identifier: Apache-2.0
// Issue 18, "Their datasets and arguments" and "Tools that disagree", through the CLI with the
// real models on a few coco128 images:
//   - validate --data X.yaml [--split]: the same figures as the directory form, and the errors;
//   - a pose model on box-only labels: box mAP and the line saying OKS needs keypoints;
//   - a .pt/.engine/.tflite/.mlpackage model: one line with the export command, exit 3;
//   - output flags create missing parent directories (one rule for every command);
//   - info counts the parameters and FLOPs of a ConvInteger (dynamic quantization) model;
//   - compare: the confidence band, the mAP delta next to the agreement, the int8 model
//     against its float twin passes with the defaults;
//   - prune --val: the mAP before and after, and the plain verdict.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/assets.h"
#include "support/process.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;
using cvdeploy::testing::Asset;
using cvdeploy::testing::CocoStems;
using cvdeploy::testing::DescribeRun;
using cvdeploy::testing::ExpectCliError;
using cvdeploy::testing::MakeTempDir;
using cvdeploy::testing::RunCli;

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// The first `n` labelled coco128 images (sorted stems).
// A dataset root with images/val + labels/val (3 coco128 images), the same 3 images as a
// directory dataset (DIR/images, DIR/labels), and a YAML whose val split is an image list.
struct Fixture {
  std::string root, yaml, dir;
};

const Fixture& Data() {
  static const Fixture f = [] {
    Fixture x;
    x.root = MakeTempDir("datasets-yaml");
    x.dir = MakeTempDir("datasets-dir");
    const std::string coco = Asset("datasets/coco128");
    std::string list;
    for (const char* sub : {"/images/val", "/labels/val"}) fs::create_directories(x.root + sub);
    for (const char* sub : {"/images", "/labels"}) fs::create_directories(x.dir + sub);
    for (const std::string& stem : CocoStems(3)) {
      for (const std::string& to : {x.root + "/images/val/", x.dir + "/images/"}) {
        fs::copy_file(coco + "/images/" + stem + ".jpg", to + stem + ".jpg");
      }
      for (const std::string& to : {x.root + "/labels/val/", x.dir + "/labels/"}) {
        fs::copy_file(coco + "/labels/" + stem + ".txt", to + stem + ".txt");
      }
      list += "./images/val/" + stem + ".jpg\n";
    }
    std::ofstream(x.root + "/val.txt") << list;
    x.yaml = x.root + "/data.yaml";
    std::ofstream yaml(x.yaml);
    yaml << "path: .\ntrain: images/val\nval: val.txt\nnames:\n";
    std::ifstream names(coco + "/coco128.yaml");  // its "  N: name" lines
    for (std::string line; std::getline(names, line);) {
      if (line.rfind("  ", 0) == 0) yaml << line << "\n";
    }
    return x;
  }();
  return f;
}

// stdout as JSON; the exit code must be `code` (any when negative).
nlohmann::json RunJson(const std::vector<std::string>& args, int code = 0) {
  const auto run = RunCli(args);
  if (code >= 0) {
    EXPECT_EQ(run.exit_code, code) << DescribeRun(args, run);
  }
  try {
    return nlohmann::json::parse(run.out);
  } catch (const std::exception&) {
    ADD_FAILURE() << DescribeRun(args, run);
    return {};
  }
}

TEST(CliDatasetsTest, ValidateTakesADatasetYamlAndItsSplits) {
  const Fixture& d = Data();
  const std::string model = Asset("models/yolo11n-dq.onnx");
  const nlohmann::json by_dir =
      RunJson({"validate", "--model", model, "--data", d.dir, "--json", "-"});
  const nlohmann::json by_yaml =
      RunJson({"validate", "--model", model, "--data", d.yaml, "--json", "-"});
  ASSERT_TRUE(by_yaml.contains("map50_95")) << by_yaml.dump();
  EXPECT_EQ(by_yaml["images"], 3);
  EXPECT_EQ(by_yaml["split"], "val");
  EXPECT_EQ(by_yaml["instances"], by_dir["instances"]);
  EXPECT_DOUBLE_EQ(by_yaml["map50_95"].get<double>(), by_dir["map50_95"].get<double>());
  EXPECT_GT(by_yaml["map50_95"].get<double>(), 0.1);
  // --split train reads the directory entry: the same 4 images.
  const nlohmann::json train =
      RunJson({"validate", "--model", model, "--data", d.yaml, "--split", "train", "--json", "-"});
  EXPECT_DOUBLE_EQ(train["map50_95"].get<double>(), by_dir["map50_95"].get<double>());
  // The errors: a split the file lacks (exit 3, naming those it has), a bad split name (2).
  ExpectCliError({"validate", "--model", model, "--data", d.yaml, "--split", "test"}, 3,
                 "no 'test' split (the file has train, val)");
  const auto bad = RunCli({"validate", "--model", model, "--data", d.yaml, "--split", "valid"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_TRUE(Contains(bad.err, "--split")) << bad.err;
  ExpectCliError({"validate", "--model", model, "--data", d.root + "/none.yaml"}, 3, "none.yaml");
}

TEST(CliDatasetsTest, PoseModelOnBoxOnlyLabelsGivesBoxMap) {
  // coco128's labels are boxes of 80 classes; the pose model has one (person): a label file
  // with only the persons' lines is what a box-only person dataset looks like.
  const std::string root = MakeTempDir("datasets-pose");
  fs::create_directories(root + "/images");
  fs::create_directories(root + "/labels");
  const std::string coco = Asset("datasets/coco128");
  for (const std::string& stem : CocoStems(3)) {
    fs::copy_file(coco + "/images/" + stem + ".jpg", root + "/images/" + stem + ".jpg");
    std::ifstream in(coco + "/labels/" + stem + ".txt");
    std::ofstream out(root + "/labels/" + stem + ".txt");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("0 ", 0) == 0) out << line << "\n";
    }
  }
  const std::vector<std::string> args = {"validate", "--model",
                                         Asset("models/yolo11n-pose-dq.onnx"), "--data", root};
  const auto run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  EXPECT_TRUE(Contains(run.out, "Box metrics")) << run.out;
  EXPECT_TRUE(Contains(run.out, "OKS mAP needs keypoint labels")) << run.out;
  EXPECT_FALSE(Contains(run.out, "Pose (OKS) metrics\n")) << run.out;
}

TEST(CliDatasetsTest, OtherFrameworksModelsGetTheExportHint) {
  const std::string dir = MakeTempDir("datasets-foreign");
  // A PyTorch checkpoint is a zip archive; the others are named by their extension.
  std::ofstream(dir + "/yolo11n.pt") << std::string("PK\x03\x04", 4) << "data.pkl";
  std::ofstream(dir + "/yolo11n.engine") << "\x01\x02\x03 not protobuf";
  std::ofstream(dir + "/yolo11n.tflite") << std::string("\x1c\0\0\0TFL3", 8);
  fs::create_directories(dir + "/yolo11n.mlpackage/Data");
  for (const char* name : {"yolo11n.pt", "yolo11n.engine", "yolo11n.tflite", "yolo11n.mlpackage"}) {
    const std::string model = dir + "/" + std::string(name);
    ExpectCliError({"info", model}, 3, "yolo export model=" + model + " format=onnx");
    ExpectCliError({"predict", "--model", model, "--source", Asset("images/bus.jpg")}, 3,
                   "not an ONNX model");
  }
  ExpectCliError({"fp16", "--model", dir + "/yolo11n.pt", "--out", dir + "/o.onnx"}, 3,
                 "a PyTorch checkpoint, not an ONNX model");
  // A zip archive under any name is recognised by its first bytes.
  fs::copy_file(dir + "/yolo11n.pt", dir + "/renamed.onnx");
  ExpectCliError({"info", dir + "/renamed.onnx"}, 3, "a zip archive");
  // A broken .onnx keeps its own message.
  std::ofstream(dir + "/broken.onnx") << "not a model";
  ExpectCliError({"info", dir + "/broken.onnx"}, 3, "not a valid ONNX model");
}

TEST(CliDatasetsTest, OutputFlagsCreateMissingParentDirectories) {
  const std::string dir = MakeTempDir("datasets-out");
  const std::string model = Asset("models/yolov8n-dq.onnx");
  const std::string bus = Asset("images/bus.jpg");
  const Fixture& d = Data();
  struct Case {
    std::vector<std::string> args;
    std::string output;
  };
  const std::vector<Case> cases = {
      {{"validate", "--model", model, "--data", d.dir, "--json", dir + "/v/a/m.json", "--save-json",
        dir + "/v/b/p.json"},
       dir + "/v/b/p.json"},
      {{"predict", "--model", model, "--source", bus, "--json", dir + "/p/r.jsonl", "--save-dir",
        dir + "/p/s/t"},
       dir + "/p/s/t/bus.jpg"},
      {{"convert", "--model", model, "--dynamic-batch", "--output", dir + "/c/d/m.onnx"},
       dir + "/c/d/m.onnx"},
      {{"compare", "--model", model, "--model", model, "--source", bus, "--json",
        dir + "/cmp/r.json"},
       dir + "/cmp/r.json"},
  };
  for (const Case& c : cases) {
    const auto run = RunCli(c.args);
    EXPECT_EQ(run.exit_code, 0) << DescribeRun(c.args, run);
    EXPECT_TRUE(fs::is_regular_file(c.output)) << c.output;
  }
  EXPECT_TRUE(fs::is_regular_file(dir + "/v/a/m.json"));
  EXPECT_TRUE(fs::is_regular_file(dir + "/p/r.jsonl"));
  // A parent that cannot be a directory (a file is in the way): a usage error naming it.
  std::ofstream(dir + "/file") << "x";
  ExpectCliError({"convert", "--model", model, "--dynamic-batch", "--output", dir + "/file/m.onnx"},
                 2, "cannot create directory " + dir + "/file");
  ExpectCliError({"compare", "--model", model, "--model", model, "--source", bus, "--json",
                  dir + "/file/r.json"},
                 2, "--json " + dir + "/file/r.json: cannot create directory");
}

TEST(CliDatasetsTest, InfoCountsDynamicQuantizationModels) {
  const nlohmann::json int8 = RunJson({"info", Asset("models/yolov8n_int8.onnx"), "--json"});
  const nlohmann::json dq = RunJson({"info", Asset("models/yolov8n-dq.onnx"), "--json"});
  ASSERT_TRUE(int8.contains("cost")) << int8.dump();
  // yolov8n-dq is the same network with the int8 weights written back as float Conv weights
  // (assets MANIFEST): the same parameters and Conv FLOPs.
  EXPECT_GT(int8["cost"]["params"].get<double>(), 3.0e6);
  EXPECT_EQ(int8["cost"]["params"], dq["cost"]["params"]);
  EXPECT_NEAR(int8["cost"]["gflops"].get<double>(), dq["cost"]["gflops"].get<double>(), 1e-9);
  EXPECT_TRUE(int8["cost"]["complete"].get<bool>());
}

TEST(CliDatasetsTest, CompareBandAndMapDelta) {
  const Fixture& d = Data();
  const std::string f32 = Asset("models/yolov8n-dq.onnx");
  const std::string int8 = Asset("models/yolov8n_int8.onnx");
  // The dynamically quantized model against its float twin, with the defaults, on 2 images
  // (its ConvInteger kernels are slow): it passes, and the line under the report puts the mAP
  // delta next to the agreement.
  const std::string report = MakeTempDir("datasets-compare") + "/report.json";
  const std::vector<std::string> args = {"compare", "--model",      f32, "--model", int8,  "--data",
                                         d.yaml,    "--max-images", "2", "--json",  report};
  const auto run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  EXPECT_TRUE(Contains(run.out, "PASS  agreement")) << run.out;
  EXPECT_TRUE(Contains(run.out, "(IoU >= 0.5, conf 0.25 +- 0.05); mAP50-95 ")) << run.out;
  const nlohmann::json banded = nlohmann::json::parse(std::ifstream(report));
  // Without the band every detection at conf >= 0.25 is counted.
  const nlohmann::json plain =
      RunJson({"compare", "--model", f32, "--model", int8, "--data", d.yaml, "--max-images", "2",
               "--conf-band", "0", "--json", "-"},
              -1);
  ASSERT_TRUE(plain.contains("detections")) << plain.dump();
  EXPECT_DOUBLE_EQ(banded["thresholds"]["conf_band"].get<double>(), 0.05);
  EXPECT_DOUBLE_EQ(banded["thresholds"]["match_iou"].get<double>(), 0.5);
  EXPECT_TRUE(banded.contains("map50_95_delta"));
  const auto& b = banded["detections"];
  const auto& p = plain["detections"];
  EXPECT_LE(b["a_total"].get<long>(), p["a_total"].get<long>());
  EXPECT_GT(b["a_total"].get<long>(), 0);
  EXPECT_LE(b["matched"].get<long>(), b["a_total"].get<long>());
  EXPECT_LE(b["b_matched"].get<long>(), b["b_total"].get<long>());
  EXPECT_LE(b["iou_mean"].get<double>(), 1.0);
  EXPECT_GE(b["iou_min"].get<double>(), 0.5);
}

TEST(CliDatasetsTest, PruneValPrintsTheMapAndAPlainVerdict) {
  const Fixture& d = Data();
  const std::string out = MakeTempDir("datasets-prune") + "/new/dir/pruned.onnx";
  const std::vector<std::string> args = {"prune",   "--model", Asset("models/yolov8n-dq.onnx"),
                                         "--ratio", "0.5",     "--val",
                                         d.yaml,    "--out",   out};
  const auto run = RunCli(args);
  ASSERT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  EXPECT_TRUE(fs::is_regular_file(out));
  EXPECT_TRUE(Contains(run.out, "mAP50-95   ")) << run.out;
  EXPECT_TRUE(Contains(run.out, "on 3 images of " + d.yaml)) << run.out;
  // Half the channels of every group gone, no fine-tuning: the mAP collapses.
  EXPECT_TRUE(Contains(run.out, "UNUSABLE   without fine-tuning")) << run.out;
  ExpectCliError({"prune", "--model", Asset("models/yolov8n-dq.onnx"), "--ratio", "0.5", "--val",
                  d.root + "/nothing", "--out", out},
                 3, "--val " + d.root + "/nothing");
  const auto help = RunCli({"prune", "--help"});
  for (const char* method : {"l1", "l2", "activation"}) {
    EXPECT_TRUE(Contains(help.out, method)) << help.out;
  }
}

}  // namespace
}  // namespace cvdeploy
