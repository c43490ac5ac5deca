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

// Ultralytics' Colors.pose_palette, used by cv2 as given (so as BGR).
// clang-format off
constexpr std::array<std::array<uint8_t, 3>, 20> kPosePalette = {{
    {255, 128, 0}, {255, 153, 51}, {255, 178, 102}, {230, 230, 0}, {255, 153, 255},
    {153, 204, 255}, {255, 102, 255}, {255, 51, 255}, {102, 178, 255}, {51, 153, 255},
    {255, 153, 153}, {255, 102, 102}, {255, 51, 51}, {153, 255, 153}, {102, 255, 102},
    {51, 255, 51}, {0, 255, 0}, {0, 0, 255}, {255, 0, 0}, {255, 255, 255}}};
// Annotator.limb_color and kpt_color: indices into the pose palette.
constexpr std::array<int, 19> kLimbPalette = {9, 9, 9, 9, 7, 7, 7, 0, 0, 0,
                                              0, 0, 16, 16, 16, 16, 16, 16, 16};
constexpr std::array<int, 17> kJointPalette = {16, 16, 16, 16, 16, 0, 0, 0, 0,
                                               0, 0, 9, 9, 9, 9, 9, 9};
// Palette entries (by index) on which Annotator.get_txt_color writes dark text.
constexpr std::array<int, 9> kDarkTextEntries = {1, 2, 3, 5, 7, 8, 12, 14, 19};
// clang-format on
constexpr double kMaskAlpha = 0.5;

cv::Scalar PoseColor(int index) {
  const auto& c = kPosePalette[static_cast<size_t>(index)];
  return cv::Scalar(c[0], c[1], c[2]);
}

// "name 0.87" (Results.plot: f"{name} {conf:.2f}"), or the name alone without confidence.
std::string Label(const std::string& name, float score, bool with_conf) {
  if (!with_conf) return name;
  char buf[32];
  std::snprintf(buf, sizeof(buf), " %.2f", static_cast<double>(score));
  return std::string(name).append(buf);
}

// A float coordinate as a pixel the way Python's int() makes one (truncation toward zero),
// saturated far inside int range so OpenCV's clipping (not undefined conversion) handles
// anything off-image.
int Px(float v) {
  if (!std::isfinite(v)) return 0;
  return static_cast<int>(std::clamp(v, -1e6f, 1e6f));
}

// Annotator.box_label's tag (cv2 branch): filled box of the text size + 3 px, above `p1`
// when it fits, else below it; moved left to end at the image's right edge.
void DrawLabel(cv::Mat& img, const std::string& text, cv::Point p1, const cv::Scalar& color,
               int lw) {
  const double font_scale = lw / 3.0;
  const int thickness = std::max(lw - 1, 1);
  int baseline = 0;
  cv::Size size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font_scale, thickness, &baseline);
  size.height += 3;
  const bool outside = p1.y >= size.height;
  if (p1.x > img.cols - size.width) p1.x = img.cols - size.width;
  const cv::Point p2(p1.x + size.width, outside ? p1.y - size.height : p1.y + size.height);
  cv::rectangle(img, p1, p2, color, cv::FILLED, cv::LINE_AA);
  cv::putText(img, text, cv::Point(p1.x, outside ? p1.y - 2 : p1.y + size.height - 1),
              cv::FONT_HERSHEY_SIMPLEX, font_scale, TextColorOn(color), thickness, cv::LINE_AA);
}

