// SPDX-License-Identifier: Apache-2.0
// COCO instances json (LoadCocoDataset, cvdeploy/eval.h), which only reads from a path: the
// input is written to a scratch file. The image directory holds empty files a.jpg, b.jpg and
// 000000000009.jpg, the names the seeds use, so annotations get past the image existence
// check. Model names are a COCO prefix, so both category mappings (by name and by id order)
// are reached. Malformed documents must be Error(kBadInput).
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& scratch = cvdeploy::fuzz::ScratchDir::Get();
  static const std::string images_dir = [&] {
    std::filesystem::create_directories(scratch.path() / "coco_images");
    for (const char* name : {"a.jpg", "b.jpg", "000000000009.jpg"}) {
      scratch.Write(std::string("coco_images/") + name, nullptr, 0);
    }
    return (scratch.path() / "coco_images").string();
  }();
  static const std::vector<std::string> kNames = {"person", "bicycle", "car", "motorcycle"};
  const std::string path = scratch.Write("instances.json", data, size);
  try {
    const cvdeploy::Dataset dataset = cvdeploy::LoadCocoDataset(path, images_dir, kNames);
    for (const auto& image : dataset.images) {
      for (const auto& gt : image.labels) {
        if (gt.class_id < 0) std::abort();
      }
    }
  } catch (const cvdeploy::Error& e) {
    if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
  }
  return 0;
}
