// SPDX-License-Identifier: Apache-2.0
// YOLO txt dataset loading: label forms, names YAML, and every documented error.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cvdeploy/error.h"
#include "cvdeploy/eval.h"
#include "model/yaml_names.h"
#include "support/assets.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// A dataset directory with the given images (content is irrelevant to the loader).
fs::path MakeDataset(const std::vector<std::string>& images) {
  const fs::path dir = testing::MakeTempDir("eval-yolo");
  fs::create_directories(dir / "images");
  for (const auto& name : images) Write(dir / "images" / name, "not decoded");
  return dir;
}

// Expects BadInput whose message contains `fragment` (file and line, typically).
void ExpectBadInput(const std::string& dir, const std::string& fragment, int keypoints = 0) {
  try {
    LoadYoloDataset(dir, keypoints);
    ADD_FAILURE() << "no error for " << fragment;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(EvalYoloDataset, BoxesPolygonsBackgroundAndNames) {
  const fs::path dir = MakeDataset({"b.png", "a.jpg", "c.JPG", "notes.txt"});
  Write(dir / "labels" / "a.txt", "0 0.5 0.5 0.2 0.4\n\n3 0.25 0.25 0.5 0.5\n");
  Write(dir / "labels" / "b.txt", "1 0.1 0.1 0.3 0.1 0.2 0.4\n");
  // Four names: class 3 is a valid id (a class id >= the number of names is a corrupt line).
  Write(dir / "data.yaml",
        "path: .\nnames:\n  0: person\n  1: 'traffic light'  # quoted\n  2: car\n  3: dog\n");
  const Dataset ds = LoadYoloDataset(dir.string());
  ASSERT_EQ(ds.images.size(), 3u);  // notes.txt is not an image
  EXPECT_EQ(fs::path(ds.images[0].image_path).filename(), "a.jpg");
  EXPECT_EQ(fs::path(ds.images[1].image_path).filename(), "b.png");
  EXPECT_EQ(fs::path(ds.images[2].image_path).filename(), "c.JPG");

  ASSERT_EQ(ds.images[0].labels.size(), 2u);
  const GroundTruth& box = ds.images[0].labels[0];
  EXPECT_EQ(box.class_id, 0);
  EXPECT_FLOAT_EQ(box.box.x1, 0.4f);  // cx - w / 2
  EXPECT_FLOAT_EQ(box.box.y1, 0.3f);
  EXPECT_FLOAT_EQ(box.box.x2, 0.6f);
  EXPECT_FLOAT_EQ(box.box.y2, 0.7f);
  EXPECT_TRUE(box.polygons.empty());
  EXPECT_EQ(ds.images[0].labels[1].class_id, 3);

  ASSERT_EQ(ds.images[1].labels.size(), 1u);
  const GroundTruth& poly = ds.images[1].labels[0];
  EXPECT_EQ(poly.class_id, 1);
  ASSERT_EQ(poly.polygons.size(), 1u);
  EXPECT_EQ(poly.polygons[0].size(), 3u);
  EXPECT_FLOAT_EQ(poly.box.x1, 0.1f);  // the polygon's bounds
  EXPECT_FLOAT_EQ(poly.box.y1, 0.1f);
  EXPECT_FLOAT_EQ(poly.box.x2, 0.3f);
  EXPECT_FLOAT_EQ(poly.box.y2, 0.4f);

  EXPECT_TRUE(ds.images[2].labels.empty());  // no label file: background
  EXPECT_TRUE(ds.has_polygons);
  EXPECT_FALSE(ds.has_keypoints);
  EXPECT_EQ(ds.names, (std::vector<std::string>{"person", "traffic light", "car", "dog"}));
  EXPECT_TRUE(ds.warnings.empty());
}

TEST(EvalYoloDataset, Keypoints) {
  const fs::path dir = MakeDataset({"p.jpg", "q.jpg"});
  // K = 2: with visibility (5 + 6 values) and without (5 + 4; negative = unlabelled).
  Write(dir / "labels" / "p.txt", "0 0.5 0.5 0.2 0.2 0.4 0.45 2 0.6 0.55 0\n");
  Write(dir / "labels" / "q.txt", "0 0.5 0.5 0.2 0.2 0.4 0.45 -1 -1\n");
  const Dataset ds = LoadYoloDataset(dir.string(), 2);
  EXPECT_TRUE(ds.has_keypoints);
  EXPECT_FALSE(ds.has_polygons);
  const auto& k = ds.images[0].labels[0].keypoints;
  ASSERT_EQ(k.size(), 2u);
  EXPECT_FLOAT_EQ(k[0].x, 0.4f);
  EXPECT_FLOAT_EQ(k[0].y, 0.45f);
  EXPECT_FLOAT_EQ(k[0].visibility, 2.f);
  EXPECT_FLOAT_EQ(k[1].visibility, 0.f);
  const auto& k2 = ds.images[1].labels[0].keypoints;
  ASSERT_EQ(k2.size(), 2u);
  EXPECT_FLOAT_EQ(k2[0].visibility, 1.f);
  EXPECT_FLOAT_EQ(k2[1].visibility, 0.f);
  ExpectBadInput(dir.string(), "p.txt:1: expected 8 or 7 values", 1);
}

TEST(EvalYoloDataset, Errors) {
  const fs::path missing = fs::path(testing::MakeTempDir("eval-yolo")) / "nope";
  ExpectBadInput(missing.string(), "no such dataset directory");

  const fs::path no_images = testing::MakeTempDir("eval-yolo");
  ExpectBadInput(no_images.string(), "images: no such directory");

  ExpectBadInput(MakeDataset({}).string(), "no images");

  const auto with_label = [](const std::string& text) {
    const fs::path dir = MakeDataset({"x.jpg"});
    Write(dir / "labels" / "x.txt", text);
    return dir.string();
  };
  ExpectBadInput(with_label("0 0.5 0.5 0.2 0.2\n0 0.5 abc 0.2 0.2\n"),
                 "x.txt:2: not a number: 'abc'");
  ExpectBadInput(with_label("0 0.5 0.5 0.2\n"), "x.txt:1: expected 5 values");
  ExpectBadInput(with_label("0 0.5 0.5 0.2 0.2 0.3\n"), "x.txt:1: expected 5 values");
  ExpectBadInput(with_label("0 0.1 0.1 0.2 0.2 0.3 0.3 0.4\n"), "x.txt:1: expected 5 values");
  // Not a regular file: refused, never read (a FIFO would block the read forever).
  const fs::path fifo_dir = MakeDataset({"x.jpg"});
  fs::create_directories(fifo_dir / "labels");
  ASSERT_EQ(mkfifo((fifo_dir / "labels" / "x.txt").c_str(), 0644), 0);
  ExpectBadInput(fifo_dir.string(), "x.txt: is a FIFO, expected a regular file");
  const fs::path dir_dir = MakeDataset({"x.jpg"});
  fs::create_directories(dir_dir / "labels" / "x.txt");
  ExpectBadInput(dir_dir.string(), "x.txt: is a directory");
  ExpectBadInput(with_label("1.5 0.5 0.5 0.2 0.2\n"), "x.txt:1: class id is not an integer");
}

// Issue 12, item 14: lines that Ultralytics' verify_image_label refuses were accepted (and a
// class id of 1e20 went through static_cast<int>, undefined behaviour). As Ultralytics, an
// image with such a line is left out, duplicates are removed, and both are reported.
TEST(EvalYoloDataset, CorruptLinesIgnoreTheImageAsUltralytics) {
  struct Case {
    std::string line, reason;
  };
  const Case cases[] = {
      {"99999999999999999999 0.5 0.5 0.2 0.2",
       "x.txt:2: class id 99999999999999999999 out of range"},
      {"-1 0.5 0.5 0.2 0.2", "x.txt:2: negative class id -1"},
      {"2 0.5 0.5 0.2 0.2", "x.txt:2: class id 2 out of range (the dataset has 2 classes)"},
      {"0 -0.5 0.5 0.2 0.2", "x.txt:2: negative coordinate"},
      {"0 0.5 1.5 0.2 0.2", "x.txt:2: coordinate 1.500000 above 1"},
      {"0 0.5 0.5 0 0.2", "x.txt:2: box width or height is not positive"},
      {"1 0.1 0.1 0.2 0.1 1.2 0.3", "x.txt:2: coordinate 1.200000 above 1"},
  };
  for (const Case& c : cases) {
    const fs::path dir = MakeDataset({"x.jpg", "y.jpg"});
    Write(dir / "labels" / "x.txt", "0 0.5 0.5 0.2 0.2\n" + c.line + "\n1 0.5 0.5 0.1 0.1\n");
    Write(dir / "labels" / "y.txt", "1 0.5 0.5 0.2 0.2\n");
    const Dataset d = LoadYoloDataset(dir.string(), 0, 2);
    ASSERT_EQ(d.images.size(), 1u) << c.line;
    EXPECT_NE(d.images[0].image_path.find("y.jpg"), std::string::npos);
    ASSERT_EQ(d.warnings.size(), 1u) << c.line;
    EXPECT_NE(d.warnings[0].find("x.txt: 1 corrupt label line(s), image ignored"),
              std::string::npos)
        << d.warnings[0];
    EXPECT_NE(d.warnings[0].find(c.reason), std::string::npos) << d.warnings[0];
  }
  // The 1% tolerance of Ultralytics: -0.01 and 1.01 pass. Unknown class count: only the
  // int range is checked.
  const fs::path ok = MakeDataset({"x.jpg"});
  Write(ok / "labels" / "x.txt", "5 1.01 0.5 0.2 0.2\n0 -0.01 0.5 0.2 0.2\n");
  EXPECT_EQ(LoadYoloDataset(ok.string()).images[0].labels.size(), 2u);
  // Every image corrupt: an error naming the first bad line.
  const fs::path all = MakeDataset({"x.jpg"});
  Write(all / "labels" / "x.txt", "99999999999999999999 0.5 0.5 0.2 0.2\n");
  ExpectBadInput(all.string(), "x.txt:1: class id 99999999999999999999 out of range");
}

TEST(EvalYoloDataset, DuplicateLinesAreRemoved) {
  const fs::path dir = MakeDataset({"x.jpg"});
  Write(dir / "labels" / "x.txt",
        "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n0 0.50 0.5 0.2 0.2\n1 0.1 0.1 0.1 0.1\n");
  const Dataset d = LoadYoloDataset(dir.string());
  ASSERT_EQ(d.images.size(), 1u);
  EXPECT_EQ(d.images[0].labels.size(), 2u);
  ASSERT_EQ(d.warnings.size(), 1u);
  EXPECT_NE(d.warnings[0].find("x.txt: 2 duplicate label line(s) removed"), std::string::npos)
      << d.warnings[0];
}

TEST(EvalYamlNames, HugeMappingKeyIsRefusedNotAllocated) {
  try {
    model::ParseYamlNames("names:\n  0: person\n  2000000000: huge\n");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("class id 2000000000 out of range"), std::string::npos)
        << e.what();
  }
}

TEST(EvalYamlNames, Forms) {
  using model::ParseYamlNames;
  EXPECT_EQ(ParseYamlNames("nc: 2\nnames:\n  - cat\n  - \"dog\"\ntrain: x\n"),
            (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(ParseYamlNames("names:\n- cat\n- dog\n"), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(ParseYamlNames("names: ['a b', c]  # inline\n"),
            (std::vector<std::string>{"a b", "c"}));
  EXPECT_EQ(ParseYamlNames("names: [a,\n  b]\n"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ParseYamlNames("names: {0: a, 2: c}\n"), (std::vector<std::string>{"a", "1", "c"}));
  EXPECT_EQ(ParseYamlNames("names:\n  1: b\n  0: a\n\n  # note\n  2: c # hash\nval: x\n"),
            (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(ParseYamlNames("nc: 3\n").empty());
  EXPECT_TRUE(ParseYamlNames("data:\n  names:\n    - x\n").empty());  // not top level
}

TEST(EvalYoloDataset, Coco128Asset) {
  const std::string dir = testing::Asset("datasets/coco128");
  const Dataset ds = LoadYoloDataset(dir);
  EXPECT_EQ(ds.images.size(), 86u);
  ASSERT_EQ(ds.names.size(), 80u);
  EXPECT_EQ(ds.names[0], "person");
  EXPECT_EQ(ds.names[9], "traffic light");
  EXPECT_EQ(ds.names[79], "toothbrush");
  int background = 0;
  for (const auto& image : ds.images) background += image.labels.empty() ? 1 : 0;
  EXPECT_EQ(background, 1);  // 86 images, 85 label files
  EXPECT_FALSE(ds.has_polygons);
}

}  // namespace
}  // namespace cvdeploy
