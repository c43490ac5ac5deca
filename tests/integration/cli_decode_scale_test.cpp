// SPDX-License-Identifier: Apache-2.0
// --decode-scale on predict, validate and bench, and the int8 ISA report of info and bench:
// the flag is parsed and refused like every choice flag, both settings give matching
// detections, and the reports carry the documented keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/assets.h"
#include "support/fixtures.h"
#include "support/process.h"

namespace cvdeploy {
namespace {

using cvdeploy::testing::Asset;
using cvdeploy::testing::ExpectCliError;
using cvdeploy::testing::ParseJsonLines;
using cvdeploy::testing::RunCli;

double Iou(const nlohmann::json& a, const nlohmann::json& b) {
  const double ix = std::max(0.0, std::min(a["x2"].get<double>(), b["x2"].get<double>()) -
                                      std::max(a["x1"].get<double>(), b["x1"].get<double>()));
  const double iy = std::max(0.0, std::min(a["y2"].get<double>(), b["y2"].get<double>()) -
                                      std::max(a["y1"].get<double>(), b["y1"].get<double>()));
  const auto area = [](const nlohmann::json& x) {
    return (x["x2"].get<double>() - x["x1"].get<double>()) *
           (x["y2"].get<double>() - x["y1"].get<double>());
  };
  return ix * iy / (area(a) + area(b) - ix * iy);
}

std::vector<nlohmann::json> Predict(const std::string& decode_scale) {
  const auto run = RunCli({"predict", "--model", Asset("models/yolov8n-dq.onnx"), "--source",
                           Asset("images/bus.jpg"), Asset("images/zidane.jpg"), "--threads", "1",
                           "--decode-scale", decode_scale, "--json", "-"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  return ParseJsonLines(run.out);
}

TEST(CliDecodeScale, OnAndOffGiveMatchingDetections) {
  const auto on = Predict("on");
  const auto off = Predict("off");
  ASSERT_EQ(on.size(), 2u);
  ASSERT_EQ(off.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    // Coordinates of the original image either way.
    EXPECT_EQ(on[i]["width"], off[i]["width"]);
    EXPECT_EQ(on[i]["height"], off[i]["height"]);
    const auto& a = on[i]["detections"];
    const auto& b = off[i]["detections"];
    ASSERT_EQ(a.size(), b.size()) << on[i]["source"];
    ASSERT_GE(b.size(), 3u);
    for (const auto& d : b) {
      double best = 0;
      for (const auto& e : a) {
        if (e["class_id"] == d["class_id"]) best = std::max(best, Iou(d["box"], e["box"]));
      }
      EXPECT_GE(best, 0.95) << on[i]["source"] << " " << d.dump();
    }
  }
}

TEST(CliDecodeScale, BadValueIsAUsageError) {
  for (const char* command : {"predict", "validate", "bench"}) {
    std::vector<std::string> args = {command, "--model", Asset("models/yolov8n-dq.onnx")};
    if (std::string(command) == "predict") args.insert(args.end(), {"--source", Asset("images")});
    if (std::string(command) == "validate") {
      args.insert(args.end(), {"--data", Asset("datasets/coco128")});
    }
    args.insert(args.end(), {"--decode-scale", "half"});
    ExpectCliError(args, 2, "--decode-scale");
  }
}

TEST(CliDecodeScale, BenchRecordsTheSettingAndTheInt8Isa) {
  const auto run = RunCli({"bench", "--model", Asset("models/yolov8n-dq.onnx"), "--source",
                           Asset("images/zidane.jpg"), "--warmup", "0", "--iters", "2", "--threads",
                           "1", "--decode-scale", "off", "--json", "-"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // The JSON document follows the text report on stdout.
  const auto j = nlohmann::json::parse(run.out.substr(run.out.find("\n{") + 1));
  EXPECT_EQ(j["results"][0]["decode_scale"], "off");
  for (const char* key : {"avx2", "avx512_vnni", "avx_vnni", "amx_int8", "int8_dot_products"}) {
    EXPECT_TRUE(j["int8_isa"][key].is_boolean()) << key;
  }
  EXPECT_TRUE(j["warnings"].empty()) << "a float model never gets the int8 warning";
  EXPECT_NE(run.out.find("int8 ISA"), std::string::npos) << run.out;
}

TEST(CliDecodeScale, InfoReportsPrecisionAndHostInt8Isa) {
  const auto dq = RunCli({"info", Asset("models/yolov8n_int8.onnx"), "--json"});
  ASSERT_EQ(dq.exit_code, 0) << dq.err;
  const auto j = nlohmann::json::parse(dq.out);
  EXPECT_EQ(j["quantization"], "dynamic");
  EXPECT_TRUE(j["host"]["int8_isa"]["int8_dot_products"].is_boolean());
  // The warning is there when an AVX2 host lacks VNNI/AMX, and never on a host with them.
  const bool fast = j["host"]["int8_isa"]["int8_dot_products"].get<bool>();
  const bool warned = !j["host"]["int8_warning"].get<std::string>().empty();
  if (fast) {
    EXPECT_FALSE(warned);
  } else if (j["host"]["int8_isa"]["avx2"].get<bool>()) {
    EXPECT_TRUE(warned);
  }

  const auto text = RunCli({"info", Asset("models/yolov8n-dq.onnx")});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("precision  float"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("host int8  "), std::string::npos) << text.out;
}

}  // namespace
}  // namespace cvdeploy
