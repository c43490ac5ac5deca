// SPDX-License-Identifier: Apache-2.0
// Annotation: visible changes where expected, and no crash on awkward input.
#include "vision/draw.h"

#include <algorithm>

#include <cmath>
#include <limits>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

namespace cvdeploy::vision {
namespace {

Detection Box(float x1, float y1, float x2, float y2, int cls = 0, float conf = 0.87f) {
  Detection d;
  d.class_id = cls;
  d.class_name = std::string("class").append(std::to_string(cls));
  d.confidence = conf;
  d.box = {x1, y1, x2, y2};
  return d;
}

Result Make(Task task, std::vector<Detection> dets, int w = 320, int h = 240) {
  Result r;
  r.width = w;
  r.height = h;
  r.task = task;
  r.detections = std::move(dets);
  return r;
}

int ChangedPixels(const cv::Mat& a, const cv::Mat& b, cv::Rect roi) {
  cv::Mat diff;
  cv::absdiff(a(roi), b(roi), diff);
  cv::Mat gray;
  cv::cvtColor(diff, gray, cv::COLOR_BGR2GRAY);
  return cv::countNonZero(gray);
}

TEST(DrawTest, BoxChangesPixelsOnItsOutline) {
  const cv::Mat original(240, 320, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::Mat img = original.clone();
  Annotate(img, Make(Task::kDetect, {Box(100, 80, 200, 180)}));
  EXPECT_GT(ChangedPixels(original, img, cv::Rect(98, 120, 5, 20)), 0);    // left edge
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(130, 120, 40, 40)), 0);  // interior
  EXPECT_GT(ChangedPixels(original, img, cv::Rect(100, 60, 60, 20)), 0);   // label above
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(250, 200, 60, 30)), 0);  // elsewhere
  EXPECT_EQ(img.type(), CV_8UC3);
}

TEST(DrawTest, EmptyResultAndEmptyImage) {
  const cv::Mat original(50, 60, CV_8UC3, cv::Scalar(10, 20, 30));
  cv::Mat img = original.clone();
  Annotate(img, Make(Task::kDetect, {}));
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(0, 0, 60, 50)), 0);
  Annotate(img, Make(Task::kClassify, {}));
  cv::Mat empty;
  Annotate(empty, Make(Task::kDetect, {Box(0, 0, 10, 10)}));
  EXPECT_TRUE(empty.empty());
}

TEST(DrawTest, BordersAndDegenerateBoxesDoNotCrash) {
  cv::Mat img(100, 120, CV_8UC3, cv::Scalar(0, 0, 0));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  Annotate(img, Make(Task::kDetect,
                     {Box(0, 0, 120, 100), Box(-50, -50, 10, 10, 1), Box(110, 90, 500, 400, 2),
                      Box(60, 0, 60, 0, 3), Box(nan, 5, inf, -inf, 4), Box(0, 99, 120, 100, 5)},
                     120, 100));
  // A label for a box at the top edge is drawn inside the image.
  EXPECT_GT(cv::countNonZero(img.reshape(1)), 0);
  cv::Mat tiny(2, 2, CV_8UC3, cv::Scalar(0, 0, 0));
  Annotate(tiny, Make(Task::kDetect, {Box(0, 0, 2, 2)}, 2, 2));
}

