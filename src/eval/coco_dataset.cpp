// SPDX-License-Identifier: Apache-2.0
// COCO instances/person-keypoints json + image directory, normalized like YOLO labels.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/file_util.h"
#include "core/json_limits.h"
#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Field access with errors that say where in the json the problem is.
const json& Require(const json& object, const char* key, const std::string& where) {
  if (!object.is_object()) throw BadInput(where + ": expected an object");
  const auto it = object.find(key);
  if (it == object.end()) throw BadInput(where + ": missing key '" + key + "'");
  return *it;
}

const json& RequireArray(const json& object, const char* key, const std::string& where) {
  const json& value = Require(object, key, where);
  if (!value.is_array()) throw BadInput(where + ": '" + key + "' is not an array");
  return value;
}

double RequireNumber(const json& object, const char* key, const std::string& where) {
  const json& value = Require(object, key, where);
  if (!value.is_number()) throw BadInput(where + ": '" + key + "' is not a number");
  return value.get<double>();
}

int64_t RequireInt(const json& object, const char* key, const std::string& where) {
  const json& value = Require(object, key, where);
  if (!value.is_number_integer()) throw BadInput(where + ": '" + key + "' is not an integer");
  return value.get<int64_t>();
}

std::vector<float> Numbers(const json& array, const std::string& where) {
  std::vector<float> out;
  for (const json& v : array) {
    if (!v.is_number()) throw BadInput(where + ": non-numeric coordinate");
    // A double outside float's range (1e300) would make the conversion undefined.
    const double d = v.get<double>();
    if (!(std::abs(d) <= std::numeric_limits<float>::max())) {
      throw BadInput(where + ": coordinate " + v.dump() + " out of range");
    }
    out.push_back(static_cast<float>(d));
  }
  return out;
}

struct ImageInfo {
  size_t index;  // into Dataset::images
  double width, height;
};

// Category id -> model class id, and the names those ids carry.
std::map<int64_t, int> MapCategories(const json& categories, const std::string& path,
                                     const std::vector<std::string>& model_names,
                                     std::vector<std::string>& names) {
  std::map<int64_t, std::string> by_id;  // sorted by id
  for (size_t i = 0; i < categories.size(); ++i) {
    const std::string where = path + ": categories[" + std::to_string(i) + "]";
    const json& name = Require(categories[i], "name", where);
    if (!name.is_string()) throw BadInput(where + ": 'name' is not a string");
    by_id[RequireInt(categories[i], "id", where)] = name.get<std::string>();
  }
  const bool by_name =
      !model_names.empty() && std::all_of(by_id.begin(), by_id.end(), [&](const auto& c) {
        return std::find(model_names.begin(), model_names.end(), c.second) != model_names.end();
      });
  std::map<int64_t, int> mapping;
  names.clear();
  for (const auto& [id, name] : by_id) {
    if (by_name) {
      mapping[id] = static_cast<int>(std::find(model_names.begin(), model_names.end(), name) -
                                     model_names.begin());
    } else {
      mapping[id] = static_cast<int>(names.size());
      names.push_back(name);
    }
  }
  if (by_name) names = model_names;
  return mapping;
}

GroundTruth ParseAnnotation(const json& ann, int class_id, const ImageInfo& image,
                            const std::string& where) {
  GroundTruth gt;
  gt.class_id = class_id;
  const json& bbox = RequireArray(ann, "bbox", where);
  const std::vector<float> b = Numbers(bbox, where + ".bbox");
  if (b.size() != 4) throw BadInput(where + ": 'bbox' must have 4 values [x, y, w, h]");
  const float w = static_cast<float>(image.width), h = static_cast<float>(image.height);
  gt.box = {b[0] / w, b[1] / h, (b[0] + b[2]) / w, (b[1] + b[3]) / h};

  // Polygons only: RLE (a json object) appears on crowd regions, which are skipped anyway.
  const auto seg = ann.find("segmentation");
  if (seg != ann.end() && seg->is_array()) {
    for (const json& polygon : *seg) {
      if (!polygon.is_array()) continue;
      const std::vector<float> xy = Numbers(polygon, where + ".segmentation");
      if (xy.size() < 6) continue;  // fewer than 3 points encloses nothing
      std::vector<cv::Point2f> points;
      for (size_t i = 0; i + 1 < xy.size(); i += 2) points.emplace_back(xy[i] / w, xy[i + 1] / h);
      gt.polygons.push_back(std::move(points));
    }
  }
  const auto kpts = ann.find("keypoints");
  if (kpts != ann.end() && kpts->is_array() && !kpts->empty()) {
    const std::vector<float> k = Numbers(*kpts, where + ".keypoints");
    if (k.size() % 3 != 0) throw BadInput(where + ": 'keypoints' length is not a multiple of 3");
    for (size_t i = 0; i < k.size(); i += 3)
      gt.keypoints.push_back({k[i] / w, k[i + 1] / h, k[i + 2]});
  }
  return gt;
}

}  // namespace

Dataset LoadCocoDataset(const std::string& json_path, const std::string& images_dir,
                        const std::vector<std::string>& model_names) {
  // A regular file only; nesting beyond 64 levels is refused before a tree is built.
  const json root = core::ParseJsonBounded(core::ReadFileText(json_path), json_path);
  if (!root.is_object()) throw BadInput(json_path + ": expected a json object at top level");

  Dataset dataset;
  const std::map<int64_t, int> categories = MapCategories(
      RequireArray(root, "categories", json_path), json_path, model_names, dataset.names);

  std::map<int64_t, ImageInfo> images;
  const json& image_list = RequireArray(root, "images", json_path);
  for (size_t i = 0; i < image_list.size(); ++i) {
    const std::string where = json_path + ": images[" + std::to_string(i) + "]";
    const json& image = image_list[i];
    const json& file_name = Require(image, "file_name", where);
    if (!file_name.is_string()) throw BadInput(where + ": 'file_name' is not a string");
    const double width = RequireNumber(image, "width", where);
    const double height = RequireNumber(image, "height", where);
    if (width <= 0 || height <= 0) throw BadInput(where + ": width and height must be > 0");
    const fs::path path = fs::path(images_dir) / file_name.get<std::string>();
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
      throw BadInput(path.string() + ": image file missing (" + where + ")");
    if (!images
             .emplace(RequireInt(image, "id", where),
                      ImageInfo{dataset.images.size(), width, height})
             .second) {
      throw BadInput(where + ": duplicate image id");
    }
    dataset.images.push_back({path.string(), {}});
  }

  const json& annotations = RequireArray(root, "annotations", json_path);
  for (size_t i = 0; i < annotations.size(); ++i) {
    const std::string where = json_path + ": annotations[" + std::to_string(i) + "]";
    const json& ann = annotations[i];
    const auto crowd = ann.is_object() ? ann.find("iscrowd") : ann.end();
    if (crowd != ann.end() && crowd->is_number() && crowd->get<double>() != 0) continue;
    const auto image = images.find(RequireInt(ann, "image_id", where));
    if (image == images.end()) throw BadInput(where + ": unknown image_id");
    const auto category = categories.find(RequireInt(ann, "category_id", where));
    if (category == categories.end()) throw BadInput(where + ": unknown category_id");
    GroundTruth gt = ParseAnnotation(ann, category->second, image->second, where);
    dataset.has_polygons = dataset.has_polygons || !gt.polygons.empty();
    dataset.has_keypoints = dataset.has_keypoints || !gt.keypoints.empty();
    dataset.images[image->second.index].labels.push_back(std::move(gt));
  }
  return dataset;
}

}  // namespace cvdeploy
