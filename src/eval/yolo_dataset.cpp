// SPDX-License-Identifier: Apache-2.0
// YOLO txt datasets: DIR/images/**.{jpg,...} with DIR/labels/**.txt beside them.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "cvdeploy/dataset_yaml.h"
#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "model/yaml_names.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxLabelFileBytes = 64u << 20;  // far beyond any real label file
constexpr uint64_t kMaxYamlBytes = 1u << 20;        // a dataset YAML is a few kilobytes

bool IsImageFile(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp";
}

std::string ReadText(const fs::path& path) {
  // Regular files only: a FIFO or /dev/zero named like a label file is refused, never read.
  return core::ReadFileText(path.string(), kMaxLabelFileBytes);
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

// Label lines that Ultralytics' verify_image_label refuses, and duplicate lines it removes.
struct LabelCheck {
  int num_classes = 0;  // 0: unknown, class ids are only checked against int range
  int corrupt = 0;
  std::string first_corrupt;  // "FILE:LINE: reason"
  int duplicates = 0;
};

// Why the values of one line are corrupt by Ultralytics' rules ("" when they are not):
// class id >= number of classes, a value below -0.01 or a coordinate above 1.01 (its 1%
// tolerance), and a box of zero or negative width or height. `coords` are the values
// that must lie in [0, 1]; `token0` is the class id as written.
std::string CorruptReason(const std::vector<double>& v, const std::vector<double>& coords,
                          const std::string& token0, const LabelCheck& check) {
  if (v[0] < 0) return "negative class id " + token0;
  if (v[0] > std::numeric_limits<int>::max()) return "class id " + token0 + " out of range";
  if (check.num_classes > 0 && v[0] >= check.num_classes) {
    return "class id " + token0 + " out of range (the dataset has " +
           std::to_string(check.num_classes) + " classes)";
  }
  for (double c : coords) {
    if (c < -0.01) return "negative coordinate " + std::to_string(c);
    if (c > 1.01) return "coordinate " + std::to_string(c) + " above 1 (not normalized)";
  }
  return "";
}

std::vector<GroundTruth> ReadLabelFile(const fs::path& path, int num_keypoints, bool& has_polygons,
                                       LabelCheck& check) {
  std::vector<GroundTruth> labels;
  std::istringstream text(ReadText(path));
  std::string line;
  std::set<std::vector<double>> seen;
  for (int line_no = 1; std::getline(text, line); ++line_no) {
    const std::string where = path.string() + ":" + std::to_string(line_no);
    std::istringstream tokens(line);
    std::vector<double> v;
    std::string token0;
    for (std::string token; tokens >> token;) {
      if (v.empty()) token0 = token;
      v.push_back(ParseNumber(token, where));
    }
    if (v.empty()) continue;  // blank lines are harmless
    const size_t n = v.size();
    const size_t k = static_cast<size_t>(num_keypoints);
    if (v[0] != std::floor(v[0])) throw BadInput(where + ": class id is not an integer");
    if (!seen.insert(v).second) {  // Ultralytics removes duplicate rows
      ++check.duplicates;
      continue;
    }
    auto corrupt = [&](const std::string& reason) {
      if (check.corrupt++ == 0) check.first_corrupt = where + ": " + reason;
    };

    GroundTruth gt;
    std::vector<double> coords;  // values that must lie in [0, 1]
    if (k > 0 && n != 5) {       // a box-only line (class cx cy w h) is read as a box below
      if (n != 5 + 3 * k && n != 5 + 2 * k) {
        throw BadInput(where + ": expected " + std::to_string(5 + 3 * k) + " or " +
                       std::to_string(5 + 2 * k) + " values (class cx cy w h + " +
                       std::to_string(k) + " keypoints) or 5 (a box only), got " +
                       std::to_string(n));
      }
      const size_t dims = (n - 5) / k;
      coords.assign(v.begin() + 1, v.begin() + 5);
      for (size_t i = 0; i < k; ++i) {
        Keypoint p;
        p.x = static_cast<float>(v[5 + i * dims]);
        p.y = static_cast<float>(v[5 + i * dims + 1]);
        // x/y-only labels mark unlabelled points with negative coordinates (Ultralytics), so
        // only labelled points are range-checked.
        p.visibility =
            dims == 3 ? static_cast<float>(v[5 + i * dims + 2]) : (p.x < 0 || p.y < 0 ? 0.f : 1.f);
        if (dims == 3 || p.visibility > 0) {
          coords.push_back(p.x);
          coords.push_back(p.y);
        }
        gt.keypoints.push_back(p);
      }
    } else if (n > 5) {
      // class + x1 y1 x2 y2 x3 y3 ...: at least three points, coordinates in pairs.
      if (n < 7 || (n - 1) % 2 != 0) {
        throw BadInput(where + ": expected 5 values (class cx cy w h) or a polygon (class " +
                       "x1 y1 x2 y2 x3 y3 ...), got " + std::to_string(n));
      }
      coords.assign(v.begin() + 1, v.end());
      if (const std::string why = CorruptReason(v, coords, token0, check); !why.empty()) {
        corrupt(why);
        continue;
      }
      gt.class_id = static_cast<int>(v[0]);
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
    } else {
      coords.assign(v.begin() + 1, v.end());
    }
    if (const std::string why = CorruptReason(v, coords, token0, check); !why.empty()) {
      corrupt(why);
      continue;
    }
    if (v[3] <= 0 || v[4] <= 0) {
      corrupt("box width or height is not positive");
      continue;
    }
    gt.class_id = static_cast<int>(v[0]);  // in [0, INT_MAX]: checked above
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
    std::vector<std::string> names;
    try {
      names = model::ParseYamlNames(ReadText(yaml));
    } catch (const Error& e) {
      throw BadInput(yaml.string() + ": " + e.what());
    }
    if (!names.empty()) return names;
  }
  return {};
}

// The dataset of (image, label file) pairs, in the given order; `names` as declared (may be empty).
Dataset LoadPairs(const std::vector<std::pair<fs::path, fs::path>>& pairs,
                  std::vector<std::string> names, int num_keypoints, int num_classes,
                  const std::string& where) {
  Dataset dataset;
  dataset.names = std::move(names);
  size_t ignored = 0;
  std::string first_ignored;
  std::error_code ec;
  for (const auto& [image_path, label_path] : pairs) {
    LabelledImage image;
    image.image_path = image_path.string();
    // A label path that exists but is no regular file (a directory, a FIFO) is an error,
    // reported by ReadText; only a missing one means "no objects".
    if (fs::exists(label_path, ec)) {
      LabelCheck check;
      check.num_classes = !dataset.names.empty() ? static_cast<int>(dataset.names.size())
                                                 : std::max(0, num_classes);
      image.labels = ReadLabelFile(label_path, num_keypoints, dataset.has_polygons, check);
      if (check.duplicates > 0) {
        dataset.warnings.push_back(label_path.string() + ": " + std::to_string(check.duplicates) +
                                   " duplicate label line(s) removed");
      }
      if (check.corrupt > 0) {
        // Ultralytics ignores the whole image when any of its label lines is corrupt.
        dataset.warnings.push_back(
            label_path.string() + ": " + std::to_string(check.corrupt) +
            " corrupt label line(s), image ignored (first: " + check.first_corrupt + ")");
        if (ignored++ == 0) first_ignored = check.first_corrupt;
        continue;
      }
      for (const GroundTruth& gt : image.labels) {
        dataset.has_keypoints = dataset.has_keypoints || !gt.keypoints.empty();
      }
    }
    dataset.images.push_back(std::move(image));
  }
  if (dataset.images.empty()) {
    throw BadInput(where + ": no images left: all " + std::to_string(ignored) +
                   " have corrupt labels (first: " + first_ignored + ")");
  }
  return dataset;
}

// The dataset root of a YAML's `path:`: relative to the YAML's directory, else to the working
// directory (Ultralytics reads it relative to its datasets directory, which cvdeploy has not);
// the YAML's directory when `path` is absent or names no directory (with a warning).
fs::path DatasetRoot(const fs::path& yaml_path, const std::string& path,
                     std::vector<std::string>& warnings) {
  const fs::path yaml_dir = yaml_path.parent_path().empty() ? "." : yaml_path.parent_path();
  if (path.empty()) return yaml_dir;
  std::error_code ec;
  const fs::path given(path);
  if (given.is_absolute()) {
    if (fs::is_directory(given, ec)) return given;
  } else if (fs::is_directory(yaml_dir / given, ec)) {
    return (yaml_dir / given).lexically_normal();
  } else if (fs::is_directory(given, ec)) {
    return given;
  }
  warnings.push_back(yaml_path.string() + ": path: " + path +
                     " is no directory (relative to the YAML or the working directory); "
                     "reading the splits relative to the YAML's directory");
  return yaml_dir;
}

// Images of an image list file: "./x" relative to the list's directory (as Ultralytics), other
// relative lines relative to the dataset root; only lines naming image files are kept.
void AddImageList(const fs::path& list, const fs::path& root, std::vector<fs::path>& images) {
  std::istringstream text(ReadText(list));
  for (std::string line; std::getline(text, line);) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    line.erase(0, first);
    fs::path image =
        line.rfind("./", 0) == 0 ? list.parent_path() / line.substr(2) : fs::path(line);
    if (image.is_relative()) image = root / image;
    if (IsImageFile(image)) images.push_back(image.lexically_normal());
  }
}