TEST(DrawTest, SegmentMaskIsTranslucent) {
  const cv::Mat original(100, 100, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::Mat img = original.clone();
  Detection d = Box(20, 20, 80, 80);
  d.mask_roi = cv::Rect(20, 20, 60, 60);
  d.mask = cv::Mat(60, 60, CV_8U, cv::Scalar(0));
  d.mask(cv::Rect(20, 20, 20, 20)).setTo(255);  // image [40, 60)^2
  d.polygons = {{{40, 40}, {59, 40}, {59, 59}, {40, 59}}};
  Detection outside = Box(90, 90, 100, 100, 1);
  outside.mask_roi = cv::Rect(90, 90, 20, 20);  // half outside the image
  outside.mask = cv::Mat(20, 20, CV_8U, cv::Scalar(255));
  Detection bad = Box(0, 0, 5, 5, 2);
  bad.mask = cv::Mat(3, 3, CV_8U, cv::Scalar(255));  // size mismatch: ignored
  Annotate(img, Make(Task::kSegment, {d, outside, bad}, 100, 100));
  const cv::Vec3b inside = img.at<cv::Vec3b>(50, 50);
  EXPECT_GT(inside[0] + inside[1] + inside[2], 0);
  EXPECT_LT(std::max({inside[0], inside[1], inside[2]}), 255);  // blended, not opaque
  EXPECT_EQ(img.at<cv::Vec3b>(45, 65), cv::Vec3b(0, 0, 0));     // box interior, no mask
  EXPECT_GT(cv::sum(img(cv::Rect(92, 92, 8, 8)))[0] + cv::sum(img(cv::Rect(92, 92, 8, 8)))[1] +
                cv::sum(img(cv::Rect(92, 92, 8, 8)))[2],
            0);
}

TEST(DrawTest, PoseSkeletonAndPartialKeypoints) {
  const cv::Mat original(200, 200, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::Mat img = original.clone();
  Detection person = Box(20, 20, 180, 180);
  for (int j = 0; j < 17; ++j) {
    person.keypoints.push_back({40.f + 8 * j, 60.f + 5 * j, 0.9f});
  }
  person.keypoints[3] = {150, 40, 0.2f};    // hidden, away from the other points
  person.keypoints[16] = {-10, 500, 0.9f};  // off-image: clipped by OpenCV
  Detection hand = Box(150, 150, 200, 200, 1);
  hand.keypoints = {{160, 160, 1.f}, {170, 170, 0.3f}, {199, 199, 1.f}};
  Annotate(img, Make(Task::kPose, {person, hand}, 200, 200));
  EXPECT_GT(ChangedPixels(original, img, cv::Rect(38, 58, 5, 5)), 0);    // keypoint 0
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(146, 36, 9, 9)), 0);   // keypoint 3 hidden
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(168, 168, 5, 5)), 0);  // hand point 1 hidden
}

TEST(DrawTest, RotatedBoxDrawnAsPolygon) {
  const cv::Mat original(200, 200, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::Mat img = original.clone();
  Detection d = Box(60, 60, 140, 140);
  d.rotated = RotatedBox{100, 100, 80, 20, 0.785f};
  Annotate(img, Make(Task::kObb, {d}, 200, 200));
  // Corner c + u + v = (121.2, 135.4) is drawn; the centre and the bounds' corner are not.
  EXPECT_GT(ChangedPixels(original, img, cv::Rect(119, 133, 5, 5)), 0);
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(96, 96, 8, 8)), 0);
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(60, 130, 10, 10)), 0);
  Detection edge = Box(0, 0, 200, 200, 1);
  edge.rotated = RotatedBox{0, 0, 400, 50, 2.5f};
  Annotate(img, Make(Task::kObb, {edge}, 200, 200));
}

TEST(DrawTest, ClassificationTop5Text) {
  const cv::Mat original(120, 160, CV_8UC3, cv::Scalar(128, 128, 128));
  cv::Mat img = original.clone();
  Detection d = Box(0, 0, 160, 120, 3, 0.6f);
  for (int k = 0; k < 5; ++k)
    d.top5.push_back({k, std::string("cat").append(std::to_string(k)), 0.1f * (5 - k)});
  Annotate(img, Make(Task::kClassify, {d}, 160, 120));
  EXPECT_GT(ChangedPixels(original, img, cv::Rect(0, 0, 80, 40)), 0);
  EXPECT_EQ(ChangedPixels(original, img, cv::Rect(150, 110, 10, 10)), 0);  // no whole-image box
}

TEST(DrawTest, GrayImagesBecomeBgr) {
  cv::Mat gray(60, 60, CV_8UC1, cv::Scalar(0));
  Annotate(gray, Make(Task::kDetect, {Box(10, 10, 50, 50)}, 60, 60));
  EXPECT_EQ(gray.type(), CV_8UC3);
  cv::Mat floats(10, 10, CV_32FC3, cv::Scalar(0, 0, 0));
  Annotate(floats, Make(Task::kDetect, {Box(1, 1, 5, 5)}, 10, 10));  // unsupported: untouched
  EXPECT_EQ(cv::sum(floats)[0], 0);
}

