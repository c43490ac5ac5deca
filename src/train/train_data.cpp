// SPDX-License-Identifier: Apache-2.0
// Training images: letterboxed batches with Ultralytics-like augmentation (see train_data.h).
#include "train/train_data.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cvdeploy/dataset_yaml.h"
#include "cvdeploy/error.h"
#include "cvdeploy/image.h"
#include "vision/letterbox.h"

namespace cvdeploy::train {
namespace {

constexpr size_t kCacheBytes = size_t{1} << 30;

// Random numbers from raw mt19937_64 outputs only (std distributions differ between standard
// libraries, mt19937_64's sequence does not).
double Uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}
double Uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * Uniform01(rng);
}
size_t Below(std::mt19937_64& rng, size_t n) { return static_cast<size_t>(rng() % n); }

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

struct Box {
  float cls, x1, y1, x2, y2;
};

// The labels of `image` in pixels of a decoded image of `size` (labels are normalised).
std::vector<Box> PixelBoxes(const LabelledImage& image, cv::Size size) {
  std::vector<Box> boxes;
  for (const GroundTruth& gt : image.labels) {
    boxes.push_back({static_cast<float>(gt.class_id), gt.box.x1 * size.width,
                     gt.box.y1 * size.height, gt.box.x2 * size.width, gt.box.y2 * size.height});
  }
  return boxes;
}

// u_out = a * u_in + b per axis, in continuous (pixel edge) coordinates.
struct AxisMap {
  double ax = 1, bx = 0, ay = 1, by = 0;
};

// Maps boxes, clips them to [0, side] and drops those that end up tiny, thin or mostly cut off
// (Ultralytics' box_candidates: sides > min_box, area kept > 10 %, aspect < 100).
void MapBoxes(const std::vector<Box>& boxes, const AxisMap& m, int side, double min_box,
              int batch_index, std::vector<float>& rows) {
  for (const Box& b : boxes) {
    double x1 = m.ax * b.x1 + m.bx, x2 = m.ax * b.x2 + m.bx;
    double y1 = m.ay * b.y1 + m.by, y2 = m.ay * b.y2 + m.by;
    if (x1 > x2) std::swap(x1, x2);
    if (y1 > y2) std::swap(y1, y2);
    const double w1 = x2 - x1, h1 = y2 - y1;
    x1 = std::clamp(x1, 0.0, double(side));
    x2 = std::clamp(x2, 0.0, double(side));
    y1 = std::clamp(y1, 0.0, double(side));
    y2 = std::clamp(y2, 0.0, double(side));
    const double w2 = x2 - x1, h2 = y2 - y1;
    if (w2 <= min_box || h2 <= min_box) continue;
    if (w2 * h2 / (w1 * h1 + 1e-16) <= 0.1) continue;
    if (std::max(w2 / h2, h2 / w2) >= 100) continue;
    rows.insert(rows.end(),
                {static_cast<float>(batch_index), b.cls, static_cast<float>(x1),
                 static_cast<float>(y1), static_cast<float>(x2), static_cast<float>(y2)});
  }
}

// Ultralytics' augment_hsv on a BGR uint8 image, in place.
void AugmentHsv(cv::Mat& bgr, const std::array<double, 3>& gain) {
  cv::Mat hsv;
  cv::cvtColor(bgr, hsv, cv::COLOR_BGR2HSV);
  cv::Mat lut(1, 256, CV_8UC3);
  for (int x = 0; x < 256; ++x) {
    auto& px = lut.at<cv::Vec3b>(0, x);
    px[0] = static_cast<uint8_t>(std::fmod(x * gain[0], 180.0));
    px[1] = static_cast<uint8_t>(std::clamp(x * gain[1], 0.0, 255.0));
    px[2] = static_cast<uint8_t>(std::clamp(x * gain[2], 0.0, 255.0));
  }
  cv::LUT(hsv, lut, hsv);
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
}