// The images of one split entry: a directory (searched recursively, sorted), an image list
// (.txt) or one image. `../x` that does not exist is tried as `x`, as Ultralytics does.
void AddSplitEntry(const std::string& where, const fs::path& root, const std::string& entry,
                   std::vector<fs::path>& images) {
  std::error_code ec;
  fs::path path = fs::path(entry).is_absolute() ? fs::path(entry) : root / entry;
  if (!fs::exists(path, ec) && entry.rfind("../", 0) == 0) path = root / entry.substr(3);
  path = path.lexically_normal();
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> found;
    for (const auto& e : fs::recursive_directory_iterator(path, ec)) {
      if (e.is_regular_file() && IsImageFile(e.path())) found.push_back(e.path());
    }
    std::sort(found.begin(), found.end());
    images.insert(images.end(), found.begin(), found.end());
  } else if (path.extension() == ".txt") {
    AddImageList(path, root, images);
  } else if (IsImageFile(path) && fs::is_regular_file(path, ec)) {
    images.push_back(path);
  } else {
    throw BadInput(where + ": " + path.string() +
                   (fs::exists(path, ec) ? " is no directory, image list (.txt) or image"
                                         : " does not exist"));
  }
}

}  // namespace

bool IsDatasetYaml(const std::string& path) {
  const std::string ext = fs::path(path).extension().string();
  std::error_code ec;
  return (ext == ".yaml" || ext == ".yml") && !fs::is_directory(path, ec);
}