TEST(DrawTest, ColorsAreStableAndDistinct) {
  EXPECT_EQ(ClassColor(3), ClassColor(3));
  EXPECT_NE(ClassColor(0), ClassColor(1));
  EXPECT_NE(ClassColor(1), ClassColor(2));
}

// --- Ultralytics' look: palette, line width, tags, pose colours, masks, options ---

TEST(DrawTest, PaletteIsUltralyticsColorsInBgr) {
  EXPECT_EQ(ClassColor(0), cv::Scalar(255, 42, 4));     // #042AFF
  EXPECT_EQ(ClassColor(1), cv::Scalar(235, 219, 11));   // #0BDBEB
  EXPECT_EQ(ClassColor(5), cv::Scalar(221, 111, 255));  // #FF6FDD
  EXPECT_EQ(ClassColor(19), cv::Scalar(11, 255, 162));  // #A2FF0B
  // Period 20: class 20 is class 0 again, negative ids stay in range.
  EXPECT_EQ(ClassColor(20), ClassColor(0));
  EXPECT_EQ(ClassColor(45), ClassColor(5));
  EXPECT_EQ(ClassColor(-1), ClassColor(19));
  for (int a = 0; a < 20; ++a) {
    EXPECT_EQ(PaletteColor(a), ClassColor(a));
    for (int b = a + 1; b < 20; ++b) EXPECT_NE(ClassColor(a), ClassColor(b)) << a << " " << b;
  }
}

TEST(DrawTest, DefaultLineWidthIsUltralyticsFormula) {
  // max(round(sum(im.shape) / 2 * 0.003), 2) with the 3 channels in the sum.
  EXPECT_EQ(DefaultLineWidth(810, 1080), 3);   // 2.8395
  EXPECT_EQ(DefaultLineWidth(640, 640), 2);    // 1.9245
  EXPECT_EQ(DefaultLineWidth(1280, 720), 3);   // 3.0045
  EXPECT_EQ(DefaultLineWidth(1500, 1497), 4);  // exactly 4.5: Python rounds half to even
  EXPECT_EQ(DefaultLineWidth(4000, 3000), 11);
  EXPECT_EQ(DefaultLineWidth(10, 10), 2);
  EXPECT_EQ(DefaultLineWidth(1000, 665), 3);  // 2.502 with the channels, 2.4975 without
  EXPECT_EQ(LimbThickness(2), 2);
  EXPECT_EQ(LimbThickness(3), 2);
  EXPECT_EQ(LimbThickness(11), 6);  // ceil(lw / 2)
}

// At least half covered by a drawing on black (anti-aliased fringes excluded).
bool Covered(const cv::Vec3b& v) { return std::max({v[0], v[1], v[2]}) >= 128; }

// Columns of row `y` in [x0, x1) covered by a drawing.
int ChangedInRow(const cv::Mat& img, int y, int x0, int x1) {
  int n = 0;
  for (int x = x0; x < x1; ++x) n += Covered(img.at<cv::Vec3b>(y, x));
  return n;
}

TEST(DrawTest, LineWidthOptionSetsTheBoxEdge) {
  const cv::Mat black(640, 640, CV_8UC3, cv::Scalar(0, 0, 0));
  const Result r = Make(Task::kDetect, {Box(200, 200, 400, 400)}, 640, 640);
  cv::Mat thin = black.clone(), thick = black.clone();
  DrawResult(thin, r, {0, false, true});
  DrawResult(thick, r, {9, false, true});
  const int default_edge = ChangedInRow(thin, 300, 180, 220);
  const int wide_edge = ChangedInRow(thick, 300, 180, 220);
  EXPECT_GE(default_edge, 2);  // lw 2 at 640, plus anti-aliasing
  EXPECT_LE(default_edge, 3);
  EXPECT_GE(wide_edge, 9);
  EXPECT_LE(wide_edge, 11);  // OpenCV's anti-aliased thick lines spread ~1 px
  EXPECT_EQ(thick.at<cv::Vec3b>(300, 200), cv::Vec3b(255, 42, 4));  // the class-0 colour
}

