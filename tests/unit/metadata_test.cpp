// SPDX-License-Identifier: Apache-2.0
#include "model/metadata.h"

#include <gtest/gtest.h>

#include <fstream>

#include "cvdeploy/error.h"
#include "cvdeploy/predictor.h"
#include "support/assets.h"

namespace cvdeploy::model {
namespace {

TEST(NamesLiteralTest, ParsesUltralyticsDict) {
  const auto names =
      ParseNamesLiteral("{0: 'person', 1: \"traffic light\", 2: 'it\\'s', 3: 'a, b: c'}");
  ASSERT_EQ(names.size(), 4u);
  EXPECT_EQ(names[1], "traffic light");
  EXPECT_EQ(names[2], "it's");
  EXPECT_EQ(names[3], "a, b: c");
}

TEST(NamesLiteralTest, ParsesListAndOrdersDictKeys) {
  EXPECT_EQ(ParseNamesLiteral("['a', 'b']"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ParseNamesLiteral("{1: 'b', 0: 'a',}"), (std::vector<std::string>{"a", "b"}));
}

TEST(NamesLiteralTest, RejectsMalformed) {
  for (const char* bad : {"", "{0: person}", "{0: 'a', 2: 'c'}", "{0: 'a'", "['a' 'b']",
                          "{0: 'a'} x", "{-1: 'a'}", "{0: 'a', 0: 'b'}"}) {
    EXPECT_THROW(ParseNamesLiteral(bad), Error) << bad;
  }
}

TEST(IntListTest, ParsesForms) {
  EXPECT_EQ(ParseIntList("[640, 640]"), (std::vector<int>{640, 640}));
  EXPECT_EQ(ParseIntList("(17, 3)"), (std::vector<int>{17, 3}));
  EXPECT_EQ(ParseIntList("32"), (std::vector<int>{32}));
  EXPECT_THROW(ParseIntList("[640, x]"), Error);
  EXPECT_THROW(ParseIntList("[640"), Error);
}

struct Expected {
  const char* file;
  Task task;
  size_t classes;
  int imgsz;
  OutputLayout layout;
  bool warns_dynamic_quant;
};

TEST(SampleModelMetadataTest, EverySampleModelParses) {
  const Expected cases[] = {
      {"yolov8n-dq.onnx", Task::kDetect, 80, 640, OutputLayout::kChannelsFirst, false},
      {"yolo11n-dq.onnx", Task::kDetect, 80, 640, OutputLayout::kChannelsFirst, false},
      {"yolov8n-seg-dq.onnx", Task::kSegment, 80, 640, OutputLayout::kChannelsFirst, false},
      {"yolo11n-pose-dq.onnx", Task::kPose, 1, 640, OutputLayout::kChannelsFirst, false},
      {"yolov8n_int8.onnx", Task::kDetect, 80, 640, OutputLayout::kChannelsFirst, true},
      {"yolo11n_int8_320.onnx", Task::kDetect, 80, 320, OutputLayout::kChannelsFirst, true},
  };
  for (const Expected& e : cases) {
    SCOPED_TRACE(e.file);
    const ModelInfo info = ReadModelInfo(cvdeploy::testing::Asset(std::string("models/") + e.file));
    EXPECT_EQ(info.meta.task, e.task);
    EXPECT_EQ(info.meta.names.size(), e.classes);
    EXPECT_EQ(info.meta.imgsz_h, e.imgsz);
    EXPECT_EQ(info.meta.imgsz_w, e.imgsz);
    EXPECT_EQ(info.meta.layout, e.layout);
    EXPECT_EQ(info.meta.stride, 32);
    EXPECT_EQ(info.meta.batch, 1);
    EXPECT_FALSE(info.meta.dynamic);
    EXPECT_TRUE(info.meta.inferred.empty()) << "metadata should be complete";
    EXPECT_EQ(info.warnings.empty(), !e.warns_dynamic_quant);
    EXPECT_EQ(info.sha256.size(), 64u);
    ASSERT_EQ(info.inputs.size(), 1u);
    EXPECT_EQ(info.inputs[0].name, "images");
    EXPECT_EQ(info.meta.raw.at("author").find("Ultralytics"), 0u);
    if (e.task == Task::kPose) {
      ASSERT_TRUE(info.meta.kpt_shape.has_value());
      EXPECT_EQ(*info.meta.kpt_shape, std::make_pair(17, 3));
      EXPECT_EQ(info.meta.names[0], "person");
    }
    if (e.task == Task::kSegment) {
      EXPECT_EQ(info.meta.mask_channels, 32);
    }
    if (e.classes == 80) {
      EXPECT_EQ(info.meta.names[0], "person");
      EXPECT_EQ(info.meta.names[79], "toothbrush");
    }
  }
}

TEST(SampleModelMetadataTest, Sha256OfSampleMatchesManifest) {
  const ModelInfo info = ReadModelInfo(cvdeploy::testing::Asset("models/yolov8n-dq.onnx"));
  EXPECT_EQ(info.sha256, "31fc5822a22645e90d64b37a4dcb39466cbecb56b3644393bf5cf5522727938b");
  EXPECT_EQ(info.file_size, 12836693u);
  EXPECT_EQ(info.opsets.at(""), 11);
}

TEST(SampleModelMetadataTest, ImgszOverrideRejectedOnFixedModel) {
  SessionOptions options;
  options.imgsz = 320;
  EXPECT_THROW(Predictor::Load(cvdeploy::testing::Asset("models/yolov8n-dq.onnx"), options), Error);
}

}  // namespace
}  // namespace cvdeploy::model

namespace cvdeploy::model {
namespace {

TEST(NamesFileTest, LinesYamlAndLiteral) {
  const std::string dir = cvdeploy::testing::MakeTempDir("names");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  EXPECT_EQ(ReadNamesFile(write("a.txt", "cat\n\n# comment\ndog\n")),
            (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(ReadNamesFile(write("b.yaml", "path: x\nnames:\n  0: cat\n  1: 'hot dog'\n")),
            (std::vector<std::string>{"cat", "hot dog"}));
  EXPECT_EQ(ReadNamesFile(write("c.txt", "{0: 'a', 1: 'b'}")),
            (std::vector<std::string>{"a", "b"}));
  EXPECT_THROW(ReadNamesFile(write("d.txt", "")), Error);
  EXPECT_THROW(ReadNamesFile(dir + "/missing.txt"), Error);
  EXPECT_EQ(ReadNamesFile(cvdeploy::testing::Asset("datasets/coco128/coco128.yaml")).size(), 80u);
}

}  // namespace
}  // namespace cvdeploy::model
