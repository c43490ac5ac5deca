// SPDX-License-Identifier: Apache-2.0
// Ultralytics-format label files and crops (Results.save_txt, Results.save_crop).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include <opencv2/imgcodecs.hpp>

#include "cvdeploy/error.h"
#include "cvdeploy/export.h"
#include "cvdeploy/file.h"
#include "vision/obb.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;

// Python's "%g" of a number (the same conversion as C's).
void AppendG(std::string& line, double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  if (!line.empty()) line.push_back(' ');
  line.append(buf);
}

// A class name usable as one directory name.
std::string SafeDirectoryName(const std::string& name, int class_id) {
  if (name.empty() || name == "." || name == "..") return std::to_string(class_id);
  std::string out = name;
  for (char& c : out) {
    if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
  }
  return out;
}

void CreateDirectories(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw RuntimeError(dir.string() + ": cannot create directory: " + ec.message());
}

}  // namespace

std::string OutputStem(const std::string& source, long frame_number) {
  std::string stem = fs::path(source).stem().string();
  if (frame_number > 0) stem.append("_").append(std::to_string(frame_number));
  return stem;
}

std::string LabelText(const Result& result, bool save_conf, int keypoint_dims) {
  std::string text;
  if (result.width <= 0 || result.height <= 0) return text;
  // Ultralytics normalizes float32 tensors: the same arithmetic in float.
  const float w = static_cast<float>(result.width), h = static_cast<float>(result.height);
  if (result.task == Task::kClassify) {
    if (result.detections.empty()) return text;
    for (const ClassScore& s : result.detections.front().top5) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.2f ", static_cast<double>(s.score));
      text.append(buf).append(s.class_name).append("\n");
    }
    return text;
  }
  for (const Detection& d : result.detections) {
    std::string line;
    AppendG(line, d.class_id);
    if (result.task == Task::kObb && d.rotated) {
      for (const cv::Point2f& p : vision::RotatedCorners(*d.rotated)) {
        AppendG(line, p.x / w);
        AppendG(line, p.y / h);
      }
    } else if (result.task == Task::kSegment) {
      for (const cv::Point& p : d.polygon) {
        AppendG(line, static_cast<float>(p.x) / w);
        AppendG(line, static_cast<float>(p.y) / h);
      }
    } else {
      AppendG(line, (d.box.x1 + d.box.x2) / 2 / w);
      AppendG(line, (d.box.y1 + d.box.y2) / 2 / h);
      AppendG(line, (d.box.x2 - d.box.x1) / w);
      AppendG(line, (d.box.y2 - d.box.y1) / h);
    }
    if (result.task == Task::kPose) {
      for (const Keypoint& k : d.keypoints) {
        const bool hidden = keypoint_dims == 3 && !k.Visible();
        AppendG(line, hidden ? 0.f : k.x / w);
        AppendG(line, hidden ? 0.f : k.y / h);
        if (keypoint_dims == 3) AppendG(line, k.visibility);
      }
    }
    if (save_conf) AppendG(line, d.confidence);
    text.append(line).append("\n");
  }
  return text;
}

bool SaveLabels(const std::string& path, const Result& result, bool save_conf, int keypoint_dims) {
  const std::string text = LabelText(result, save_conf, keypoint_dims);
  if (text.empty()) return false;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) CreateDirectories(parent);
  WriteFileAtomically(path, std::vector<uint8_t>(text.begin(), text.end()));
  return true;
}

cv::Rect CropRect(const BoxXYXY& box, cv::Size image, double gain, int pad) {
  if (!std::isfinite(box.x1) || !std::isfinite(box.y1) || !std::isfinite(box.x2) ||
      !std::isfinite(box.y2)) {
    return {};
  }
  // xyxy2xywh, wh * gain + pad, xywh2xyxy, .long(), clip_boxes: float32 as in torch.
  const float cx = (box.x1 + box.x2) / 2, cy = (box.y1 + box.y2) / 2;
  const float bw = (box.x2 - box.x1) * static_cast<float>(gain) + static_cast<float>(pad);
  const float bh = (box.y2 - box.y1) * static_cast<float>(gain) + static_cast<float>(pad);
  auto truncate = [](float v, int hi) {
    return static_cast<int>(std::clamp(std::trunc(v), 0.f, static_cast<float>(hi)));
  };
  const int x1 = truncate(cx - bw / 2, image.width), x2 = truncate(cx + bw / 2, image.width);
  const int y1 = truncate(cy - bh / 2, image.height), y2 = truncate(cy + bh / 2, image.height);
  if (x2 <= x1 || y2 <= y1) return {};
  return cv::Rect(x1, y1, x2 - x1, y2 - y1);
}

std::vector<std::string> SaveCrops(const cv::Mat& bgr, const Result& result,
                                   const std::string& crops_dir, const std::string& stem) {
  std::vector<std::string> written;
  if (bgr.empty() || result.task == Task::kClassify || result.task == Task::kObb) return written;
  for (const Detection& d : result.detections) {
    const cv::Rect rect = CropRect(d.box, bgr.size());
    if (rect.empty()) continue;
    const fs::path dir = fs::path(crops_dir) / SafeDirectoryName(d.class_name, d.class_id);
    CreateDirectories(dir);
    // increment_path(file): file, then stem2, stem3, ... (no separator), the first not taken.
    fs::path file = dir / (stem + ".jpg");
    for (int n = 2; fs::exists(file) && n < 10000; ++n) {
      file = dir / (stem + std::to_string(n) + ".jpg");
    }
    std::vector<uint8_t> jpeg;
    try {
      if (!cv::imencode(".jpg", bgr(rect), jpeg, {cv::IMWRITE_JPEG_QUALITY, 95})) {
        throw RuntimeError(file.string() + ": cannot encode crop");
      }
    } catch (const cv::Exception& e) {
      throw RuntimeError(file.string() + ": cannot encode crop: " + e.err);
    }
    WriteFileAtomically(file.string(), jpeg);
    written.push_back(file.string());
  }
  return written;
}

}  // namespace cvdeploy
