// SPDX-License-Identifier: Apache-2.0
// Ultralytics-format exports: label text (Results.save_txt), crop rectangles and file names
// (save_one_box, increment_path), COCO prediction entries (pred_to_json).
#include "cvdeploy/export.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "support/assets.h"
#include "vision/obb.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;

Detection Box(float x1, float y1, float x2, float y2, int cls, float conf,
              const std::string& name = "thing") {
  Detection d;
  d.class_id = cls;
  d.class_name = name;
  d.confidence = conf;
  d.box = {x1, y1, x2, y2};
  return d;
}

Result Make(Task task, std::vector<Detection> dets, int w = 200, int h = 100) {
  Result r;
  r.width = w;
  r.height = h;
  r.task = task;
  r.detections = std::move(dets);
  return r;
}

// Naive reference: the numbers of a label line, parsed back.
std::vector<double> Numbers(const std::string& line) {
  std::istringstream in(line);
  std::vector<double> v;
  double x;
  while (in >> x) v.push_back(x);
  return v;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

TEST(ExportTest, DetectLinesAreClassCentreSizeNormalizedInPercentG) {
  const Result r =
      Make(Task::kDetect, {Box(20, 10, 60, 50, 3, 0.5f), Box(0, 0, 200.f / 3, 100, 0, 0.25f)});
  EXPECT_EQ(LabelText(r, false), "3 0.2 0.3 0.2 0.4\n0 0.166667 0.5 0.333333 1\n");
  EXPECT_EQ(LabelText(r, true), "3 0.2 0.3 0.2 0.4 0.5\n0 0.166667 0.5 0.333333 1 0.25\n");
  // Tiny values switch to exponent notation as Python's "%g" does.
  const Result tiny = Make(Task::kDetect, {Box(0, 0, 0.002f, 100, 1, 0.9f)});
  EXPECT_EQ(Lines(LabelText(tiny, false))[0].substr(0, 8), "1 5e-06 ");
  EXPECT_EQ(LabelText(Make(Task::kDetect, {}), true), "");
}

TEST(ExportTest, SegmentLinesAreTheNormalizedPolygon) {
  Detection d = Box(10, 10, 50, 50, 2, 0.75f);
  // Two parts: the label line is Detection::polygon, the path through both parts (as
  // Ultralytics' masks2segments joins them), not the largest contour alone.
  d.polygons = {{{10, 20}, {50, 20}, {50, 60}}, {{0, 0}, {1, 1}, {2, 0}}};
  d.polygon = {{10, 20}, {50, 20}, {50, 60}, {10, 20}, {0, 0}, {1, 1}, {2, 0}, {0, 0}};
  const std::string text = LabelText(Make(Task::kSegment, {d}), true);
  EXPECT_EQ(text, "2 0.05 0.2 0.25 0.2 0.25 0.6 0.05 0.2 0 0 0.005 0.01 0.01 0 0 0 0.75\n");
  Detection empty = Box(10, 10, 50, 50, 4, 0.5f);
  EXPECT_EQ(LabelText(Make(Task::kSegment, {empty}), false), "4\n");
}

TEST(ExportTest, PoseLinesAppendKeypointsHiddenOnesZeroed) {
  Detection d = Box(20, 10, 60, 50, 0, 0.9f);
  d.keypoints = {{100, 50, 0.9f}, {150, 25, 0.4f}, {50, 75, 0.5f}};
  const auto three = Numbers(LabelText(Make(Task::kPose, {d}), false));
  ASSERT_EQ(three.size(), 5u + 3 * 3);
  const std::vector<double> expected = {0,   0.2, 0.3, 0.2, 0.4,  0.5,  0.5,
                                        0.9, 0,   0,   0.4, 0.25, 0.75, 0.5};
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(three[i], expected[i], 1e-6) << i;
  // kpt_shape [N, 2]: no visibility column and nothing zeroed.
  const auto two = Numbers(LabelText(Make(Task::kPose, {d}), true, 2));
  ASSERT_EQ(two.size(), 5u + 3 * 2 + 1);
  EXPECT_NEAR(two[7], 0.75, 1e-6);  // the 0.4-visibility point keeps its x
  EXPECT_NEAR(two.back(), 0.9, 1e-6);
}

TEST(ExportTest, ObbLinesAreTheFourCornersInUltralyticsOrder) {
  Detection d = Box(0, 0, 0, 0, 1, 0.6f);
  d.rotated = RotatedBox{100, 50, 40, 20, 0.3f};
  const auto v = Numbers(LabelText(Make(Task::kObb, {d}), false));
  ASSERT_EQ(v.size(), 9u);
  const auto corners = vision::RotatedCorners(*d.rotated);
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(v[1 + 2 * i], corners[i].x / 200.0, 1e-5);
    EXPECT_NEAR(v[2 + 2 * i], corners[i].y / 100.0, 1e-5);
  }
}

