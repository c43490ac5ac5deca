// SPDX-License-Identifier: Apache-2.0
#include "vision/draw.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>

#include <opencv2/imgproc.hpp>

#include "vision/obb.h"

namespace cvdeploy::vision {
namespace {

// COCO-17 limbs as pairs of 0-based keypoint indices (nose, eyes, ears, shoulders, elbows,
// wrists, hips, knees, ankles).
// clang-format off
constexpr std::array<std::pair<int, int>, 19> kCocoSkeleton = {{
    {15, 13}, {13, 11}, {16, 14}, {14, 12}, {11, 12}, {5, 11}, {6, 12}, {5, 6}, {5, 7}, {6, 8},
    {7, 9}, {8, 10}, {1, 2}, {0, 1}, {0, 2}, {1, 3}, {2, 4}, {3, 5}, {4, 6}}};
// clang-format on
constexpr float kMinVisibility = 0.5f;
constexpr double kMaskAlpha = 0.5;

// Line width scaled with the image, as Ultralytics' annotator (at least 2 px).
int LineWidth(const cv::Mat& img) {
  return std::max(static_cast<int>(std::lround((img.cols + img.rows) / 2.0 * 0.003)), 2);
}

std::string Label(const std::string& name, float score) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), " %.2f", static_cast<double>(score));
  return name + buf;
}

// A float coordinate as a pixel, saturated far inside int range so OpenCV's clipping
// (not undefined conversion) handles anything off-image.
int Px(float v) {
  if (!std::isfinite(v)) return 0;
  return static_cast<int>(std::lround(std::clamp(v, -1e6f, 1e6f)));
}

// Filled label box with text, placed above `anchor` when there is room, else below it,
// and shifted to stay inside the image.
void DrawLabel(cv::Mat& img, const std::string& text, cv::Point anchor, const cv::Scalar& color,
               int lw) {
  const double font_scale = std::max(lw / 3.0, 0.4);
  const int thickness = std::max(lw - 1, 1);
  int baseline = 0;
  const cv::Size size =
      cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font_scale, thickness, &baseline);
  const int box_h = size.height + baseline + 2;
  const int box_w = size.width + thickness;  // glyph strokes overhang the nominal width
  int x = std::clamp(anchor.x, 0, std::max(img.cols - box_w, 0));
  int y = anchor.y - box_h >= 0 ? anchor.y - box_h : anchor.y;
  y = std::clamp(y, 0, std::max(img.rows - box_h, 0));
  cv::rectangle(img, cv::Rect(x, y, box_w, box_h), color, cv::FILLED, cv::LINE_AA);
  // Dark text on bright colours, white on dark ones.
  const double luma = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2];
  const cv::Scalar text_color = luma > 150 ? cv::Scalar(0, 0, 0) : cv::Scalar(255, 255, 255);
  cv::putText(img, text, cv::Point(x, y + size.height + 1), cv::FONT_HERSHEY_SIMPLEX, font_scale,
              text_color, thickness, cv::LINE_AA);
}

void DrawMask(cv::Mat& img, const Detection& d, const cv::Scalar& color) {
  if (d.mask.empty() || d.mask.type() != CV_8U || d.mask.size() != d.mask_roi.size()) return;
  const cv::Rect visible = d.mask_roi & cv::Rect(0, 0, img.cols, img.rows);
  if (visible.empty()) return;
  const cv::Mat mask = d.mask(visible - d.mask_roi.tl());
  cv::Mat region = img(visible);
  cv::Mat blended;
  cv::addWeighted(region, 1.0 - kMaskAlpha, cv::Mat(region.size(), region.type(), color),
                  kMaskAlpha, 0.0, blended);
  blended.copyTo(region, mask);
}

