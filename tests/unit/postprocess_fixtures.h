// SPDX-License-Identifier: Apache-2.0
// Hand-built model outputs and letterbox geometries for the postprocess tests.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "cvdeploy/model.h"
#include "vision/letterbox.h"
#include "vision/postprocess.h"

namespace cvdeploy::vision {

inline LetterboxInfo Identity() {
  LetterboxInfo lb;
  lb.src = lb.dst = lb.resized = {640, 640};
  return lb;
}

// A 1280x720 image letterboxed into 640x640: scale 0.5, 640x360 centred, pad_top 140.
inline LetterboxInfo Wide() {
  LetterboxInfo lb;
  lb.src = {1280, 720};
  lb.dst = {640, 640};
  lb.resized = {640, 360};
  lb.scale = 0.5f;
  lb.pad_top = 140;
  return lb;
}

// "c<id>", the class names of every test model. (Built with += because GCC 12 at -O3 warns
// falsely, -Wrestrict, on `"c" + std::to_string(id)`.)
inline std::string ClassName(int id) {
  std::string name = "c";
  name += std::to_string(id);
  return name;
}

inline ModelMeta Meta(Task task, OutputLayout layout, int nc) {
  ModelMeta m;
  m.task = task;
  m.layout = layout;
  for (int c = 0; c < nc; ++c) m.names.push_back(ClassName(c));
  return m;
}

// Output tensor [batch, rows, cols] stored row-major: for channels-first rows are channels.
struct Tensor {
  int64_t batch, rows, cols;
  std::vector<float> data;
  Tensor(int64_t b, int64_t r, int64_t c) : batch(b), rows(r), cols(c), data(b * r * c, 0.f) {}
  float& At(int64_t r, int64_t c, int64_t b = 0) { return data[(b * rows + r) * cols + c]; }
  TensorView View() const {
    return TensorView(DataType::kFloat32, {batch, rows, cols}, data.data());
  }
};

// Channels-first helper: writes channel values for one anchor.
inline void SetAnchor(Tensor& t, int i, std::initializer_list<float> channels, int first = 0) {
  int c = first;
  for (float v : channels) t.At(c++, i) = v;
}

// Row-layout helper (YOLOv5, end-to-end): writes the values of one row.
inline void SetRow(Tensor& t, int i, std::initializer_list<float> values, int64_t b = 0) {
  int c = 0;
  for (float v : values) t.At(i, c++, b) = v;
}

}  // namespace cvdeploy::vision