// Annotator.masks: image * prod(1 - alpha m_i) + max_i(alpha m_i colour_i), over the union
// of the masks' rectangles.
void DrawMasks(cv::Mat& img, const std::vector<Detection>& detections) {
  const cv::Rect image_rect(0, 0, img.cols, img.rows);
  cv::Rect area;
  for (const Detection& d : detections) {
    if (d.mask.empty() || d.mask.type() != CV_8U || d.mask.size() != d.mask_roi.size()) continue;
    area |= d.mask_roi & image_rect;
  }
  if (area.empty()) return;
  cv::Mat keep(area.size(), CV_32F, cv::Scalar(1.0));
  cv::Mat tint(area.size(), CV_32FC3, cv::Scalar(0, 0, 0));
  for (const Detection& d : detections) {
    if (d.mask.empty() || d.mask.type() != CV_8U || d.mask.size() != d.mask_roi.size()) continue;
    const cv::Rect visible = d.mask_roi & image_rect;
    if (visible.empty()) continue;
    const cv::Mat mask = d.mask(visible - d.mask_roi.tl());
    const cv::Rect local = visible - area.tl();
    cv::Mat k = keep(local);
    cv::Mat scaled;
    cv::multiply(k, cv::Scalar(1.0 - kMaskAlpha), scaled);
    scaled.copyTo(k, mask);
    cv::Mat t = tint(local);
    cv::Mat colored;
    cv::max(t, ClassColor(d.class_id) * kMaskAlpha, colored);
    colored.copyTo(t, mask);
  }
  cv::Mat region = img(area), as_float, keep3;
  region.convertTo(as_float, CV_32FC3);
  cv::merge(std::vector<cv::Mat>{keep, keep, keep}, keep3);
  cv::multiply(as_float, keep3, as_float);
  as_float += tint;
  // .byte() truncates; values stay within 0..255.
  for (int y = 0; y < area.height; ++y) {
    const float* src = as_float.ptr<float>(y);
    uint8_t* dst = region.ptr<uint8_t>(y);
    for (int x = 0; x < area.width * 3; ++x) {
      dst[x] = static_cast<uint8_t>(std::clamp(src[x], 0.f, 255.f));
    }
  }
}

// Annotator.kpts with Results.plot's radius 5: joints first, then limbs (COCO-17 only).
void DrawKeypoints(cv::Mat& img, const std::vector<Keypoint>& kpts, int lw) {
  const bool is_pose = kpts.size() == 17;
  for (size_t k = 0; k < kpts.size(); ++k) {
    if (kpts[k].visibility < kMinKeypointVisibility) continue;
    const cv::Scalar color =
        is_pose ? JointColor(static_cast<int>(k)) : ClassColor(static_cast<int>(k));
    cv::circle(img, cv::Point(Px(kpts[k].x), Px(kpts[k].y)), kKeypointRadius, color, cv::FILLED,
               cv::LINE_AA);
  }
  if (!is_pose) return;
  for (size_t i = 0; i < kCocoSkeleton.size(); ++i) {
    const Keypoint& a = kpts[static_cast<size_t>(kCocoSkeleton[i].first)];
    const Keypoint& b = kpts[static_cast<size_t>(kCocoSkeleton[i].second)];
    if (a.visibility < kMinKeypointVisibility || b.visibility < kMinKeypointVisibility) continue;
    const cv::Point p1(Px(a.x), Px(a.y)), p2(Px(b.x), Px(b.y));
    if (std::min({p1.x, p1.y, p2.x, p2.y}) < 0) continue;
    cv::line(img, p1, p2, LimbColor(static_cast<int>(i)), LimbThickness(lw), cv::LINE_AA);
  }
}

// Results.plot for classify: the top-5 as "name 0.87," lines from (x, x), x = 3% of the
// height, white (outlined in black so it stays readable on any background).
void DrawClassification(cv::Mat& img, const Result& result, int lw) {
  if (result.detections.empty()) return;
  const Detection& d = result.detections.front();
  std::vector<ClassScore> lines = d.top5;
  if (lines.empty()) lines.push_back({d.class_id, d.class_name, d.confidence});
  const double font_scale = lw / 3.0;
  const int thickness = std::max(lw - 1, 1);
  const int x = static_cast<int>(std::nearbyint(img.rows * 0.03));
  int y = x;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string text = Label(lines[i].class_name, lines[i].score, true);
    if (i + 1 < lines.size()) text += ",";
    int baseline = 0;
    const cv::Size size =
        cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font_scale, thickness, &baseline);
    y += size.height + baseline;
    cv::putText(img, text, cv::Point(x, y), cv::FONT_HERSHEY_SIMPLEX, font_scale,
                cv::Scalar(0, 0, 0), thickness + 2, cv::LINE_AA);
    cv::putText(img, text, cv::Point(x, y), cv::FONT_HERSHEY_SIMPLEX, font_scale,
                cv::Scalar(255, 255, 255), thickness, cv::LINE_AA);
  }
}

}  // namespace

