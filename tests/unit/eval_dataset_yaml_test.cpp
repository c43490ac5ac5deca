// SPDX-License-Identifier: Apache-2.0
// Ultralytics dataset YAML files: the parser (ParseDatasetYaml), Ultralytics' images/ -> labels/
// substitution, split resolution (directories, image lists, single images, `path`, `../`),
// names from a list, a map or only `nc`, pose labels without keypoints, and the errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "cvdeploy/dataset_yaml.h"
#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "model/yaml_names.h"
#include "support/assets.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;
using model::DatasetYaml;
using model::ParseDatasetYaml;

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

std::string ErrorOf(const std::function<void()>& f, ErrorCode code = ErrorCode::kBadInput) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(DatasetYamlParse, UltralyticsForms) {
  const DatasetYaml y = ParseDatasetYaml(
      "# comment\n"
      "path: ../datasets/coco  # dataset root dir\n"
      "train: train2017.txt\n"
      "val: 'images/val2017'\n"
      "test:  # 20288 of 40670 images, submit to the server\n"
      "nc: 3\n"
      "names: ['person', bicycle, \"car\"]\n"
      "download: |\n"
      "  from ultralytics.utils.downloads import download\n"
      "  val: not a key at this indentation\n");
  EXPECT_EQ(y.path, "../datasets/coco");
  ASSERT_EQ(y.splits.size(), 2u);  // test: has no value
  EXPECT_EQ(y.splits.at("train"), std::vector<std::string>{"train2017.txt"});
  EXPECT_EQ(y.splits.at("val"), std::vector<std::string>{"images/val2017"});
  EXPECT_EQ(y.names, (std::vector<std::string>{"person", "bicycle", "car"}));
  ASSERT_TRUE(y.nc.has_value());
  EXPECT_EQ(*y.nc, 3);
}

TEST(DatasetYamlParse, ListsNullsAndMaps) {
  const DatasetYaml y = ParseDatasetYaml(
      "train:\n"
      "  - images/a\n"
      "  - 'images/b'  # second\n"
      "- images/c\n"
      "val: [images/v1, \"images/v2\"]\n"
      "test: null\n"
      "path: ~\n"
      "names:\n"
      "  0: person\n"
      "  2: car\n");
  EXPECT_EQ(y.path, "");
  EXPECT_EQ(y.splits.at("train"), (std::vector<std::string>{"images/a", "images/b", "images/c"}));
  EXPECT_EQ(y.splits.at("val"), (std::vector<std::string>{"images/v1", "images/v2"}));
  EXPECT_EQ(y.splits.count("test"), 0u);
  EXPECT_EQ(y.names, (std::vector<std::string>{"person", "1", "car"}));
  EXPECT_FALSE(y.nc.has_value());
}

TEST(DatasetYamlParse, Errors) {
  EXPECT_NE(ErrorOf([] { ParseDatasetYaml("nc: many\n"); }).find("nc: 'many'"), std::string::npos);
  EXPECT_NE(ErrorOf([] { ParseDatasetYaml("nc: 0\n"); }).find("nc: '0'"), std::string::npos);
  std::string many = "val:\n";
  for (int i = 0; i < 4097; ++i) many += "  - d" + std::to_string(i) + "\n";
  EXPECT_NE(ErrorOf([&] { ParseDatasetYaml(many); }).find("val: more than 4096 entries"),
            std::string::npos);
  EXPECT_TRUE(ParseDatasetYaml("").splits.empty());
  EXPECT_TRUE(ParseDatasetYaml("names\n: x\n[}{\n").splits.empty());
}

TEST(DatasetYaml, LabelPathIsUltralyticsSubstitution) {
  EXPECT_EQ(LabelPathForImage("/d/images/val/x.jpg"), "/d/labels/val/x.txt");
  // The last "/images/" only, as Ultralytics' rsplit(sa, 1).
  EXPECT_EQ(LabelPathForImage("/images/d/images/x.png"), "/images/d/labels/x.txt");
  EXPECT_EQ(LabelPathForImage("/d/pics/x.jpeg"), "/d/pics/x.txt");
  EXPECT_EQ(LabelPathForImage("rel/images/a.b.jpg"), "rel/labels/a.b.txt");
}

// root/images/{train,val}/*.jpg with labels beside, a list file, a YAML per case.
fs::path MakeTree() {
  const fs::path root = testing::MakeTempDir("dataset-yaml");
  for (const char* split : {"train", "val"}) {
    for (const char* stem : {"a", "b"}) {
      Write(root / "images" / split / (std::string(stem) + ".jpg"), "not decoded");
      Write(root / "labels" / split / (std::string(stem) + ".txt"), "1 0.5 0.5 0.2 0.2\n");
    }
  }
  Write(root / "lists" / "val.txt", "./../images/val/b.jpg\nimages/train/a.jpg\n\nnotes.md\n");
  return root;
}

