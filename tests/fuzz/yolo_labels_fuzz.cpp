// SPDX-License-Identifier: Apache-2.0
// YOLO txt label lines, through LoadYoloDataset (cvdeploy/eval.h) since the line parser is
// internal to src/eval/yolo_dataset.cpp (a ParseLabelLines(text, where, num_keypoints)
// entry point would let this target skip the file system). The input is written as
// labels/a.txt beside an (empty, never decoded) images/a.jpg in a scratch directory. The
// input's length selects the keypoint count (0, 0, 17 or 4) so box, polygon and pose labels
// are all reached. Malformed labels must be Error(kBadInput).
#include <cstdint>
#include <cstdlib>
#include <filesystem>

#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "fuzz_util.h"

namespace {

const std::filesystem::path& DatasetDir() {
  static const std::filesystem::path dir = [] {
    const auto& scratch = cvdeploy::fuzz::ScratchDir::Get();
    std::filesystem::create_directories(scratch.path() / "yolo" / "images");
    std::filesystem::create_directories(scratch.path() / "yolo" / "labels");
    scratch.Write("yolo/images/a.jpg", nullptr, 0);
    return scratch.path() / "yolo";
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static constexpr int kKeypoints[] = {0, 0, 17, 4};
  const std::filesystem::path& dir = DatasetDir();
  cvdeploy::fuzz::ScratchDir::Get().Write("yolo/labels/a.txt", data, size);
  const int keypoints = kKeypoints[size % 4];
  try {
    const cvdeploy::Dataset dataset = cvdeploy::LoadYoloDataset(dir.string(), keypoints);
    if (dataset.images.size() != 1) std::abort();
    for (const cvdeploy::GroundTruth& gt : dataset.images[0].labels) {
      if (gt.class_id < 0) std::abort();
      // A pose label carries every keypoint or none (a box-only line gives box mAP).
      if (keypoints > 0 && !gt.keypoints.empty() &&
          gt.keypoints.size() != static_cast<size_t>(keypoints))
        std::abort();
    }
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
  }
  return 0;
}