std::string LabelPathForImage(const std::string& image_path) {
  // Ultralytics' img2label_paths: the last "/images/" becomes "/labels/", the suffix ".txt".
  std::string path = image_path;
  const size_t at = path.rfind("/images/");
  if (at != std::string::npos) path.replace(at, 8, "/labels/");
  return fs::path(path).replace_extension(".txt").string();
}

Dataset LoadYoloDataset(const std::string& dir, int num_keypoints, int num_classes) {
  if (num_keypoints < 0) throw InvalidArgument("num_keypoints must be >= 0");
  if (IsDatasetYaml(dir)) return LoadDatasetYaml(dir, "val", num_keypoints, num_classes);
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw BadInput(dir + ": no such dataset directory (expected DIR with images/ and labels/, " +
                   "or a dataset YAML)");
  }
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
  const fs::path labels_dir = root / "labels";
  std::vector<std::pair<fs::path, fs::path>> pairs;
  for (const fs::path& rel : relative) {
    pairs.emplace_back(images_dir / rel, (labels_dir / rel).replace_extension(".txt"));
  }
  return LoadPairs(pairs, ReadNames(root), num_keypoints, num_classes, images_dir.string());
}

Dataset LoadDatasetYaml(const std::string& yaml_path, const std::string& split, int num_keypoints,
                        int num_classes) {
  if (num_keypoints < 0) throw InvalidArgument("num_keypoints must be >= 0");
  if (split != "train" && split != "val" && split != "test") {
    throw InvalidArgument("split '" + split + "': expected train, val or test");
  }
  model::DatasetYaml yaml;
  try {
    yaml = model::ParseDatasetYaml(core::ReadFileText(yaml_path, kMaxYamlBytes));
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kBadInput) throw;
    const std::string message = e.what();
    throw BadInput(message.rfind(yaml_path, 0) == 0 ? message : yaml_path + ": " + message);
  }
  const auto entries = yaml.splits.find(split);
  if (entries == yaml.splits.end()) {
    std::string have;
    for (const auto& [name, list] : yaml.splits) have += (have.empty() ? "" : ", ") + name;
    throw BadInput(yaml_path + ": no '" + split + "' split (the file has " +
                   (have.empty() ? std::string("none of train, val, test") : have) + ")");
  }
  std::vector<std::string> warnings;
  const fs::path root = DatasetRoot(yaml_path, yaml.path, warnings);
  const std::string where = yaml_path + ": " + split;
  std::vector<fs::path> images;
  for (const std::string& entry : entries->second) AddSplitEntry(where, root, entry, images);
  if (images.empty()) throw BadInput(where + ": no images (jpg, jpeg, png, bmp, webp)");
  std::vector<std::pair<fs::path, fs::path>> pairs;
  for (const fs::path& image : images) {
    pairs.emplace_back(image, LabelPathForImage(image.string()));
  }
  std::vector<std::string> names = std::move(yaml.names);
  if (names.empty() && yaml.nc) {
    for (int i = 0; i < *yaml.nc; ++i)
      names.push_back("class_" + std::to_string(i));  // as Ultralytics
  }
  Dataset dataset = LoadPairs(pairs, std::move(names), num_keypoints, num_classes, where);
  dataset.warnings.insert(dataset.warnings.begin(), warnings.begin(), warnings.end());
  return dataset;
}

}  // namespace cvdeploy