int DefaultLineWidth(int width, int height) {
  // Python's round() rounds half to even, as nearbyint in the default rounding mode.
  const double v = (static_cast<double>(height) + width + 3) / 2 * 0.003;
  return std::max(static_cast<int>(std::nearbyint(v)), 2);
}

int LimbThickness(int lw) { return std::max((lw + 1) / 2, 2); }

cv::Scalar ClassColor(int class_id) {
  const int n = static_cast<int>(kPaletteHex.size());
  const unsigned rgb = kPaletteHex[static_cast<size_t>(((class_id % n) + n) % n)];
  return cv::Scalar(rgb & 0xFF, (rgb >> 8) & 0xFF, (rgb >> 16) & 0xFF);
}

cv::Scalar LimbColor(int limb) { return PoseColor(kLimbPalette[static_cast<size_t>(limb)]); }

cv::Scalar JointColor(int joint) { return PoseColor(kJointPalette[static_cast<size_t>(joint)]); }

cv::Scalar TextColorOn(const cv::Scalar& bgr) {
  for (int index : kDarkTextEntries) {
    if (ClassColor(index) == bgr) return cv::Scalar(104, 31, 17);
  }
  return cv::Scalar(255, 255, 255);
}

void DrawResult(cv::Mat& bgr, const Result& result, const AnnotateOptions& options) {
  if (bgr.empty() || bgr.depth() != CV_8U) return;
  if (bgr.channels() == 1) {
    cv::cvtColor(bgr, bgr, cv::COLOR_GRAY2BGR);
  } else if (bgr.channels() == 4) {
    cv::cvtColor(bgr, bgr, cv::COLOR_BGRA2BGR);
  } else if (bgr.channels() != 3) {
    return;
  }
  const int lw = options.line_width > 0 ? options.line_width : DefaultLineWidth(bgr.cols, bgr.rows);
  if (result.task == Task::kClassify) {
    // As Results.plot: the top-5 text is not a box label, so the label options leave it.
    DrawClassification(bgr, result, lw);
    return;
  }
  // Masks first so that boxes and labels stay on top; worst detections first so that the
  // best ones are drawn last (on top), as Results.plot's reversed(boxes).
  DrawMasks(bgr, result.detections);
  for (auto it = result.detections.rbegin(); it != result.detections.rend(); ++it) {
    const Detection& d = *it;
    const cv::Scalar color = ClassColor(d.class_id);
    cv::Point label_anchor(Px(d.box.x1), Px(d.box.y1));
    if (d.rotated) {
      const auto corners = RotatedCorners(*d.rotated);
      std::vector<cv::Point> poly;
      for (const auto& p : corners) poly.emplace_back(Px(p.x), Px(p.y));
      cv::polylines(bgr, poly, true, color, lw);
      label_anchor = poly.front();
    } else {
      cv::rectangle(bgr, cv::Point(Px(d.box.x1), Px(d.box.y1)),
                    cv::Point(Px(d.box.x2), Px(d.box.y2)), color, lw, cv::LINE_AA);
    }
    if (options.labels) {
      DrawLabel(bgr, Label(d.class_name, d.confidence, options.conf), label_anchor, color, lw);
    }
  }
  // Keypoints after every box, as Results.plot.
  for (auto it = result.detections.rbegin(); it != result.detections.rend(); ++it) {
    if (!it->keypoints.empty()) DrawKeypoints(bgr, it->keypoints, lw);
  }
}

}  // namespace cvdeploy::vision
