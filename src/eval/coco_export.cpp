// SPDX-License-Identifier: Apache-2.0
// COCO-format prediction lists, as Ultralytics' DetectionValidator.pred_to_json.
#include <array>
#include <cmath>
#include <filesystem>
#include <string_view>

#include "cvdeploy/export.h"
#include "vision/obb.h"

namespace cvdeploy {
namespace {

// Ultralytics' coco.yaml names, in class-id order.
constexpr std::array<std::string_view, 80> kCocoNames = {
    "person",        "bicycle",      "car",
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

// converter.coco80_to_coco91_class().
constexpr std::array<int, 80> kCoco91 = {
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
    46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65,
    67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90};

// Python's round(x, digits) for the magnitudes of pixel boxes and scores.
double Round(double x, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::nearbyint(x * scale) / scale;
}

nlohmann::ordered_json ImageId(const std::string& stem) {
  const bool numeric = !stem.empty() && stem.size() <= 18 &&
                       stem.find_first_not_of("0123456789") == std::string::npos;
  if (numeric) return std::stoll(stem);
  return stem;
}

}  // namespace

std::vector<int> CocoCategoryIds(const std::vector<std::string>& names) {
  std::vector<int> ids(names.size());
  bool coco = names.size() == kCocoNames.size();
  for (size_t i = 0; coco && i < names.size(); ++i) coco = names[i] == kCocoNames[i];
  for (size_t i = 0; i < names.size(); ++i) {
    ids[i] = coco ? kCoco91[i] : static_cast<int>(i) + 1;
  }
  return ids;
}

nlohmann::ordered_json CocoPredictions(const std::string& image_path, const Result& result,
                                       const std::vector<int>& category_ids) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  if (result.task == Task::kClassify) return out;
  const std::filesystem::path path(image_path);
  const nlohmann::ordered_json image_id = ImageId(path.stem().string());
  const std::string file_name = path.filename().string();
  for (const Detection& d : result.detections) {
    const bool known = d.class_id >= 0 && static_cast<size_t>(d.class_id) < category_ids.size();
    // xyxy2xywh then xy -= wh / 2, in float32 as torch, then Python floats.
    const float w = d.box.x2 - d.box.x1, h = d.box.y2 - d.box.y1;
    const float x = (d.box.x1 + d.box.x2) / 2 - w / 2, y = (d.box.y1 + d.box.y2) / 2 - h / 2;
    nlohmann::ordered_json e = {
        {"image_id", image_id},
        {"file_name", file_name},
        {"category_id", known ? category_ids[static_cast<size_t>(d.class_id)] : d.class_id + 1},
        {"bbox", {Round(x, 3), Round(y, 3), Round(w, 3), Round(h, 3)}},
        {"score", Round(d.confidence, 5)}};
    if (result.task == Task::kPose) {
      nlohmann::ordered_json k = nlohmann::ordered_json::array();
      for (const Keypoint& p : d.keypoints) {
        k.push_back(static_cast<double>(p.x));
        k.push_back(static_cast<double>(p.y));
        k.push_back(static_cast<double>(p.visibility));
      }
      e["keypoints"] = std::move(k);
    }
    if (d.rotated) {
      const RotatedBox& r = *d.rotated;
      e["rbox"] = {Round(r.cx, 3), Round(r.cy, 3), Round(r.w, 3), Round(r.h, 3), Round(r.angle, 3)};
      nlohmann::ordered_json poly = nlohmann::ordered_json::array();
      for (const cv::Point2f& p : vision::RotatedCorners(r)) {
        poly.push_back(Round(p.x, 3));
        poly.push_back(Round(p.y, 3));
      }
      e["poly"] = std::move(poly);
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace cvdeploy
