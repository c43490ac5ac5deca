// SPDX-License-Identifier: Apache-2.0
// The README's library example: detect objects in one image with an installed cvdeploy.
// Usage: app MODEL.onnx IMAGE
#include <cstdio>
#include <exception>

#include <cvdeploy/image.h>
#include <cvdeploy/predictor.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL.onnx IMAGE\n", argv[0]);
    return 2;
  }
  try {
    // A Predictor may be shared by any number of threads (Predict is const and thread-safe).
    auto model = cvdeploy::Predictor::Load(argv[1]);  // or LoadFromMemory(bytes, name)
    cvdeploy::Result r = model->Predict(cvdeploy::ReadImage(argv[2]));
    for (const auto& d : r.detections) {  // also d.keypoints, d.mask, d.rotated by task
      std::printf("%s %.2f %.0f %.0f %.0f %.0f\n", d.class_name.c_str(), d.confidence, d.box.x1,
                  d.box.y1, d.box.x2, d.box.y2);
    }
  } catch (const std::exception& e) {  // cvdeploy::Error carries a code (error.h)
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