TEST(ExportTest, ClassifyLinesAreTop5ProbabilityThenName) {
  Detection d = Box(0, 0, 200, 100, 7, 0.8f);
  d.top5 = {{7, "tabby cat", 0.8f}, {3, "dog", 0.126f}};
  EXPECT_EQ(LabelText(Make(Task::kClassify, {d}), true), "0.80 tabby cat\n0.13 dog\n");
}

TEST(ExportTest, OutputStemNamesVideoFramesAsUltralytics) {
  EXPECT_EQ(OutputStem("/data/a/bus.jpg", 0), "bus");
  EXPECT_EQ(OutputStem("clip.mp4", 1), "clip_1");
  EXPECT_EQ(OutputStem("x/clip.v2.avi", 12), "clip.v2_12");
}

TEST(ExportTest, CropRectIsGainPadTruncatedAndClipped) {
  // w 100 -> 112, h 50 -> 61 around (150, 125): x 94..206, y 94.5..155.5 -> 94..155.
  EXPECT_EQ(CropRect({100, 100, 200, 150}, {640, 480}), cv::Rect(94, 94, 112, 61));
  // Near the corner: -5.1 truncates to -5, clipped to 0.
  EXPECT_EQ(CropRect({0, 0, 10, 10}, {640, 480}), cv::Rect(0, 0, 15, 15));
  // 624.9 truncates to 624; 645.1 is clipped to 640.
  EXPECT_EQ(CropRect({630, 470, 640, 480}, {640, 480}), cv::Rect(624, 464, 16, 16));
  EXPECT_TRUE(CropRect({700, 10, 800, 20}, {640, 480}).empty());  // wholly outside
  EXPECT_TRUE(CropRect({NAN, 0, 10, 10}, {640, 480}).empty());
  EXPECT_EQ(CropRect({100, 100, 200, 150}, {640, 480}, 1.0, 0), cv::Rect(100, 100, 100, 50));
}

TEST(ExportTest, SaveCropsNumbersCropsOfOneClassAndSanitizesNames) {
  const std::string dir = testing::MakeTempDir("crops");
  cv::Mat image(100, 200, CV_8UC3, cv::Scalar(0, 0, 0));
  image(cv::Rect(100, 0, 100, 100)).setTo(cv::Scalar(255, 255, 255));
  const Result r =
      Make(Task::kDetect,
           {Box(120, 20, 180, 80, 0, 0.9f, "person"), Box(10, 10, 40, 40, 0, 0.8f, "person"),
            Box(10, 50, 40, 90, 1, 0.7f, "bus"), Box(50, 50, 60, 60, 0, 0.6f, "person"),
            Box(5, 5, 15, 15, 2, 0.5f, "../up"), Box(5, 5, 15, 15, 3, 0.5f, "..")});
  const auto written = SaveCrops(image, r, dir + "/crops", "img");
  ASSERT_EQ(written.size(), 6u);
  EXPECT_EQ(written[0], dir + "/crops/person/img.jpg");
  EXPECT_EQ(written[1], dir + "/crops/person/img2.jpg");
  EXPECT_EQ(written[2], dir + "/crops/bus/img.jpg");
  EXPECT_EQ(written[3], dir + "/crops/person/img3.jpg");
  EXPECT_EQ(written[4], dir + "/crops/.._up/img.jpg");
  EXPECT_EQ(written[5], dir + "/crops/3/img.jpg");
  // The crop is the box's region: white for the first, black for the second.
  const cv::Mat first = cv::imread(written[0]);
  EXPECT_EQ(first.size(), CropRect(r.detections[0].box, image.size()).size());
  EXPECT_GT(cv::mean(first)[0], 250);
  const cv::Mat second = cv::imread(written[1]);
  EXPECT_EQ(second.size(), CropRect(r.detections[1].box, image.size()).size());
  EXPECT_LT(cv::mean(second)[0], 5);
  // A second image with the same stem continues the numbering on disk.
  const auto again =
      SaveCrops(image, Make(Task::kDetect, {r.detections[2]}), dir + "/crops", "img");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0], dir + "/crops/bus/img2.jpg");
  // No crops for OBB or classify (as Ultralytics).
  EXPECT_TRUE(SaveCrops(image, Make(Task::kObb, {r.detections[0]}), dir + "/c2", "x").empty());
}

TEST(ExportTest, SaveLabelsWritesNothingForAnEmptyResult) {
  const std::string dir = testing::MakeTempDir("labels");
  EXPECT_FALSE(SaveLabels(dir + "/labels/a.txt", Make(Task::kDetect, {}), true));
  EXPECT_FALSE(fs::exists(dir + "/labels/a.txt"));
  EXPECT_TRUE(SaveLabels(dir + "/labels/b.txt", Make(Task::kDetect, {Box(20, 10, 60, 50, 3, 0.5f)}),
                         false));
  std::ifstream in(dir + "/labels/b.txt");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "3 0.2 0.3 0.2 0.4\n");
}