// Bounds of the pixels that differ from black inside `roi`.
cv::Rect ChangedBounds(const cv::Mat& img, cv::Rect roi) {
  cv::Mat gray;
  cv::cvtColor(img(roi), gray, cv::COLOR_BGR2GRAY);
  std::vector<cv::Point> pts;
  cv::findNonZero(gray, pts);
  if (pts.empty()) return {};
  return cv::boundingRect(pts) + roi.tl();
}

TEST(DrawTest, HideLabelsAndHideConfChangeTheTag) {
  const cv::Mat black(640, 640, CV_8UC3, cv::Scalar(0, 0, 0));
  const Result r = Make(Task::kDetect, {Box(100, 200, 400, 400)}, 640, 640);
  cv::Mat full = black.clone(), no_conf = black.clone(), no_label = black.clone();
  DrawResult(full, r, {});
  DrawResult(no_conf, r, {0, true, false});
  DrawResult(no_label, r, {0, false, true});
  const cv::Rect above(0, 150, 640, 48);  // the tag sits above the box's top edge
  const cv::Rect tag = ChangedBounds(full, above);
  const cv::Rect name_only = ChangedBounds(no_conf, above);
  ASSERT_FALSE(tag.empty());
  ASSERT_FALSE(name_only.empty());
  EXPECT_NEAR(tag.x, 100, 1);                  // starts at the box's left edge (anti-aliased)
  EXPECT_GT(tag.width, name_only.width + 20);  // " 0.87" is gone
  EXPECT_EQ(tag.height, name_only.height);
  EXPECT_TRUE(ChangedBounds(no_label, above).empty());
  // The box itself is the same in the three pictures.
  EXPECT_EQ(ChangedPixels(full, no_label, cv::Rect(0, 203, 640, 437)), 0);
}

TEST(DrawTest, TagTextIsDarkOnLightPaletteColoursAndWhiteOnOthers) {
  auto text_pixels = [](int cls, const cv::Vec3b& colour) {
    cv::Mat img(200, 300, CV_8UC3, cv::Scalar(0, 0, 0));
    DrawResult(img, Make(Task::kDetect, {Box(20, 100, 280, 190, cls)}, 300, 200), {4, true, true});
    int n = 0;
    for (int y = 40; y < 100; ++y)
      for (int x = 0; x < 300; ++x) n += img.at<cv::Vec3b>(y, x) == colour;
    return n;
  };
  const cv::Vec3b white(255, 255, 255), dark(104, 31, 17);
  EXPECT_GT(text_pixels(0, white), 20);  // #042AFF: white text
  EXPECT_EQ(text_pixels(0, dark), 0);
  EXPECT_GT(text_pixels(1, dark), 20);  // #0BDBEB is light: dark text
  EXPECT_EQ(text_pixels(1, white), 0);
}

