// SPDX-License-Identifier: Apache-2.0
// Polygons of multi-part masks: MergeSegments against paths worked out by hand from
// Ultralytics' merge_multi_segment rule, and OutlineMask on masks with several parts.
#include <algorithm>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "vision/mask.h"

namespace cvdeploy::vision {
namespace {

using Path = std::vector<cv::Point>;

Path Square(int x, int y, int side) {
  return {{x, y}, {x, y + side}, {x + side, y + side}, {x + side, y}};
}

bool Contains(const Path& path, const cv::Point& p) {
  return std::find(path.begin(), path.end(), p) != path.end();
}

TEST(MergeSegmentsTest, NoneOrOneContourUnchanged) {
  EXPECT_TRUE(MergeSegments({}).empty());
  EXPECT_EQ(MergeSegments({Square(0, 0, 2)}), Square(0, 0, 2));
}

// Three squares in a row. Closest pairs (first in row-major order on ties): square 0's point
// 2 (2,2) with square 1's point 1 (5,2); square 1's point 2 (7,2) with square 2's point 1
// (10,2). Forward: square 0 from its point 2, closed; square 1 from point 1 up to point 2;
// square 2 from point 1, closed. Backward: square 1 from point 2 to its end (closing point).
TEST(MergeSegmentsTest, ThreePartsChainedByClosestPoints) {
  const Path merged = MergeSegments({Square(0, 0, 2), Square(5, 0, 2), Square(10, 0, 2)});
  const Path expected = {{2, 2},  {2, 0},  {0, 0},  {0, 2},  {2, 2}, {5, 2}, {7, 2}, {10, 2},
                         {12, 2}, {12, 0}, {10, 0}, {10, 2}, {7, 2}, {7, 0}, {5, 0}, {5, 2}};
  EXPECT_EQ(merged, expected);
}

// A middle part entered at a later index than it is left: the reference reverses its points
// (but not the indices) before rotating. Square 1 is (5,0) (7,0) (7,2) (5,2): closest to
// square 0 is its point 3 (5,2), closest to square 2 its point 1 (7,0).
TEST(MergeSegmentsTest, MiddlePartWalkedReversed) {
  const Path middle = {{5, 0}, {7, 0}, {7, 2}, {5, 2}};
  const Path merged = MergeSegments({Square(0, 0, 2), middle, Square(10, 0, 2)});
  const Path expected = {{2, 2},  {2, 0},  {0, 0},  {0, 2},  {2, 2},  {7, 2}, {7, 0}, {5, 0},
                         {10, 0}, {10, 2}, {12, 2}, {12, 0}, {10, 0}, {5, 0}, {5, 2}, {7, 2}};
  EXPECT_EQ(merged, expected);
  for (const Path& part : {Square(0, 0, 2), middle, Square(10, 0, 2)}) {
    for (const cv::Point& p : part) EXPECT_TRUE(Contains(merged, p)) << p;
  }
}

TEST(OutlineMaskTest, EveryPartInThePolygonLargestPartFirst) {
  cv::Mat mask = cv::Mat::zeros(60, 100, CV_8U);
  mask(cv::Rect(5, 5, 20, 20)).setTo(255);    // large part
  mask(cv::Rect(40, 10, 6, 6)).setTo(255);    // small part
  mask(cv::Rect(70, 30, 10, 10)).setTo(255);  // middle part
  const cv::Point offset(100, 200);
  const MaskOutline one = OutlineMask(mask, offset, false);
  ASSERT_EQ(one.parts.size(), 1u);
  EXPECT_EQ(cv::boundingRect(one.parts[0]), cv::Rect(105, 205, 20, 20));
  const MaskOutline all = OutlineMask(mask, offset, true);
  ASSERT_EQ(all.parts.size(), 3u);
  EXPECT_EQ(cv::boundingRect(all.parts[1]), cv::Rect(170, 230, 10, 10));
  EXPECT_EQ(cv::boundingRect(all.parts[2]), cv::Rect(140, 210, 6, 6));
  EXPECT_EQ(one.polygon, all.polygon);  // the polygon never depends on all_parts
  // Three contours of 4 corners each: the first and last walked closed (5 points each), the
  // middle one forward and back (its 5 closed points plus the one where it turns): 16 points,
  // every corner on the path, which spans all parts (the largest-contour rule lost two).
  EXPECT_EQ(all.polygon.size(), 16u);
  for (const Path& part : all.parts) {
    for (const cv::Point& p : part) EXPECT_TRUE(Contains(all.polygon, p)) << p;
  }
  EXPECT_EQ(cv::boundingRect(all.polygon), cv::Rect(105, 205, 75, 35));
}

TEST(OutlineMaskTest, EmptyMask) {
  const MaskOutline none = OutlineMask(cv::Mat::zeros(10, 10, CV_8U), {0, 0}, true);
  EXPECT_TRUE(none.polygon.empty());
  EXPECT_TRUE(none.parts.empty());
  EXPECT_TRUE(OutlineMask(cv::Mat(), {0, 0}, true).polygon.empty());
}

}  // namespace
}  // namespace cvdeploy::vision
