// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/serialize.h"

#include <cmath>

namespace cvdeploy {
namespace {

// Rounds to `decimals` places so that JSON shows e.g. 0.9148, not 0.9148000000000001.
double Round(double v, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(v * scale) / scale;
}

nlohmann::ordered_json PolygonJson(const std::vector<cv::Point>& polygon) {
  nlohmann::ordered_json points = nlohmann::ordered_json::array();
  for (const cv::Point& p : polygon) points.push_back({p.x, p.y});
  return points;
}

}  // namespace

nlohmann::ordered_json ResultToJson(const Result& result, bool all_polygons) {
  nlohmann::ordered_json dets = nlohmann::ordered_json::array();
  for (const Detection& d : result.detections) {
    nlohmann::ordered_json j = {{"class_id", d.class_id},
                                {"class_name", d.class_name},
                                {"confidence", Round(d.confidence, 4)},
                                {"box",
                                 {{"x1", Round(d.box.x1, 1)},
                                  {"y1", Round(d.box.y1, 1)},
                                  {"x2", Round(d.box.x2, 1)},
                                  {"y2", Round(d.box.y2, 1)}}}};
    if (result.task == Task::kSegment) {
      j["polygon"] =
          d.polygons.empty() ? nlohmann::ordered_json::array() : PolygonJson(d.polygons.front());
      if (all_polygons) {
        nlohmann::ordered_json all = nlohmann::ordered_json::array();
        for (const auto& p : d.polygons) all.push_back(PolygonJson(p));
        j["polygons"] = all;
      }
    }
    if (!d.keypoints.empty()) {
      nlohmann::ordered_json kps = nlohmann::ordered_json::array();
      for (const Keypoint& k : d.keypoints) {
        kps.push_back({Round(k.x, 1), Round(k.y, 1), Round(k.visibility, 4)});
      }
      j["keypoints"] = kps;
    }
    if (d.rotated) {
      j["angle"] = Round(d.rotated->angle, 5);
      j["rotated_box"] = {{"cx", Round(d.rotated->cx, 1)},
                          {"cy", Round(d.rotated->cy, 1)},
                          {"w", Round(d.rotated->w, 1)},
                          {"h", Round(d.rotated->h, 1)},
                          {"angle", Round(d.rotated->angle, 5)}};
    }
    if (!d.top5.empty()) {
      nlohmann::ordered_json top = nlohmann::ordered_json::array();
      for (const ClassScore& c : d.top5) {
        top.push_back({{"class_id", c.class_id},
                       {"class_name", c.class_name},
                       {"confidence", Round(c.score, 4)}});
      }
      j["top5"] = top;
    }
    dets.push_back(std::move(j));
  }
  return {{"width", result.width},
          {"height", result.height},
          {"task", std::string(TaskName(result.task))},
          {"detections", dets},
          {"speed_ms",
           {{"decode", Round(result.speed_ms.decode, 3)},
            {"preprocess", Round(result.speed_ms.preprocess, 3)},
            {"inference", Round(result.speed_ms.inference, 3)},
            {"postprocess", Round(result.speed_ms.postprocess, 3)}}}};
}

nlohmann::ordered_json ModelInfoToJson(const ModelInfo& info) {
  auto tensors = [](const std::vector<TensorInfo>& list) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const TensorInfo& t : list) {
      out.push_back(
          {{"name", t.name}, {"type", t.type}, {"shape", t.shape}, {"dim_names", t.dim_names}});
    }
    return out;
  };
  nlohmann::ordered_json opsets = nlohmann::ordered_json::object();
  for (const auto& [domain, version] : info.opsets)
    opsets[domain.empty() ? "ai.onnx" : domain] = version;
  const ModelMeta& m = info.meta;
  nlohmann::ordered_json meta = {{"task", std::string(TaskName(m.task))},
                                 {"names", m.names},
                                 {"num_classes", m.names.size()},
                                 {"imgsz", {m.imgsz_h, m.imgsz_w}},
                                 {"stride", m.stride},
                                 {"batch", m.batch},
                                 {"dynamic", m.dynamic},
                                 {"half", m.half},
                                 {"end2end", m.end2end},
                                 {"inferred", m.inferred}};
  static const char* kLayouts[] = {"channels_first", "yolov5", "end2end", "classify"};
  meta["layout"] = kLayouts[static_cast<int>(m.layout)];
  if (m.kpt_shape) meta["kpt_shape"] = {m.kpt_shape->first, m.kpt_shape->second};
  if (m.mask_channels) meta["mask_channels"] = m.mask_channels;
  return {{"path", info.path},
          {"file_size", info.file_size},
          {"sha256", info.sha256},
          {"producer", {{"name", info.producer_name}, {"version", info.producer_version}}},
          {"ir_version", info.ir_version},
          {"opsets", opsets},
          {"graph_name", info.graph_name},
          {"inputs", tensors(info.inputs)},
          {"outputs", tensors(info.outputs)},
          {"model", meta},
          {"metadata", info.meta.raw},
          {"quantization", info.quantization},
          {"warnings", info.warnings}};
}

nlohmann::ordered_json MetricsToJson(const Metrics& metrics) {
  nlohmann::ordered_json per_class = nlohmann::ordered_json::array();
  for (const ClassMetrics& c : metrics.per_class) {
    per_class.push_back({{"class_id", c.class_id},
                         {"class_name", c.name},
                         {"images", c.images},
                         {"instances", c.instances},
                         {"precision", c.precision},
                         {"recall", c.recall},
                         {"map50", c.map50},
                         {"map50_95", c.map50_95}});
  }
  return {{"map50", metrics.map50},
          {"map50_95", metrics.map50_95},
          {"precision", metrics.precision},
          {"recall", metrics.recall},
          {"per_class", per_class}};
}

}  // namespace cvdeploy