TEST(ExportTest, CocoCategoryIdsMapTheEightyCocoNames) {
  std::vector<std::string> coco = {"person",        "bicycle",      "car",
                                   "motorcycle",    "airplane",     "bus",
                                   "train",         "truck",        "boat",
                                   "traffic light", "fire hydrant", "stop sign",
                                   "parking meter", "bench",        "bird",
                                   "cat",           "dog",          "horse",
                                   "sheep",         "cow",          "elephant",
                                   "bear",          "zebra",        "giraffe",
                                   "backpack",      "umbrella",     "handbag",
                                   "tie",           "suitcase",     "frisbee",
                                   "skis",          "snowboard",    "sports ball",
                                   "kite",          "baseball bat", "baseball glove",
                                   "skateboard",    "surfboard",    "tennis racket",
                                   "bottle",        "wine glass",   "cup",
                                   "fork",          "knife",        "spoon",
                                   "bowl",          "banana",       "apple",
                                   "sandwich",      "orange",       "broccoli",
                                   "carrot",        "hot dog",      "pizza",
                                   "donut",         "cake",         "chair",
                                   "couch",         "potted plant", "bed",
                                   "dining table",  "toilet",       "tv",
                                   "laptop",        "mouse",        "remote",
                                   "keyboard",      "cell phone",   "microwave",
                                   "oven",          "toaster",      "sink",
                                   "refrigerator",  "book",         "clock",
                                   "vase",          "scissors",     "teddy bear",
                                   "hair drier",    "toothbrush"};
  const auto ids = CocoCategoryIds(coco);
  ASSERT_EQ(ids.size(), 80u);
  EXPECT_EQ(ids[0], 1);    // person
  EXPECT_EQ(ids[5], 6);    // bus
  EXPECT_EQ(ids[11], 13);  // stop sign (12 is unused in COCO)
  EXPECT_EQ(ids[79], 90);  // toothbrush
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_GT(ids[i], ids[i - 1]);
  coco[3] = "motorbike";  // not COCO's names: class id + 1
  const auto other = CocoCategoryIds(coco);
  for (size_t i = 0; i < other.size(); ++i) EXPECT_EQ(other[i], static_cast<int>(i) + 1);
  EXPECT_EQ(CocoCategoryIds({"a", "b"}), (std::vector<int>{1, 2}));
}

TEST(ExportTest, CocoPredictionsAreTopLeftWidthHeightInPixels) {
  const Result r = Make(
      Task::kDetect, {Box(10.25f, 20.5f, 110.1234f, 70, 1, 0.123456f), Box(0, 0, 5, 5, 9, 0.5f)});
  const auto j = CocoPredictions("/d/images/000000000042.jpg", r, {7, 8});
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["image_id"], 42);
  EXPECT_EQ(j[0]["file_name"], "000000000042.jpg");
  EXPECT_EQ(j[0]["category_id"], 8);
  EXPECT_EQ(j[1]["category_id"], 10);  // outside the map: id + 1
  ASSERT_EQ(j[0]["bbox"].size(), 4u);
  EXPECT_DOUBLE_EQ(j[0]["bbox"][0].get<double>(), 10.25);
  EXPECT_DOUBLE_EQ(j[0]["bbox"][1].get<double>(), 20.5);
  EXPECT_DOUBLE_EQ(j[0]["bbox"][2].get<double>(), 99.873);
  EXPECT_DOUBLE_EQ(j[0]["bbox"][3].get<double>(), 49.5);
  EXPECT_DOUBLE_EQ(j[0]["score"].get<double>(), 0.12346);
  EXPECT_EQ(CocoPredictions("a/bus.jpg", r, {})[0]["image_id"], "bus");
  EXPECT_EQ(CocoPredictions("a/1234567890123456789.jpg", r, {})[0]["image_id"],
            "1234567890123456789");  // too long for an int64: kept as the stem
  EXPECT_TRUE(CocoPredictions("a/b.jpg", Make(Task::kDetect, {}), {}).empty());
}

TEST(ExportTest, CocoPoseAndObbEntriesCarryTheirExtraFields) {
  Detection p = Box(0, 0, 10, 10, 0, 0.9f);
  p.keypoints = {{1, 2, 0.5f}, {3, 4, 1.f}};
  const auto pose = CocoPredictions("x.jpg", Make(Task::kPose, {p}), {1});
  ASSERT_EQ(pose[0]["keypoints"].size(), 6u);
  EXPECT_DOUBLE_EQ(pose[0]["keypoints"][3].get<double>(), 3.0);
  Detection o = Box(80, 40, 120, 60, 0, 0.9f);
  o.rotated = RotatedBox{100, 50, 40, 20, 0};
  const auto obb = CocoPredictions("x.jpg", Make(Task::kObb, {o}), {1});
  EXPECT_EQ(obb[0]["rbox"], nlohmann::json({100.0, 50.0, 40.0, 20.0, 0.0}));
  EXPECT_EQ(obb[0]["poly"], nlohmann::json({120.0, 60.0, 120.0, 40.0, 80.0, 40.0, 80.0, 60.0}));
}

}  // namespace
}  // namespace cvdeploy
