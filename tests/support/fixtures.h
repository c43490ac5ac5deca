// SPDX-License-Identifier: Apache-2.0
// Writers of bad (and a few good) input files for error-path tests. Each writes into `dir`
// (which must exist), returns the full path of what it wrote and throws std::runtime_error
// naming the path when it cannot.
#pragma once

#include <string>

#include <opencv2/core.hpp>

namespace cvdeploy::testing {

// `text` verbatim into dir/name.
std::string WriteTextFile(const std::string& dir, const std::string& name,
                          const std::string& text = "this is plain text, not media\n");
// A zero-byte file.
std::string WriteZeroByteFile(const std::string& dir, const std::string& name = "empty.jpg");
// The first `fraction` of the bytes of the sample JPEG images/bus.jpg (a JPEG with a valid
// header whose scan data stops early).
std::string WriteTruncatedJpeg(const std::string& dir, const std::string& name = "truncated.jpg",
                               double fraction = 0.4);
// Plain text named like a JPEG.
std::string WriteTextAsJpeg(const std::string& dir, const std::string& name = "not_an_image.jpg");
// Plain text named like a video.
std::string WriteUnreadableVideo(const std::string& dir, const std::string& name = "broken.mp4");
// A readable MJPG .avi of `frames` copies of `image` resized to `size` (an empty `image`
// means images/bus.jpg).
std::string WriteVideo(const std::string& dir, const std::string& name = "clip.avi", int frames = 5,
                       const cv::Mat& image = cv::Mat(), cv::Size size = cv::Size(320, 240),
                       double fps = 10.0);
// An empty directory dir/name.
std::string MakeEmptyDir(const std::string& dir, const std::string& name = "empty_dir");

}  // namespace cvdeploy::testing