TEST(DatasetYaml, DirectoriesListsAndNames) {
  const fs::path root = MakeTree();
  Write(root / "cfg" / "data.yaml",
        "path: ..\ntrain: images/train\nval: [images/val, lists/val.txt, images/train/b.jpg]\n"
        "names: [person, car]\n");
  const std::string yaml = (root / "cfg" / "data.yaml").string();
  EXPECT_TRUE(IsDatasetYaml(yaml));
  EXPECT_FALSE(IsDatasetYaml(root.string()));
  const Dataset val = LoadDatasetYaml(yaml, "val");
  std::vector<std::string> got;
  for (const auto& im : val.images) {
    got.push_back(fs::path(im.image_path).lexically_relative(root).string());
    ASSERT_EQ(im.labels.size(), 1u) << im.image_path;
    EXPECT_EQ(im.labels[0].class_id, 1);
  }
  EXPECT_EQ(got,
            (std::vector<std::string>{"images/val/a.jpg", "images/val/b.jpg", "images/val/b.jpg",
                                      "images/train/a.jpg", "images/train/b.jpg"}));
  EXPECT_EQ(val.names, (std::vector<std::string>{"person", "car"}));
  EXPECT_EQ(LoadDatasetYaml(yaml, "train").images.size(), 2u);
  // LoadYoloDataset takes the YAML too (its val split), so compare and quantize --val do.
  EXPECT_EQ(LoadYoloDataset(yaml).images.size(), 5u);
}

TEST(DatasetYaml, PathAndParentFallbacks) {
  const fs::path root = MakeTree();
  // No `path`: the YAML's directory. "../images/val" that does not exist is read as
  // "images/val", as Ultralytics does.
  Write(root / "nopath.yaml", "val: ../images/val\nnc: 2\n");
  const Dataset ds = LoadDatasetYaml((root / "nopath.yaml").string(), "val");
  EXPECT_EQ(ds.images.size(), 2u);
  EXPECT_EQ(ds.names, (std::vector<std::string>{"class_0", "class_1"}));
  EXPECT_TRUE(ds.warnings.empty());
  // A `path` that names no directory: the YAML's directory, with a warning.
  Write(root / "badpath.yaml", "path: /no/such/root\nval: images/val\n");
  const Dataset warned = LoadDatasetYaml((root / "badpath.yaml").string(), "val");
  EXPECT_EQ(warned.images.size(), 2u);
  ASSERT_EQ(warned.warnings.size(), 1u);
  EXPECT_NE(warned.warnings[0].find("path: /no/such/root is no directory"), std::string::npos);
  // A class id beyond the YAML's names makes the line corrupt (the image is left out).
  Write(root / "onename.yaml", "val: images/val\nnames: [person]\n");
  const std::string one = (root / "onename.yaml").string();
  EXPECT_NE(ErrorOf([&] { LoadDatasetYaml(one, "val"); }).find("no images left"),
            std::string::npos);
}

TEST(DatasetYaml, Errors) {
  const fs::path root = MakeTree();
  Write(root / "d.yaml", "train: images/train\nval: images/none\n");
  const std::string yaml = (root / "d.yaml").string();
  const std::string missing_split = ErrorOf([&] { LoadDatasetYaml(yaml, "test"); });
  EXPECT_NE(missing_split.find("d.yaml: no 'test' split (the file has train, val)"),
            std::string::npos)
      << missing_split;
  const std::string missing_dir = ErrorOf([&] { LoadDatasetYaml(yaml, "val"); });
  EXPECT_NE(missing_dir.find("d.yaml: val: "), std::string::npos) << missing_dir;
  EXPECT_NE(missing_dir.find("images/none does not exist"), std::string::npos) << missing_dir;
  ErrorOf([&] { LoadDatasetYaml(yaml, "valid"); }, ErrorCode::kInvalidArgument);
  EXPECT_NE(ErrorOf([&] { LoadDatasetYaml((root / "absent.yaml").string()); }).find("absent.yaml"),
            std::string::npos);
  Write(root / "bad.yaml", "val: images/val\nnc: x\n");
  EXPECT_NE(ErrorOf([&] { LoadDatasetYaml((root / "bad.yaml").string()); }).find("bad.yaml: nc:"),
            std::string::npos);
  Write(root / "empty" / "keep", "");
  Write(root / "e.yaml", "val: empty\n");
  EXPECT_NE(ErrorOf([&] { LoadDatasetYaml((root / "e.yaml").string()); }).find("no images"),
            std::string::npos);
}

TEST(DatasetYaml, PoseLabelsWithoutKeypointsAreBoxes) {
  const fs::path root = MakeTree();  // box-only labels
  Write(root / "pose.yaml", "val: images/val\nnames: [a, b]\n");
  const Dataset ds = LoadDatasetYaml((root / "pose.yaml").string(), "val", 17);
  ASSERT_EQ(ds.images.size(), 2u);
  EXPECT_FALSE(ds.has_keypoints);
  ASSERT_EQ(ds.images[0].labels.size(), 1u);
  EXPECT_TRUE(ds.images[0].labels[0].keypoints.empty());
  EXPECT_NEAR(ds.images[0].labels[0].box.x1, 0.4f, 1e-6);
}

TEST(DatasetYaml, Coco128AssetYaml) {
  const Dataset ds = LoadDatasetYaml(testing::Asset("datasets/coco128/coco128.yaml"), "val");
  const Dataset dir = LoadYoloDataset(testing::Asset("datasets/coco128"));
  ASSERT_EQ(ds.images.size(), dir.images.size());
  for (size_t i = 0; i < ds.images.size(); ++i) {
    EXPECT_EQ(fs::path(ds.images[i].image_path).lexically_normal(),
              fs::path(dir.images[i].image_path).lexically_normal());
    EXPECT_EQ(ds.images[i].labels.size(), dir.images[i].labels.size());
  }
  EXPECT_EQ(ds.names, dir.names);
  ErrorOf([] { LoadDatasetYaml(testing::Asset("datasets/coco128/coco128.yaml"), "test"); });
}

}  // namespace
}  // namespace cvdeploy