// Pastes `image` (long side already `side`) into the 2side x 2side mosaic canvas at quadrant
// `q` around (xc, yc), as Ultralytics' load_mosaic; returns the offset added to its pixels.
cv::Point2i PasteQuadrant(const cv::Mat& image, int q, int xc, int yc, int side, cv::Mat& canvas) {
  const int w = image.cols, h = image.rows, s2 = 2 * side;
  int x1a, y1a, x2a, y2a, x1b, y1b;
  if (q == 0) {
    x1a = std::max(xc - w, 0), y1a = std::max(yc - h, 0), x2a = xc, y2a = yc;
    x1b = w - (x2a - x1a), y1b = h - (y2a - y1a);
  } else if (q == 1) {
    x1a = xc, y1a = std::max(yc - h, 0), x2a = std::min(xc + w, s2), y2a = yc;
    x1b = 0, y1b = h - (y2a - y1a);
  } else if (q == 2) {
    x1a = std::max(xc - w, 0), y1a = yc, x2a = xc, y2a = std::min(s2, yc + h);
    x1b = w - (x2a - x1a), y1b = 0;
  } else {
    x1a = xc, y1a = yc, x2a = std::min(xc + w, s2), y2a = std::min(s2, yc + h);
    x1b = 0, y1b = 0;
  }
  const int cw = std::min(x2a - x1a, w - x1b), ch = std::min(y2a - y1a, h - y1b);
  if (cw > 0 && ch > 0) {
    image(cv::Rect(x1b, y1b, cw, ch)).copyTo(canvas(cv::Rect(x1a, y1a, cw, ch)));
  }
  return {x1a - x1b, y1a - y1b};
}

}  // namespace

TrainImages TrainImages::FromDirectory(const std::string& dir, const TrainDataOptions& options) {
  std::vector<LabelledImage> images;
  for (const std::string& path : ExpandSources({dir})) {
    if (HasImageExtension(path)) images.push_back({path, {}});
  }
  if (images.empty()) throw Error(ErrorCode::kBadInput, dir + ": no images to train on");
  return TrainImages(std::move(images), options, false);
}

TrainImages TrainImages::FromDataset(const std::string& dir_or_yaml,
                                     const TrainDataOptions& options, const std::string& split) {
  Dataset data = IsDatasetYaml(dir_or_yaml) ? LoadDatasetYaml(dir_or_yaml, split)
                                            : LoadYoloDataset(dir_or_yaml);
  TrainImages out(std::move(data.images), options, true);
  out.warnings_ = std::move(data.warnings);
  return out;
}

TrainImages::TrainImages(std::vector<LabelledImage> images, const TrainDataOptions& options,
                         bool has_labels)
    : images_(std::move(images)), options_(options), has_labels_(has_labels) {
  if (options_.imgsz < 32 || options_.imgsz % 32 != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "training image size must be a positive multiple of 32, got " +
                    std::to_string(options_.imgsz));
  }
  if (options_.max_images < 0) {
    throw Error(ErrorCode::kInvalidArgument, "max_images must be >= 0");
  }
  std::sort(images_.begin(), images_.end(), [](const LabelledImage& a, const LabelledImage& b) {
    return a.image_path < b.image_path;
  });
  if (options_.max_images > 0 && images_.size() > static_cast<size_t>(options_.max_images)) {
    images_.resize(static_cast<size_t>(options_.max_images));
  }
  if (images_.empty()) throw Error(ErrorCode::kBadInput, "no images to train on");
  cache_.resize(images_.size());
}

int64_t TrainImages::StepsPerEpoch(int batch) const {
  if (batch < 1) throw Error(ErrorCode::kInvalidArgument, "batch must be >= 1");
  return (static_cast<int64_t>(images_.size()) + batch - 1) / batch;
}

const cv::Mat& TrainImages::Image(size_t index) {
  if (!cache_[index].empty()) return cache_[index];
  const int s = options_.imgsz;
  // Decoded as validation decodes (a large JPEG at a reduced DCT scale): one preprocessing.
  cv::Mat image = ReadImageForModel(images_[index].image_path, cv::Size(s, s), nullptr);
  const size_t bytes = image.total() * image.elemSize();
  if (cached_bytes_ + bytes <= kCacheBytes) {
    cached_bytes_ += bytes;
    cache_[index] = std::move(image);
    return cache_[index];
  }
  uncached_ = std::move(image);
  return uncached_;
}

