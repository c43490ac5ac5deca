// SPDX-License-Identifier: Apache-2.0
// The parts of the doctor's model checks (cvdeploy/doctor.h) split across files: the output
// layout (names count, task), the axes and the precision traps (doctor_layout.cpp). Each
// appends its findings to `out` and never throws.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cvdeploy/doctor.h"

namespace cvdeploy::doctor {

// The declared Ultralytics entries that decide the output layout, as parsed (absent when
// missing or unparsable).
struct DeclaredLayout {
  std::optional<std::vector<std::string>> names;
  std::optional<Task> task;
  std::optional<std::vector<int>> kpt_shape;
  bool end2end = false;
};

Finding Make(const std::string& area, const std::string& check, Finding::Level level,
             std::string detail, std::string advice);
std::string ShapeText(const TensorInfo& tensor);

// Task vs output layout, and the class-name count vs the output channels ("metadata" area).
void CheckLayout(const ModelFacts& facts, const DeclaredLayout& declared,
                 std::vector<Finding>& out);
// Fixed or dynamic batch and spatial axes, and what that means ("axes" area).
void CheckAxes(const ModelFacts& facts, std::vector<Finding>& out);
// Dynamic quantization, int8 QDQ without VNNI, float16 on the CPU provider ("precision").
void CheckPrecision(const ModelFacts& facts, const ModelCheckContext& context,
                    std::vector<Finding>& out);

}  // namespace cvdeploy::doctor
