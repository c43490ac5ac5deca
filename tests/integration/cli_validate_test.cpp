// SPDX-License-Identifier: Apache-2.0
// `cvdeploy validate` through its COCO-json input and its error paths. The coco128 YOLO-txt
// figures are checked in tests/slow/validate_coco128_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
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
using cvdeploy::testing::RunCli;

TEST(CliValidateTest, CocoJsonOnTheSampleImages) {
  // bus.jpg (810x1080) labelled with the reference boxes of yolov8n-dq (x, y, w, h pixels,
  // COCO category ids 1 = person, 6 = bus); categories map to the model's names by name.
  const std::string dir = cvdeploy::testing::MakeTempDir("coco");
  fs::create_directories(dir + "/images");
  fs::copy_file(Asset("images/bus.jpg"), dir + "/images/bus.jpg");
  const nlohmann::json coco = {
      {"images", {{{"id", 7}, {"file_name", "bus.jpg"}, {"width", 810}, {"height", 1080}}}},
      {"annotations",
       {{{"id", 1},
         {"image_id", 7},
         {"category_id", 1},
         {"bbox", {671, 377, 139, 499}},
         {"iscrowd", 0}},
        {{"id", 2},
         {"image_id", 7},
         {"category_id", 1},
         {"bbox", {51, 397, 192, 507}},
         {"iscrowd", 0}},
        {{"id", 3},
         {"image_id", 7},
         {"category_id", 1},
         {"bbox", {222, 408, 121, 448}},
         {"iscrowd", 0}},
        {{"id", 4},
         {"image_id", 7},
         {"category_id", 6},
         {"bbox", {30, 231, 770, 539}},
         {"iscrowd", 0}}}},
      {"categories", {{{"id", 1}, {"name", "person"}}, {{"id", 6}, {"name", "bus"}}}}};
  std::ofstream(dir + "/instances.json") << coco.dump();
  const auto run = RunCli({"validate", "--model", Asset("models/yolov8n-dq.onnx"), "--data",
                           dir + "/instances.json", "--images", dir + "/images", "--json", "-"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j["images"], 1);
  EXPECT_EQ(j["instances"], 4);
  // Every label is found with an almost identical box: AP50 is the 101-point maximum.
  EXPECT_NEAR(j["map50"].get<double>(), 0.995, 1e-6);
  EXPECT_GT(j["map50_95"].get<double>(), 0.8);
  ASSERT_EQ(j["per_class"].size(), 2u);
  EXPECT_EQ(j["per_class"][0]["class_name"], "person");
  EXPECT_EQ(j["per_class"][0]["instances"], 3);
}

// Mask mAP under both mask rules. The polygon labels are the default rule's own outlines
// (predict --save-txt on the two sample images), so the default rule scores near the top and
// the retina rule, whose masks differ at the edges, a little lower; both report mask metrics
// and say which rule they used.
TEST(CliValidateTest, SegmentMaskMetricsUnderBothMaskRules) {
  const std::string dir = cvdeploy::testing::MakeTempDir("seg");
  fs::create_directories(dir + "/images");
  for (const std::string name : {"bus.jpg", "zidane.jpg"}) {
    std::string to = dir;
    to.append("/images/").append(name);
    fs::copy_file(Asset("images/" + name), to);
  }
  const std::string model = Asset("models/yolov8n-seg-dq.onnx");
  const auto labels = RunCli({"predict", "--model", model, "--source", dir + "/images",
                              "--save-dir", dir, "--save-txt", "--quiet"});
  ASSERT_EQ(labels.exit_code, 0) << labels.err;
  ASSERT_TRUE(fs::exists(dir + "/labels/bus.txt"));
  auto validate = [&](bool retina) {
    std::vector<std::string> args = {"validate", "--model", model, "--data", dir, "--json", "-"};
    if (retina) args.push_back("--retina-masks");
    const auto run = RunCli(args);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return nlohmann::json::parse(run.out);
  };
  const auto plain = validate(false), retina = validate(true);
  ASSERT_TRUE(plain.contains("mask")) << plain.dump();
  ASSERT_TRUE(retina.contains("mask")) << retina.dump();
  EXPECT_EQ(plain["mask"]["retina_masks"], false);
  EXPECT_EQ(retina["mask"]["retina_masks"], true);
  EXPECT_EQ(plain["map50_95"], retina["map50_95"]);  // the boxes do not depend on the rule
  const double a = plain["mask"]["map50_95"].get<double>();
  const double b = retina["mask"]["map50_95"].get<double>();
  std::printf("mask mAP50-95 on self-labelled bus+zidane: default %.3f, retina %.3f\n", a, b);
  EXPECT_GT(a, 0.8);
  EXPECT_GT(b, 0.5);
  EXPECT_NE(a, b);
}

TEST(CliValidateTest, MalformedLabelNamesFileAndLine) {
  const std::string dir = cvdeploy::testing::MakeTempDir("badlabels");
  fs::create_directories(dir + "/images");
  fs::create_directories(dir + "/labels");
  fs::copy_file(Asset("images/zidane.jpg"), dir + "/images/zidane.jpg");
  std::ofstream(dir + "/labels/zidane.txt") << "0 0.5 0.5 0.2 0.2\n0 0.5 x 0.2 0.2\n";
  const auto run = RunCli({"validate", "--model", Asset("models/yolov8n-dq.onnx"), "--data", dir});
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_NE(run.err.find("zidane.txt"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(":2"), std::string::npos) << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
}

TEST(CliValidateTest, CocoJsonNeedsImages) {
  const auto run =
      RunCli({"validate", "--model", Asset("models/yolov8n-dq.onnx"), "--data", "x.json"});
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_NE(run.err.find("--images"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace cvdeploy
