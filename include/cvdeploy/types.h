// SPDX-License-Identifier: Apache-2.0
// Value types shared by the whole API: tasks, detections and per-image results.
// All coordinates are in pixels of the original (decoded) image unless stated.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core.hpp>

namespace cvdeploy {

enum class Task { kDetect, kSegment, kPose, kClassify, kObb };

// "detect", "segment", "pose", "classify", "obb".
std::string_view TaskName(Task task);
// Accepts the names above (and Ultralytics' aliases "seg", "cls"); nullopt otherwise.
std::optional<Task> ParseTask(std::string_view name);

struct BoxXYXY {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float Width() const { return x2 - x1; }
  float Height() const { return y2 - y1; }
  float Area() const { return (x2 > x1 && y2 > y1) ? (x2 - x1) * (y2 - y1) : 0.f; }
};

// Rotated box of an OBB model: centre, size and angle in radians (Ultralytics convention:
// clockwise in image coordinates, normalized to [0, pi/2) with w/h swapped as needed).
struct RotatedBox {
  float cx = 0, cy = 0, w = 0, h = 0, angle = 0;
};

// Ultralytics' visibility threshold: a keypoint whose confidence is below it is "not visible"
// (Results.keypoints reports it at x = y = 0; drawing and label files leave it out).
inline constexpr float kKeypointVisibleThreshold = 0.5f;

// A keypoint as the model predicts it (raw values: coordinates are kept even when the point
// is not visible; JSON and label files apply Ultralytics' rule through Visible()).
struct Keypoint {
  float x = 0, y = 0;
  float visibility = 0;  // model confidence that the point is visible, 0..1
  bool Visible() const { return visibility >= kKeypointVisibleThreshold; }
};

struct ClassScore {
  int class_id = -1;
  std::string class_name;
  float score = 0;
};

struct Detection {
  int class_id = -1;
  std::string class_name;
  float confidence = 0;
  BoxXYXY box;  // axis-aligned, clipped to the image; for OBB the rotated box's bounds

  std::optional<RotatedBox> rotated;  // obb
  std::vector<Keypoint> keypoints;    // pose: kpt_shape[0] points
  // segment: binary mask (CV_8U, 0/255) covering `mask_roi` of the original image (its rule:
  // PredictOptions::retina_masks); `polygon`, the mask's outline in image coordinates as
  // Ultralytics' masks2segments gives it (every part: several outer contours are joined into
  // one path); `polygons`, the outer contours one by one, largest first (only the largest
  // unless PredictOptions::all_contours).
  cv::Mat mask;
  cv::Rect mask_roi;
  std::vector<cv::Point> polygon;
  std::vector<std::vector<cv::Point>> polygons;
  std::vector<ClassScore> top5;  // classify: best first
};

// Wall-clock milliseconds spent per stage for one image (batch time divided evenly).
struct StageTimes {
  double decode = 0, preprocess = 0, inference = 0, postprocess = 0;
  double Total() const { return decode + preprocess + inference + postprocess; }
};

// Geometry of one letterbox (Ultralytics preprocessing): how an original image maps into the
// network input.
struct Letterbox {
  cv::Size src;                   // original image size
  cv::Size dst;                   // network input size (w, h)
  cv::Size resized;               // size of the resized image inside dst
  float scale = 1.f;              // resized / src (same for both axes)
  int pad_left = 0, pad_top = 0;  // offset of the resized image inside dst

  // Network-input pixel -> original-image pixel (not clipped).
  float ToSrcX(float x) const { return (x - pad_left) / scale; }
  float ToSrcY(float y) const { return (y - pad_top) / scale; }
};

struct Result {
  int width = 0, height = 0;  // original image size
  Task task = Task::kDetect;
  std::vector<Detection> detections;  // sorted by confidence, best first
  StageTimes speed_ms;
};

}  // namespace cvdeploy