void DrawKeypoints(cv::Mat& img, const std::vector<Keypoint>& kpts, int lw) {
  const int radius = std::max(lw + 1, 3);
  if (kpts.size() == 17) {
    for (size_t k = 0; k < kCocoSkeleton.size(); ++k) {
      const auto [a, b] = kCocoSkeleton[k];
      if (kpts[a].visibility < kMinVisibility || kpts[b].visibility < kMinVisibility) continue;
      cv::line(img, cv::Point(Px(kpts[a].x), Px(kpts[a].y)),
               cv::Point(Px(kpts[b].x), Px(kpts[b].y)), ClassColor(static_cast<int>(k)),
               std::max(lw / 2, 1), cv::LINE_AA);
    }
  }
  for (size_t k = 0; k < kpts.size(); ++k) {
    if (kpts[k].visibility < kMinVisibility) continue;
    cv::circle(img, cv::Point(Px(kpts[k].x), Px(kpts[k].y)), radius,
               ClassColor(static_cast<int>(k) + 3), cv::FILLED, cv::LINE_AA);
  }
}

void DrawClassification(cv::Mat& img, const Result& result, int lw) {
  if (result.detections.empty()) return;
  const Detection& d = result.detections.front();
  std::vector<ClassScore> lines = d.top5;
  if (lines.empty()) lines.push_back({d.class_id, d.class_name, d.confidence});
  const double font_scale = std::max(lw / 3.0, 0.4);
  const int thickness = std::max(lw - 1, 1);
  int y = 0;
  for (const ClassScore& s : lines) {
    int baseline = 0;
    const std::string text = Label(s.class_name, s.score);
    const cv::Size size =
        cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font_scale, thickness, &baseline);
    y += size.height + baseline + 2;
    // Outlined text stays readable on any background.
    const cv::Point origin(lw * 2, y);
    cv::putText(img, text, origin, cv::FONT_HERSHEY_SIMPLEX, font_scale, cv::Scalar(0, 0, 0),
                thickness + 2, cv::LINE_AA);
    cv::putText(img, text, origin, cv::FONT_HERSHEY_SIMPLEX, font_scale, cv::Scalar(255, 255, 255),
                thickness, cv::LINE_AA);
  }
}

}  // namespace

cv::Scalar ClassColor(int class_id) {
  // Hues spaced by the golden angle stay distinct for neighbouring ids.
  const double hue = std::fmod(std::abs(class_id) * 137.508 + 20.0, 360.0) / 2.0;  // 0..180
  cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar(hue, 200, 240)), bgr;
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
  const cv::Vec3b c = bgr.at<cv::Vec3b>(0, 0);
  return cv::Scalar(c[0], c[1], c[2]);
}

void Annotate(cv::Mat& bgr, const Result& result) {
  if (bgr.empty() || bgr.depth() != CV_8U) return;
  if (bgr.channels() == 1) {
    cv::cvtColor(bgr, bgr, cv::COLOR_GRAY2BGR);
  } else if (bgr.channels() == 4) {
    cv::cvtColor(bgr, bgr, cv::COLOR_BGRA2BGR);
  } else if (bgr.channels() != 3) {
    return;
  }
  const int lw = LineWidth(bgr);
  if (result.task == Task::kClassify) {
    DrawClassification(bgr, result, lw);
    return;
  }
  // Masks first so that boxes and labels stay on top; worst detections first so that the
  // best ones are drawn last (on top).
  for (auto it = result.detections.rbegin(); it != result.detections.rend(); ++it) {
    DrawMask(bgr, *it, ClassColor(it->class_id));
  }
  for (auto it = result.detections.rbegin(); it != result.detections.rend(); ++it) {
    const Detection& d = *it;
    const cv::Scalar color = ClassColor(d.class_id);
    cv::Point label_anchor(Px(d.box.x1), Px(d.box.y1));
    if (d.rotated) {
      const auto corners = RotatedCorners(*d.rotated);
      std::vector<cv::Point> poly;
      for (const auto& p : corners) poly.emplace_back(Px(p.x), Px(p.y));
      cv::polylines(bgr, poly, true, color, lw, cv::LINE_AA);
      label_anchor =
          *std::min_element(poly.begin(), poly.end(), [](auto& a, auto& b) { return a.y < b.y; });
    } else {
      cv::rectangle(bgr, cv::Point(Px(d.box.x1), Px(d.box.y1)),
                    cv::Point(Px(d.box.x2), Px(d.box.y2)), color, lw, cv::LINE_AA);
    }
    DrawLabel(bgr, Label(d.class_name, d.confidence), label_anchor, color, lw);
    if (!d.keypoints.empty()) DrawKeypoints(bgr, d.keypoints, lw);
  }
}

}  // namespace cvdeploy::vision
