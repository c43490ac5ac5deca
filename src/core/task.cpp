// SPDX-License-Identifier: Apache-2.0
#include <string>

#include "cvdeploy/types.h"

namespace cvdeploy {

std::string_view TaskName(Task task) {
  switch (task) {
    case Task::kDetect:
      return "detect";
    case Task::kSegment:
      return "segment";
    case Task::kPose:
      return "pose";
    case Task::kClassify:
      return "classify";
    case Task::kObb:
      return "obb";
  }
  return "detect";
}

std::optional<Task> ParseTask(std::string_view name) {
  if (name == "detect") return Task::kDetect;
  if (name == "segment" || name == "seg") return Task::kSegment;
  if (name == "pose") return Task::kPose;
  if (name == "classify" || name == "cls") return Task::kClassify;
  if (name == "obb") return Task::kObb;
  return std::nullopt;
}

}  // namespace cvdeploy
