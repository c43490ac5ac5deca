// SPDX-License-Identifier: Apache-2.0
// ResultToJson's task extras: the segment polygon (every part) and pose keypoints reported
// as Ultralytics' Results.keypoints, with the raw values kept.
#include <gtest/gtest.h>

#include "cvdeploy/serialize.h"

namespace cvdeploy {
namespace {

Result OneDetection(Task task, int width, int height, const Detection& d) {
  Result r;
  r.width = width;
  r.height = height;
  r.task = task;
  r.detections.push_back(d);
  return r;
}

TEST(SerializeTest, KeypointsBelowTheVisibilityThresholdAreZeroedRawKept) {
  Detection d;
  d.class_id = 0;
  d.class_name = "person";
  d.confidence = 0.9f;
  d.box = {10, 20, 110, 220};
  d.keypoints = {{50.25f, 60.f, 0.93f}, {70.f, 80.f, 0.4999f}, {90.f, 100.f, 0.5f}};
  const auto j = ResultToJson(OneDetection(Task::kPose, 640, 480, d));
  const auto& kps = j["detections"][0]["keypoints"];
  ASSERT_EQ(kps.size(), 3u);
  EXPECT_EQ(kps[0], nlohmann::json::parse("[50.3, 60.0, 0.93]"));
  // conf 0.4999 < 0.5: not visible, reported at (0, 0) with its confidence.
  EXPECT_EQ(kps[1], nlohmann::json::parse("[0.0, 0.0, 0.4999]"));
  EXPECT_EQ(kps[2], nlohmann::json::parse("[90.0, 100.0, 0.5]"));  // the threshold is visible
  const auto& raw = j["detections"][0]["keypoints_raw"];
  ASSERT_EQ(raw.size(), 3u);
  EXPECT_EQ(raw[1], nlohmann::json::parse("[70.0, 80.0, 0.4999]"));
  EXPECT_FALSE(d.keypoints[1].Visible());
  EXPECT_TRUE(d.keypoints[2].Visible());
}

TEST(SerializeTest, SegmentPolygonIsTheJoinedOutline) {
  Detection d;
  d.class_name = "giraffe";
  d.polygons = {{{0, 0}, {0, 9}, {9, 9}}, {{20, 20}, {20, 22}, {22, 22}}};
  d.polygon = {{0, 0}, {0, 9}, {9, 9}, {0, 0}, {20, 20}, {20, 22}, {22, 22}, {20, 20}};
  Result r = OneDetection(Task::kSegment, 100, 100, d);
  const auto one = ResultToJson(r);
  EXPECT_EQ(one["detections"][0]["polygon"].size(), 8u);
  EXPECT_EQ(one["detections"][0]["polygon"][4], nlohmann::json::parse("[20, 20]"));
  EXPECT_FALSE(one["detections"][0].contains("polygons"));
  const auto all = ResultToJson(r, true);
  EXPECT_EQ(all["detections"][0]["polygons"].size(), 2u);
  r.detections[0].polygon.clear();
  EXPECT_EQ(ResultToJson(r)["detections"][0]["polygon"], nlohmann::json::array());
}

}  // namespace
}  // namespace cvdeploy
