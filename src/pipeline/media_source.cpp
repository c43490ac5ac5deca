// SPDX-License-Identifier: Apache-2.0
// Image files decoded on the workers; videos read frame by frame under the pipeline's lock.
#include <chrono>
#include <opencv2/videoio.hpp>

#include "cvdeploy/image.h"
#include "cvdeploy/pipeline.h"

namespace cvdeploy::pipeline {
namespace {

using Clock = std::chrono::steady_clock;
double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

class Media : public Source {
 public:
  Media(std::vector<std::string> paths, cv::Size model_input, bool reduced, int vid_stride,
        uint64_t max_pixels)
      : paths_(std::move(paths)),
        model_input_(reduced ? model_input : cv::Size()),
        vid_stride_(std::max(1, vid_stride)),
        max_pixels_(max_pixels) {}

  std::optional<Loader> Claim() override {
    while (true) {
      if (video_.isOpened()) {
        if (auto frame = NextVideoFrame()) return frame;
        continue;
      }
      if (next_ >= paths_.size()) return std::nullopt;
      const std::string& path = paths_[next_++];
      if (!HasVideoExtension(path)) {
        return Loader([path, size = model_input_, max_pixels = max_pixels_] {
          Frame f;
          f.name = path;
          auto t0 = Clock::now();
          f.image = ReadImageForModel(path, size, &f.original, max_pixels);
          f.decode_ms = MsSince(t0);
          return f;
        });
      }
      if (!OpenVideo(path)) {
        return Loader([path]() -> Frame {
          throw BadInput(path + ": cannot open video (unreadable or unsupported format)");
        });
      }
    }
  }

 private:
  bool OpenVideo(const std::string& path) {
    // FFmpeg, then OpenCV's own MJPEG reader; never CAP_ANY: it falls through to GStreamer
    // when its plugins are installed, which prints GStreamer-CRITICAL lines on a file it
    // cannot read (logging silenced or not).
    for (int api : {cv::CAP_FFMPEG, cv::CAP_OPENCV_MJPEG}) {
      try {
        if (video_.open(path, api)) break;
      } catch (const cv::Exception&) {
      }
    }
    video_path_ = path;
    frame_index_ = 0;
    return video_.isOpened();
  }

  // The next frame to process as a ready loader; nullopt (video closed) at the end.
  std::optional<Loader> NextVideoFrame() {
    auto t0 = Clock::now();
    while (frame_index_ % vid_stride_ != 0) {
      if (!video_.grab()) return EndVideo();
      ++frame_index_;
    }
    cv::Mat image;
    if (!video_.read(image) || image.empty()) return EndVideo();
    Frame f;
    f.name = video_path_;
    f.frame = frame_index_++;
    f.original = image.size();
    f.image = std::move(image);
    f.decode_ms = MsSince(t0);
    return Loader([f = std::move(f)]() mutable { return std::move(f); });
  }

  std::optional<Loader> EndVideo() {
    video_.release();
    if (frame_index_ == 0) {
      // No frame at all: report it as this video's one item.
      std::string path = video_path_;
      frame_index_ = -1;
      return Loader(
          [path]() -> Frame { throw BadInput(path + ": video contains no readable frames"); });
    }
    return std::nullopt;
  }

  std::vector<std::string> paths_;
  size_t next_ = 0;
  cv::Size model_input_;
  int vid_stride_;
  uint64_t max_pixels_;
  cv::VideoCapture video_;
  std::string video_path_;
  long frame_index_ = 0;
};

}  // namespace

std::unique_ptr<Source> MediaSource(std::vector<std::string> paths, cv::Size model_input,
                                    bool reduced_decode, int vid_stride, uint64_t max_pixels) {
  return std::make_unique<Media>(std::move(paths), model_input, reduced_decode, vid_stride,
                                 max_pixels);
}

}  // namespace cvdeploy::pipeline
