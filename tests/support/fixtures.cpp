// SPDX-License-Identifier: Apache-2.0
#include "support/fixtures.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "support/assets.h"

namespace cvdeploy::testing {
namespace {

std::string Join(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

void WriteAll(const std::string& path, const char* data, size_t size) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (size > 0) file.write(data, static_cast<std::streamsize>(size));
  file.close();
  if (!file) throw std::runtime_error("cannot write " + path);
}

std::vector<char> ReadAll(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot read " + path);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

}  // namespace

std::string WriteTextFile(const std::string& dir, const std::string& name,
                          const std::string& text) {
  const std::string path = Join(dir, name);
  WriteAll(path, text.data(), text.size());
  return path;
}

std::string WriteZeroByteFile(const std::string& dir, const std::string& name) {
  const std::string path = Join(dir, name);
  WriteAll(path, nullptr, 0);
  return path;
}

std::string WriteTruncatedJpeg(const std::string& dir, const std::string& name, double fraction) {
  if (fraction <= 0.0 || fraction >= 1.0) {
    throw std::runtime_error("truncation fraction must be in (0, 1)");
  }
  const std::vector<char> jpeg = ReadAll(Asset("images/bus.jpg"));
  const auto keep = static_cast<size_t>(static_cast<double>(jpeg.size()) * fraction);
  const std::string path = Join(dir, name);
  WriteAll(path, jpeg.data(), keep);
  return path;
}

std::string WriteTextAsJpeg(const std::string& dir, const std::string& name) {
  return WriteTextFile(dir, name, "This is a text file with a .jpg name; it holds no image.\n");
}

std::string WriteUnreadableVideo(const std::string& dir, const std::string& name) {
  return WriteTextFile(dir, name, "This is a text file with a video name; it holds no frames.\n");
}

std::string WriteVideo(const std::string& dir, const std::string& name, int frames,
                       const cv::Mat& image, cv::Size size, double fps) {
  cv::Mat source = image.empty() ? cv::imread(Asset("images/bus.jpg"), cv::IMREAD_COLOR) : image;
  if (source.empty()) throw std::runtime_error("cannot decode the video's source image");
  if (source.channels() == 1) cv::cvtColor(source, source, cv::COLOR_GRAY2BGR);
  cv::Mat frame;
  cv::resize(source, frame, size, 0, 0, cv::INTER_LINEAR);

  const std::string path = Join(dir, name);
  cv::VideoWriter writer(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps, size, true);
  if (!writer.isOpened()) throw std::runtime_error("cv::VideoWriter cannot open " + path);
  for (int i = 0; i < frames; ++i) writer.write(frame);
  writer.release();
  if (!std::filesystem::exists(path) || std::filesystem::file_size(path) == 0) {
    throw std::runtime_error("cv::VideoWriter wrote nothing to " + path);
  }
  return path;
}

std::string MakeEmptyDir(const std::string& dir, const std::string& name) {
  const std::string path = Join(dir, name);
  std::filesystem::create_directories(path);
  if (!std::filesystem::is_empty(path)) throw std::runtime_error(path + " is not empty");
  return path;
}

}  // namespace cvdeploy::testing
