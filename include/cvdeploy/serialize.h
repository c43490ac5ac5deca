// SPDX-License-Identifier: Apache-2.0
// JSON forms of results and model descriptions, shared by the CLI and the server.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "cvdeploy/eval.h"
#include "cvdeploy/model.h"
#include "cvdeploy/types.h"

namespace cvdeploy {

// {"width","height","task","detections":[...],"speed_ms":{...}}; boxes rounded to 0.1 px,
// confidences to 1e-4. Segment detections carry "polygon" (Detection::polygon: every part of
// the mask, joined as Ultralytics does) and, when `all_polygons`, "polygons" (one per outer
// contour); pose "keypoints" [[x, y, conf], ...] as Ultralytics' Results.keypoints (a point
// whose conf is below kKeypointVisibleThreshold at x = y = 0) and "keypoints_raw" (the
// model's coordinates for every point); obb "angle" and "rotated_box"; classify "top5".
nlohmann::ordered_json ResultToJson(const Result& result, bool all_polygons = false);

nlohmann::ordered_json ModelInfoToJson(const ModelInfo& info);

nlohmann::ordered_json MetricsToJson(const Metrics& metrics);

}  // namespace cvdeploy
