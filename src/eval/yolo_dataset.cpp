// SPDX-License-Identifier: Apache-2.0
// YOLO txt datasets: DIR/images/**.{jpg,...} with DIR/labels/**.txt beside them.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "eval/yaml_names.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;

bool IsImageFile(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp";
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BadInput(path.string() + ": cannot read");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Whole-token parse: "0.5x" and "nan" are errors, not 0.5 or NaN.
double ParseNumber(const std::string& token, const std::string& where) {
  double value = 0;
  const char* end = token.data() + token.size();
  const auto [ptr, ec] = std::from_chars(token.data(), end, value);
  if (ec != std::errc() || ptr != end || !std::isfinite(value)) {
    throw BadInput(where + ": not a number: '" + token + "'");
  }
  return value;
}

std::vector<GroundTruth> ReadLabelFile(const fs::path& path, int num_keypoints,
                                       bool& has_polygons) {
  std::vector<GroundTruth> labels;
  std::istringstream text(ReadText(path));
  std::string line;
  for (int line_no = 1; std::getline(text, line); ++line_no) {
    const std::string where = path.string() + ":" + std::to_string(line_no);
    std::istringstream tokens(line);
    std::vector<double> v;
    for (std::string token; tokens >> token;) v.push_back(ParseNumber(token, where));
    if (v.empty()) continue;  // blank lines are harmless
    const size_t n = v.size();
    const size_t k = static_cast<size_t>(num_keypoints);

    GroundTruth gt;
    if (v[0] < 0) throw BadInput(where + ": negative class id");
    if (v[0] != std::floor(v[0])) throw BadInput(where + ": class id is not an integer");
    gt.class_id = static_cast<int>(v[0]);
    if (k > 0) {
      if (n != 5 + 3 * k && n != 5 + 2 * k) {
        throw BadInput(where + ": expected " + std::to_string(5 + 3 * k) + " or " +
                       std::to_string(5 + 2 * k) + " values (class cx cy w h + " +
                       std::to_string(k) + " keypoints), got " + std::to_string(n));
      }
      const size_t dims = (n - 5) / k;
      for (size_t i = 0; i < k; ++i) {
        Keypoint p;
        p.x = static_cast<float>(v[5 + i * dims]);
        p.y = static_cast<float>(v[5 + i * dims + 1]);
        // x/y-only labels mark unlabelled points with negative coordinates (Ultralytics).
        p.visibility =
            dims == 3 ? static_cast<float>(v[5 + i * dims + 2]) : (p.x < 0 || p.y < 0 ? 0.f : 1.f);
        gt.keypoints.push_back(p);
      }
    } else if (n > 5) {
      // class + x1 y1 x2 y2 x3 y3 ...: at least three points, coordinates in pairs.
      if (n < 7 || (n - 1) % 2 != 0) {
        throw BadInput(where + ": expected 5 values (class cx cy w h) or a polygon (class " +
                       "x1 y1 x2 y2 x3 y3 ...), got " + std::to_string(n));
      }
      std::vector<cv::Point2f> polygon;
      for (size_t i = 1; i + 1 < n; i += 2) {
        polygon.emplace_back(static_cast<float>(v[i]), static_cast<float>(v[i + 1]));
      }
      auto [min_x, max_x] = std::minmax_element(polygon.begin(), polygon.end(),
                                                [](auto& a, auto& b) { return a.x < b.x; });
      auto [min_y, max_y] = std::minmax_element(polygon.begin(), polygon.end(),
                                                [](auto& a, auto& b) { return a.y < b.y; });
      gt.box = {min_x->x, min_y->y, max_x->x, max_y->y};
      gt.polygons.push_back(std::move(polygon));
      has_polygons = true;
      labels.push_back(std::move(gt));
      continue;
    } else if (n != 5) {
      throw BadInput(where + ": expected 5 values (class cx cy w h), got " + std::to_string(n));
    }
    const float cx = static_cast<float>(v[1]), cy = static_cast<float>(v[2]);
    const float w = static_cast<float>(v[3]), h = static_cast<float>(v[4]);
    gt.box = {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2};
    labels.push_back(std::move(gt));
  }
  return labels;
}

// Names from the first DIR/*.yaml (by name) that declares them.
std::vector<std::string> ReadNames(const fs::path& dir) {
  std::vector<fs::path> yamls;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string ext = entry.path().extension().string();
    if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) yamls.push_back(entry.path());
  }
  std::sort(yamls.begin(), yamls.end());
  for (const fs::path& yaml : yamls) {
    std::vector<std::string> names = eval::ParseYamlNames(ReadText(yaml));
    if (!names.empty()) return names;
  }
  return {};
}

}  // namespace

Dataset LoadYoloDataset(const std::string& dir, int num_keypoints) {
  if (num_keypoints < 0) throw InvalidArgument("num_keypoints must be >= 0");
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw BadInput(dir + ": no such dataset directory");
  const fs::path images_dir = root / "images";
  if (!fs::is_directory(images_dir, ec)) {
    throw BadInput(images_dir.string() + ": no such directory (expected DIR/images)");
  }

  // Relative paths so images/a/x.jpg pairs with labels/a/x.txt, sorted for stable order.
  std::vector<fs::path> relative;
  for (const auto& entry : fs::recursive_directory_iterator(images_dir)) {
    if (entry.is_regular_file() && IsImageFile(entry.path())) {
      relative.push_back(entry.path().lexically_relative(images_dir));
    }
  }
  if (relative.empty()) {
    throw BadInput(images_dir.string() + ": no images (jpg, jpeg, png, bmp, webp)");
  }
  std::sort(relative.begin(), relative.end());

  Dataset dataset;
  dataset.names = ReadNames(root);
  const fs::path labels_dir = root / "labels";
  for (const fs::path& rel : relative) {
    LabelledImage image;
    image.image_path = (images_dir / rel).string();
    const fs::path label_path = (labels_dir / rel).replace_extension(".txt");
    if (fs::is_regular_file(label_path, ec)) {
      image.labels = ReadLabelFile(label_path, num_keypoints, dataset.has_polygons);
      dataset.has_keypoints = dataset.has_keypoints || (num_keypoints > 0 && !image.labels.empty());
    }
    dataset.images.push_back(std::move(image));
  }
  return dataset;
}

}  // namespace cvdeploy
