// SPDX-License-Identifier: Apache-2.0
// Training images for distillation, fine-tuning and QAT: a directory of unlabelled images or
// a YOLO dataset, served as letterboxed batches (the inference preprocessing, one
// implementation: vision/letterbox.h) with optional Ultralytics-like augmentation, in a seeded
// and reproducible order; and a deterministic train/validation split.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <opencv2/core.hpp>
#include <random>
#include <string>
#include <vector>

#include "cvdeploy/eval.h"

namespace cvdeploy::train {

struct TrainDataOptions {
  int imgsz = 640;     // square side, a multiple of 32
  int max_images = 0;  // 0: all; else the first max_images by name
  bool augment = false;
  bool mosaic = false;     // 4-image mosaic (with augment; p = 1 per sample as Ultralytics)
  double fliplr = 0.5;     // probability of a horizontal flip
  double scale = 0.5;      // random scale in [1 - scale, 1 + scale]
  double translate = 0.1;  // random shift up to this fraction of imgsz each way
  double hsv_h = 0.015, hsv_s = 0.7, hsv_v = 0.4;  // HSV gains (Ultralytics' defaults)
  double min_box = 2.0;  // boxes narrower or lower than this after transform are dropped (px)
};

// One batch. images [B, 3, imgsz, imgsz] float32 RGB in [0, 1] (B may be smaller than asked at
// the end of an epoch); targets [N, 6] float32 rows (batch_index, class, x1, y1, x2, y2) in
// input pixels, clipped to the image (N = 0 without labels); paths of the B images.
struct Batch {
  torch::Tensor images;
  torch::Tensor targets;
  std::vector<std::string> paths;
};

// The images of one training run. Not thread-safe. Images are decoded when first used (an
// unreadable image throws Error(kBadInput) naming the file then) and kept decoded while the
// total stays under ~1 GiB.
class TrainImages {
 public:
  // The images of a directory (not recursive, sorted by path; as ExpandSources lists them) or
  // one image file, without labels.
  static TrainImages FromDirectory(const std::string& dir, const TrainDataOptions& options);
  // A YOLO dataset directory (images/ + labels/) or dataset YAML (`split` of it), read by the
  // project's dataset reader (bad labels: Error(kBadInput) naming the file).
  static TrainImages FromDataset(const std::string& dir_or_yaml, const TrainDataOptions& options,
                                 const std::string& split = "train");
  // Explicit images (labels optional, normalised as in cvdeploy::GroundTruth); sorted by path.
  TrainImages(std::vector<LabelledImage> images, const TrainDataOptions& options, bool has_labels);

  size_t size() const { return images_.size(); }
  bool has_labels() const { return has_labels_; }
  const std::vector<LabelledImage>& images() const { return images_; }
  const TrainDataOptions& options() const { return options_; }
  // The dataset reader's warnings (label lines or images left out), one line each.
  const std::vector<std::string>& warnings() const { return warnings_; }
  int64_t StepsPerEpoch(int batch) const;
  // Completed passes over the images.
  int64_t epoch() const { return epoch_; }

  // The next `batch` images of the current epoch (fewer at its end; the next call starts a new
  // epoch). The epoch order is a shuffle drawn from `rng` when the epoch starts, and the
  // augmentation draws from `rng` too: the same rng state and calls give the same batches on
  // every machine (only mt19937_64 outputs are used, never std distributions).
  Batch NextBatch(int batch, std::mt19937_64& rng);

  // One image alone, without augmentation: [3, imgsz, imgsz] and its target rows (batch
  // index 0). What NextBatch gives for it with augment off.
  Batch Plain(size_t index);

 private:
  const cv::Mat& Image(size_t index);
  void AddSample(size_t index, int batch_index, std::mt19937_64* rng, float* chw,
                 std::vector<float>& rows);

  std::vector<LabelledImage> images_;
  TrainDataOptions options_;
  bool has_labels_ = false;
  std::vector<cv::Mat> cache_;
  size_t cached_bytes_ = 0;
  std::vector<size_t> order_;
  size_t next_ = 0;
  int64_t epoch_ = 0;
  cv::Mat scratch_;
  cv::Mat uncached_;  // the last image decoded beyond the cache budget
  std::vector<std::string> warnings_;
};

struct DatasetSplit {
  std::vector<std::string> train, val;  // each sorted by path
};

// Deterministic split of `paths` into `train_count` training images and the rest for
// validation: the paths are sorted, each is ranked by a 64-bit hash (FNV-1a, SplitMix64) of
// (seed, file name) and the lowest train_count ranks train (ties by path). The same file names
// and seed give the same split on every machine, library and dataset location; the order of
// `paths` does not matter. Throws Error(kInvalidArgument) when
// train_count is negative or larger than the number of paths, or paths repeat.
DatasetSplit SplitDataset(const std::vector<std::string>& paths, int train_count, uint64_t seed);

// The images of `data` whose paths are in `paths` (with their labels; names and flags kept), in
// data's order: a split's training or validation part of a labelled dataset. Throws
// Error(kInvalidArgument) naming a path that is not in `data`.
Dataset SelectImages(const Dataset& data, const std::vector<std::string>& paths);

}  // namespace cvdeploy::train
