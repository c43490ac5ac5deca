// SPDX-License-Identifier: Apache-2.0
// Which JPEG decode scales pay (docs/performance.md "Decode at scale"): CPU time of libjpeg-turbo
// decoding at M/8 (M = 1..8) plus the letterbox's resize to the target, per image, the scales
// interleaved image by image and round by round, one thread. Then the two policies compared
// over the same images: the smallest M/8 of any M that covers the letterbox, against the
// smallest of 8/8, 4/8, 2/8, 1/8 (what cvdeploy uses, core::ChooseJpegScale).
//
//   decode_scale TARGET ROUNDS IMAGE...      e.g. decode_scale 640 20 bus.jpg zidane.jpg
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

// jpeglib.h needs FILE and size_t first.
#include <jpeglib.h>

namespace {

double CpuMs() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

struct Jpeg {
  std::string name;
  std::vector<unsigned char> bytes;
  int width = 0, height = 0;
};

// Decodes at m/8 into BGR (no error handling: the sample images are known good).
cv::Mat Decode(const Jpeg& jpeg, int m) {
  jpeg_decompress_struct info;
  jpeg_error_mgr errors;
  info.err = jpeg_std_error(&errors);
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, jpeg.bytes.data(), jpeg.bytes.size());
  jpeg_read_header(&info, TRUE);
  info.scale_num = m;
  info.scale_denom = 8;
  info.out_color_space = JCS_EXT_BGR;
  jpeg_start_decompress(&info);
  cv::Mat out(static_cast<int>(info.output_height), static_cast<int>(info.output_width), CV_8UC3);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = out.ptr<unsigned char>(static_cast<int>(info.output_scanline));
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return out;
}

Jpeg Load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  Jpeg j{path, {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()}};
  const cv::Mat full = Decode(j, 8);
  j.width = full.cols;
  j.height = full.rows;
  return j;
}

// The letterbox's resized size for a square target (Ultralytics: round(side * r)).
cv::Size Resized(const Jpeg& j, int target) {
  const double r =
      std::min(static_cast<double>(target) / j.width, static_cast<double>(target) / j.height);
  return {static_cast<int>(std::lround(j.width * r)), static_cast<int>(std::lround(j.height * r))};
}

bool Covers(const Jpeg& j, int target, int m) {
  const cv::Size need = Resized(j, target);
  return (j.width * m + 7) / 8 >= need.width && (j.height * m + 7) / 8 >= need.height;
}

int Smallest(const Jpeg& j, int target, const std::vector<int>& scales) {
  int best = 8;
  for (int m : scales) {
    if (m < best && Covers(j, target, m)) best = m;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: decode_scale TARGET ROUNDS IMAGE...\n");
    return 2;
  }
  cv::setNumThreads(1);
  const int target = std::atoi(argv[1]);
  const int rounds = std::atoi(argv[2]);
  std::vector<Jpeg> images;
  for (int i = 3; i < argc; ++i) images.push_back(Load(argv[i]));
  // ms[i][m]: summed CPU time of decode (+ resize) of image i at m/8.
  std::vector<std::vector<double>> decode(images.size(), std::vector<double>(9, 0));
  std::vector<std::vector<double>> total = decode;
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < images.size(); ++i) {
      for (int k = 0; k < 8; ++k) {
        const int m = r % 2 ? k + 1 : 8 - k;  // alternate the order of the scales
        if (!Covers(images[i], target, m)) continue;
        const double t0 = CpuMs();
        const cv::Mat image = Decode(images[i], m);
        const double t1 = CpuMs();
        const cv::Size need = Resized(images[i], target);
        cv::Mat resized;
        if (image.size() != need) cv::resize(image, resized, need, 0, 0, cv::INTER_LINEAR);
        const double t2 = CpuMs();
        decode[i][m] += t1 - t0;
        total[i][m] += t2 - t0;
      }
    }
  }
  std::printf("target %d, %d rounds, CPU ms per image (decode / decode + letterbox resize)\n",
              target, rounds);
  double any_sum = 0, pow2_sum = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const Jpeg& j = images[i];
    const int any = Smallest(j, target, {1, 2, 3, 4, 5, 6, 7, 8});
    const int pow2 = Smallest(j, target, {1, 2, 4, 8});
    any_sum += total[i][any] / rounds;
    pow2_sum += total[i][pow2] / rounds;
    if (images.size() > 4) continue;  // many images: only the policy totals
    std::printf("%s %dx%d:", j.name.c_str(), j.width, j.height);
    for (int m = 8; m >= 1; --m) {
      if (Covers(j, target, m)) {
        std::printf("  %d/8 %.2f/%.2f", m, decode[i][m] / rounds, total[i][m] / rounds);
      }
    }
    std::printf("\n");
  }
  std::printf("policy any M/8: %.3f ms per image; powers of two: %.3f ms per image (%zu images)\n",
              any_sum / images.size(), pow2_sum / images.size(), images.size());
  return 0;
}