void TrainImages::AddSample(size_t index, int batch_index, std::mt19937_64* rng, float* chw,
                            std::vector<float>& rows) {
  const int s = options_.imgsz;
  const bool augment = rng != nullptr && options_.augment;
  const cv::Mat& image = Image(index);
  if (!augment) {
    const vision::LetterboxInfo info = vision::ComputeLetterbox(image.size(), cv::Size(s, s));
    vision::LetterboxToTensor(image, info, chw, scratch_);
    AxisMap m{info.scale, double(info.pad_left), info.scale, double(info.pad_top)};
    MapBoxes(PixelBoxes(images_[index], image.size()), m, s, options_.min_box, batch_index, rows);
    return;
  }
  // The source frame, its scale to the output and the source point that goes to the centre.
  cv::Mat source;
  std::vector<Box> boxes;
  double base = 1, cx = 0, cy = 0;
  if (options_.mosaic) {
    source = cv::Mat(2 * s, 2 * s, CV_8UC3, cv::Scalar(114, 114, 114));
    const int xc = static_cast<int>(Uniform(*rng, 0.5 * s, 1.5 * s));
    const int yc = static_cast<int>(Uniform(*rng, 0.5 * s, 1.5 * s));
    for (int q = 0; q < 4; ++q) {
      const size_t pick = q == 0 ? index : Below(*rng, images_.size());
      const cv::Mat& part = Image(pick);
      const double r = double(s) / std::max(part.cols, part.rows);
      cv::Mat resized;
      cv::resize(part, resized,
                 cv::Size(std::max(1, int(std::lround(part.cols * r))),
                          std::max(1, int(std::lround(part.rows * r)))),
                 0, 0, cv::INTER_LINEAR);
      const cv::Point2i off = PasteQuadrant(resized, q, xc, yc, s, source);
      for (Box b : PixelBoxes(images_[pick], resized.size())) {
        b.x1 += off.x, b.x2 += off.x, b.y1 += off.y, b.y2 += off.y;
        boxes.push_back(b);
      }
    }
    cx = cy = s;
  } else {
    source = image;
    boxes = PixelBoxes(images_[index], image.size());
    const vision::LetterboxInfo info = vision::ComputeLetterbox(image.size(), cv::Size(s, s));
    base = info.scale;
    cx = (s / 2.0 - info.pad_left) / info.scale;
    cy = (s / 2.0 - info.pad_top) / info.scale;
  }
  const double scale = Uniform(*rng, 1 - options_.scale, 1 + options_.scale);
  const double tx = Uniform(*rng, 0.5 - options_.translate, 0.5 + options_.translate) * s;
  const double ty = Uniform(*rng, 0.5 - options_.translate, 0.5 + options_.translate) * s;
  std::array<double, 3> gain{};
  const std::array<double, 3> hsv{options_.hsv_h, options_.hsv_s, options_.hsv_v};
  for (int i = 0; i < 3; ++i) gain[i] = Uniform(*rng, -1, 1) * hsv[i] + 1;
  const bool flip = Uniform01(*rng) < options_.fliplr;
  AxisMap m{base * scale, 0, base * scale, 0};
  m.bx = tx - m.ax * cx;
  m.by = ty - m.ay * cy;
  if (flip) m.ax = -m.ax, m.bx = s - m.bx;
  // warpAffine works on pixel centres: u = x + 0.5 on both sides.
  cv::Mat affine = (cv::Mat_<double>(2, 3) << m.ax, 0, m.bx + 0.5 * m.ax - 0.5, 0, m.ay,
                    m.by + 0.5 * m.ay - 0.5);
  cv::Mat out;
  cv::warpAffine(source, out, affine, cv::Size(s, s), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                 cv::Scalar(114, 114, 114));
  if (options_.hsv_h > 0 || options_.hsv_s > 0 || options_.hsv_v > 0) AugmentHsv(out, gain);
  // Already s x s: the letterbox is the identity and only converts (BGR->RGB, /255, planar).
  vision::LetterboxToTensor(out, vision::ComputeLetterbox(out.size(), cv::Size(s, s)), chw,
                            scratch_);
  MapBoxes(boxes, m, s, options_.min_box, batch_index, rows);
}

