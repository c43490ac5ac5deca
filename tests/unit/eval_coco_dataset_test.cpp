// SPDX-License-Identifier: Apache-2.0
// COCO json loading: category mapping, normalization, crowd skipping and errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "support/assets.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;

// Two images (200 x 100 and 50 x 50), categories 1 "person" and 3 "car".
const char* kJson = R"({
  "images": [
    {"id": 7, "file_name": "a.jpg", "width": 200, "height": 100},
    {"id": 9, "file_name": "b.jpg", "width": 50, "height": 50}
  ],
  "annotations": [
    {"id": 1, "image_id": 7, "category_id": 3, "bbox": [20, 10, 40, 50], "iscrowd": 0,
     "segmentation": [[20, 10, 60, 10, 60, 60]]},
    {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 1,
     "segmentation": {"counts": [1, 2], "size": [100, 200]}},
    {"id": 3, "image_id": 7, "category_id": 1, "bbox": [100, 50, 100, 50],
     "keypoints": [150, 60, 2, 0, 0, 0]}
  ],
  "categories": [{"id": 3, "name": "car"}, {"id": 1, "name": "person"}]
})";

struct Fixture {
  fs::path dir = testing::MakeTempDir("eval-coco");
  std::string json_path = (dir / "instances.json").string();
  std::string images = (dir / "images").string();
  explicit Fixture(const std::string& json = kJson) {
    fs::create_directories(images);
    std::ofstream(fs::path(images) / "a.jpg") << "x";
    std::ofstream(fs::path(images) / "b.jpg") << "x";
    std::ofstream(json_path) << json;
  }
};

TEST(EvalCocoDataset, MapsByNameAndNormalizes) {
  Fixture f;
  const Dataset ds = LoadCocoDataset(f.json_path, f.images, {"person", "bicycle", "car"});
  EXPECT_EQ(ds.names, (std::vector<std::string>{"person", "bicycle", "car"}));
  ASSERT_EQ(ds.images.size(), 2u);
  EXPECT_EQ(fs::path(ds.images[0].image_path).filename(), "a.jpg");
  ASSERT_EQ(ds.images[0].labels.size(), 2u);  // the crowd annotation is skipped
  EXPECT_TRUE(ds.images[1].labels.empty());

  const GroundTruth& car = ds.images[0].labels[0];
  EXPECT_EQ(car.class_id, 2);  // "car" in the model's names
  // [20, 10, 40, 50] on 200 x 100 -> x 0.1..0.3, y 0.1..0.6.
  EXPECT_FLOAT_EQ(car.box.x1, 0.1f);
  EXPECT_FLOAT_EQ(car.box.y1, 0.1f);
  EXPECT_FLOAT_EQ(car.box.x2, 0.3f);
  EXPECT_FLOAT_EQ(car.box.y2, 0.6f);
  ASSERT_EQ(car.polygons.size(), 1u);
  ASSERT_EQ(car.polygons[0].size(), 3u);
  EXPECT_FLOAT_EQ(car.polygons[0][1].x, 0.3f);
  EXPECT_FLOAT_EQ(car.polygons[0][2].y, 0.6f);

  const GroundTruth& person = ds.images[0].labels[1];
  EXPECT_EQ(person.class_id, 0);
  ASSERT_EQ(person.keypoints.size(), 2u);
  EXPECT_FLOAT_EQ(person.keypoints[0].x, 0.75f);
  EXPECT_FLOAT_EQ(person.keypoints[0].y, 0.6f);
  EXPECT_FLOAT_EQ(person.keypoints[0].visibility, 2.f);
  EXPECT_FLOAT_EQ(person.keypoints[1].visibility, 0.f);
  EXPECT_TRUE(ds.has_polygons);
  EXPECT_TRUE(ds.has_keypoints);
}

TEST(EvalCocoDataset, MapsBySortedIdWhenNamesDiffer) {
  Fixture f;
  const Dataset ds = LoadCocoDataset(f.json_path, f.images, {"person", "truck"});
  EXPECT_EQ(ds.names, (std::vector<std::string>{"person", "car"}));  // ids 1, 3
  EXPECT_EQ(ds.images[0].labels[0].class_id, 1);                     // car: id 3 is the second id
  EXPECT_EQ(ds.images[0].labels[1].class_id, 0);
  EXPECT_EQ(LoadCocoDataset(f.json_path, f.images, {}).images[0].labels[0].class_id, 1);
}

void ExpectBadInput(const std::string& json, const std::string& fragment,
                    bool remove_image = false) {
  Fixture f(json);
  if (remove_image) fs::remove(fs::path(f.images) / "b.jpg");
  try {
    LoadCocoDataset(f.json_path, f.images, {});
    ADD_FAILURE() << "no error for " << fragment;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(EvalCocoDataset, Errors) {
  EXPECT_THROW(LoadCocoDataset("/nonexistent/x.json", "/tmp", {}), Error);
  ExpectBadInput("{\"images\": [", "invalid JSON");
  // Issue 12, item 2: nesting is bounded before any tree is built (core::ParseJsonBounded).
  ExpectBadInput("{\"images\": " + std::string(100000, '[') + std::string(100000, ']') + "}",
                 "instances.json: JSON nested deeper than 64 levels");
  ExpectBadInput(R"({"images": [], "annotations": []})", "missing key 'categories'");
  ExpectBadInput(R"({"images": [{"id": 1, "file_name": "a.jpg", "width": 5}],
                     "annotations": [], "categories": []})",
                 "images[0]: missing key 'height'");
  ExpectBadInput(kJson, "b.jpg: image file missing", /*remove_image=*/true);
  ExpectBadInput(R"({"images": [{"id": 1, "file_name": "a.jpg", "width": 5, "height": 5}],
                     "annotations": [{"image_id": 1, "category_id": 4, "bbox": [0, 0, 1, 1]}],
                     "categories": [{"id": 1, "name": "a"}]})",
                 "annotations[0]: unknown category_id");
  ExpectBadInput(R"({"images": [{"id": 1, "file_name": "a.jpg", "width": 5, "height": 5}],
                     "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1]}],
                     "categories": [{"id": 1, "name": "a"}]})",
                 "'bbox' must have 4 values");
}

}  // namespace
}  // namespace cvdeploy