TEST(DrawTest, PoseSkeletonIsColouredByBodyPart) {
  cv::Mat img(640, 640, CV_8UC3, cv::Scalar(0, 0, 0));
  Detection person = Box(2, 2, 638, 638);
  // A stick figure: face at the top, shoulders 5-6, elbows 7-8, wrists 9-10, hips 11-12,
  // knees 13-14, ankles 15-16; keypoint 4 (right ear) hidden.
  const float xy[17][2] = {{320, 60},  {300, 50},  {340, 50},  {280, 60},  {360, 60},  {220, 200},
                           {420, 200}, {120, 200}, {520, 200}, {60, 260},  {580, 260}, {260, 400},
                           {380, 400}, {260, 500}, {380, 500}, {260, 600}, {380, 600}};
  for (const auto& p : xy) person.keypoints.push_back({p[0], p[1], 0.9f});
  person.keypoints[4].visibility = 0.3f;
  DrawResult(img, Make(Task::kPose, {person}, 640, 640), {0, false, true});
  auto at = [&](int x, int y) {
    const cv::Vec3b v = img.at<cv::Vec3b>(y, x);
    return cv::Scalar(v[0], v[1], v[2]);
  };
  EXPECT_EQ(at(320, 200), LimbColor(7));  // shoulders 5-6: arms colour
  EXPECT_EQ(LimbColor(7), cv::Scalar(255, 128, 0));
  EXPECT_EQ(at(170, 200), LimbColor(8));  // shoulder-elbow: arms
  EXPECT_EQ(at(260, 450), LimbColor(3));  // knee 13 - hip 11: legs
  EXPECT_EQ(LimbColor(3), cv::Scalar(51, 153, 255));
  EXPECT_EQ(at(320, 400), LimbColor(4));  // hips 11-12: body
  EXPECT_EQ(LimbColor(4), cv::Scalar(255, 51, 255));
  EXPECT_EQ(at(320, 60), JointColor(0));  // nose: face
  EXPECT_EQ(JointColor(0), cv::Scalar(0, 255, 0));
  EXPECT_EQ(at(260, 600), JointColor(15));  // ankle: legs
  EXPECT_EQ(JointColor(15), cv::Scalar(51, 153, 255));
  // Limbs about 2 px thick at 640 (LimbThickness(2) plus anti-aliasing), joints of radius 5.
  int limb_rows = 0;
  for (int y = 190; y < 210; ++y) limb_rows += Covered(img.at<cv::Vec3b>(y, 320));
  EXPECT_GE(limb_rows, 2);
  EXPECT_LE(limb_rows, 3);
  int joint_cols = 0;
  for (int x = 240; x < 280; ++x) joint_cols += at(x, 600) == JointColor(15);
  EXPECT_GE(joint_cols, 9);
  EXPECT_LE(joint_cols, 11);
  // The hidden ear and its limb (3-5... and 2-4) are not drawn.
  EXPECT_EQ(at(360, 60), cv::Scalar(0, 0, 0));
  EXPECT_EQ(at(350, 55), cv::Scalar(0, 0, 0));  // middle of limb 2-4
}

TEST(DrawTest, ClassifyTextIgnoresTheBoxLabelOptions) {
  const cv::Mat grey(120, 160, CV_8UC3, cv::Scalar(128, 128, 128));
  Detection d = Box(0, 0, 160, 120, 3, 0.6f);
  d.top5 = {{3, "cat", 0.6f}, {1, "dog", 0.3f}};
  const Result r = Make(Task::kClassify, {d}, 160, 120);
  cv::Mat plain = grey.clone(), hidden = grey.clone();
  DrawResult(plain, r, {});
  DrawResult(hidden, r, {0, false, false});
  EXPECT_GT(ChangedPixels(grey, plain, cv::Rect(0, 0, 160, 120)), 0);
  EXPECT_EQ(ChangedPixels(plain, hidden, cv::Rect(0, 0, 160, 120)), 0);
}

TEST(DrawTest, OverlappingMasksBlendAsUltralyticsAnnotator) {
  cv::Mat img(60, 90, CV_8UC3, cv::Scalar(100, 100, 100));
  Detection a = Box(0, 0, 60, 60, 0);
  a.mask_roi = cv::Rect(0, 0, 60, 60);
  a.mask = cv::Mat(60, 60, CV_8U, cv::Scalar(255));
  Detection b = Box(30, 0, 90, 60, 1);
  b.mask_roi = cv::Rect(30, 0, 60, 60);
  b.mask = cv::Mat(60, 60, CV_8U, cv::Scalar(255));
  DrawResult(img, Make(Task::kSegment, {a, b}, 90, 60), {1, false, true});
  const cv::Scalar ca = ClassColor(0), cb = ClassColor(1);
  for (int c = 0; c < 3; ++c) {
    // Only a: image * 0.5 + colour * 0.5; both: image * 0.25 + max(colours) * 0.5.
    EXPECT_NEAR(img.at<cv::Vec3b>(30, 15)[c], 50 + ca[c] * 0.5, 1) << c;
    EXPECT_NEAR(img.at<cv::Vec3b>(30, 75)[c], 50 + cb[c] * 0.5, 1) << c;
    EXPECT_NEAR(img.at<cv::Vec3b>(30, 45)[c], 25 + std::max(ca[c], cb[c]) * 0.5, 1) << c;
  }
}

}  // namespace
}  // namespace cvdeploy::vision