Batch TrainImages::NextBatch(int batch, std::mt19937_64& rng) {
  if (batch < 1) throw Error(ErrorCode::kInvalidArgument, "batch must be >= 1");
  if (next_ >= order_.size()) {
    if (!order_.empty()) ++epoch_;
    order_.resize(images_.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[Below(rng, i)]);
    next_ = 0;
  }
  const size_t count = std::min(static_cast<size_t>(batch), order_.size() - next_);
  const int64_t s = options_.imgsz;
  Batch out;
  out.images = torch::empty({static_cast<int64_t>(count), 3, s, s}, torch::kFloat);
  std::vector<float> rows;
  for (size_t i = 0; i < count; ++i) {
    const size_t index = order_[next_ + i];
    AddSample(index, static_cast<int>(i), &rng, out.images.data_ptr<float>() + i * 3 * s * s, rows);
    out.paths.push_back(images_[index].image_path);
  }
  next_ += count;
  out.targets =
      torch::from_blob(rows.data(), {static_cast<int64_t>(rows.size() / 6), 6}, torch::kFloat)
          .clone();
  return out;
}

Batch TrainImages::Plain(size_t index) {
  if (index >= images_.size()) throw Error(ErrorCode::kInvalidArgument, "image index out of range");
  const int64_t s = options_.imgsz;
  Batch out;
  out.images = torch::empty({1, 3, s, s}, torch::kFloat);
  std::vector<float> rows;
  AddSample(index, 0, nullptr, out.images.data_ptr<float>(), rows);
  out.paths.push_back(images_[index].image_path);
  out.targets =
      torch::from_blob(rows.data(), {static_cast<int64_t>(rows.size() / 6), 6}, torch::kFloat)
          .clone();
  return out;
}

DatasetSplit SplitDataset(const std::vector<std::string>& paths, int train_count, uint64_t seed) {
  std::vector<std::string> sorted = paths;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    throw Error(ErrorCode::kInvalidArgument, "split: image paths repeat");
  }
  if (train_count < 0 || static_cast<size_t>(train_count) > sorted.size()) {
    throw Error(ErrorCode::kInvalidArgument, "split: train count " + std::to_string(train_count) +
                                                 " outside 0.." + std::to_string(sorted.size()));
  }
  std::vector<std::pair<uint64_t, size_t>> ranked;
  for (size_t i = 0; i < sorted.size(); ++i) {
    // The file name only: the same dataset at another path splits the same way.
    const std::string name = std::filesystem::path(sorted[i]).filename().string();
    ranked.emplace_back(SplitMix64(Fnv1a(name) ^ SplitMix64(seed)), i);
  }
  std::sort(ranked.begin(), ranked.end());  // ties (never in practice) by sorted position
  DatasetSplit out;
  for (size_t r = 0; r < ranked.size(); ++r) {
    (r < static_cast<size_t>(train_count) ? out.train : out.val)
        .push_back(sorted[ranked[r].second]);
  }
  std::sort(out.train.begin(), out.train.end());
  std::sort(out.val.begin(), out.val.end());
  return out;
}

Dataset SelectImages(const Dataset& data, const std::vector<std::string>& paths) {
  std::set<std::string> wanted(paths.begin(), paths.end());
  Dataset out;
  out.names = data.names;
  out.has_polygons = data.has_polygons;
  out.has_keypoints = data.has_keypoints;
  for (const LabelledImage& image : data.images) {
    if (wanted.erase(image.image_path) > 0) out.images.push_back(image);
  }
  if (!wanted.empty()) {
    throw Error(ErrorCode::kInvalidArgument, *wanted.begin() + ": not an image of the dataset");
  }
  return out;
}

}  // namespace cvdeploy::train
