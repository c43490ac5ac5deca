// SPDX-License-Identifier: Apache-2.0
// Ultralytics-format outputs of predictions: label files (Results.save_txt), crops per class
// (save_one_box) and COCO-format prediction lists (the validator's save_json).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "cvdeploy/types.h"

namespace cvdeploy {

// The file stem Ultralytics gives the outputs of one input: the source's stem for an image,
// STEM_N for the Nth processed frame of a video (1-based, counting processed frames only, as
// its dataset's frame counter with vid_stride). `frame_number` <= 0: an image.
std::string OutputStem(const std::string& source, long frame_number);

// The label file text of one result, as Results.save_txt: one line per detection, numbers in
// Python's "%g" (printf %g, 6 significant digits), all coordinates normalized by the image
// size:
//   detect   "class cx cy w h [conf]"
//   segment  "class x1 y1 x2 y2 ... [conf]"  (Detection::polygon: every part of the mask)
//   pose     "class cx cy w h px1 py1 [v1] ... [conf]"  (v when `keypoint_dims` is 3, the
//            model's kpt_shape[1]; then a point that is not Keypoint::Visible() has
//            x = y = 0, as Ultralytics' Keypoints)
//   obb      "class x1 y1 x2 y2 x3 y3 x4 y4 [conf]"  (corners in xywhr2xyxyxyxy order)
//   classify "0.87 name" for each of the top-5.
// Empty for a result without detections (Ultralytics writes no file then).
std::string LabelText(const Result& result, bool save_conf, int keypoint_dims = 3);

// Writes LabelText to `path` (checked, atomic; the parent directory is created). Writes
// nothing when the text is empty. Returns whether a file was written.
bool SaveLabels(const std::string& path, const Result& result, bool save_conf,
                int keypoint_dims = 3);

// The crop of save_one_box(gain=1.02, pad=10, square=False): the box's width and height
// times `gain` plus `pad` around its centre, truncated to integers (torch .long()), clipped
// to the image. Empty when nothing of it is inside the image.
cv::Rect CropRect(const BoxXYXY& box, cv::Size image, double gain = 1.02, int pad = 10);

// Saves each detection's crop of `bgr` (the original image) as Results.save_crop:
// `crops_dir`/<class name>/`stem`.jpg, and for further crops of one class stem2.jpg,
// stem3.jpg, ... (Ultralytics' increment_path: the first name not taken on disk). JPEG
// quality 95. Class names are made safe as directory names ('/', '\\' and control bytes
// become '_'; "", "." and ".." become the class id). Classify and OBB results have no crops
// (as Ultralytics). Returns the paths written, in detection order. Throws Error(kRuntime)
// naming the path when a directory or file cannot be written.
std::vector<std::string> SaveCrops(const cv::Mat& bgr, const Result& result,
                                   const std::string& crops_dir, const std::string& stem);

// Category ids for COCO-format output, indexed by class id: COCO's 91-id numbering
// (Ultralytics' coco80_to_coco91_class) when `names` are the 80 COCO class names in order,
// else class id + 1 (Ultralytics' class_map for other datasets).
std::vector<int> CocoCategoryIds(const std::vector<std::string>& names);

// The COCO-format prediction entries of one image, as the validator's pred_to_json:
// {"image_id", "file_name", "category_id", "bbox": [x, y, w, h] (original pixels, rounded to
// 3 decimals), "score" (5 decimals)}; pose entries add "keypoints" [x, y, v, ...]; OBB
// entries add "rbox" [cx, cy, w, h, angle] and "poly" (the 4 corners). image_id is the file
// stem as an integer when it is all digits (at most 18), else the stem. A class id outside
// `category_ids` keeps its id + 1.
nlohmann::ordered_json CocoPredictions(const std::string& image_path, const Result& result,
                                       const std::vector<int>& category_ids);

}  // namespace cvdeploy
