// SPDX-License-Identifier: Apache-2.0
// Rect batches: group by shape or pad to one shape? (issue 16, section 1)
//
//   rect_batch_bench MODEL DIR [--batch N] [--rounds N] [--threads N] [--images N]
//
// MODEL must have dynamic batch and spatial axes (cvdeploy convert --dynamic). The images of
// DIR are decoded once, then cut into consecutive batches of N. Each round runs every batch
// both ways, in alternating order (A B, then B A), on one session:
//   group  Predictor::PredictBatch: one engine call per rect shape within the batch
//   pad    Prepare of the whole batch: every image padded to the largest rect sides, one call
// and records the process CPU time (getrusage: user + system, all threads) and the wall time
// of each. CPU time is what a loaded, shared host distorts least; the ratio of the two sides'
// totals over the same rounds is the figure. Prints the machine and both ratios. Uses the
// public API only.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cvdeploy/file.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/system.h"

namespace {

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Totals {
  double cpu = 0, wall = 0;
  size_t calls = 0;
};

int Usage() {
  std::fprintf(stderr,
               "usage: rect_batch_bench MODEL DIR [--batch N] [--rounds N] [--threads N] "
               "[--images N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Usage();
  const std::string model = argv[1], dir = argv[2];
  int batch = 4, rounds = 3, threads = 0, max_images = 0;
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (value < 0) return Usage();
    if (flag == "--batch") {
      batch = std::max(1, value);
    } else if (flag == "--rounds") {
      rounds = std::max(1, value);
    } else if (flag == "--threads") {
      threads = value;
    } else if (flag == "--images") {
      max_images = value;
    } else {
      return Usage();
    }
  }
  try {
    cvdeploy::SessionOptions session;
    session.intra_op_threads = threads;
    session.spin = cvdeploy::Spin::kOff;
    const auto predictor = cvdeploy::Predictor::Load(model, session);
    if (!predictor->meta().dynamic || predictor->max_batch() != 0) {
      std::fprintf(stderr,
                   "%s: needs dynamic batch and spatial axes (cvdeploy convert --dynamic)\n",
                   model.c_str());
      return 3;
    }
    std::vector<cv::Mat> images;
    for (const std::string& f : cvdeploy::ExpandSources({dir})) {
      if (cvdeploy::HasVideoExtension(f)) continue;
      images.push_back(cvdeploy::ReadImage(f));
      if (max_images > 0 && static_cast<int>(images.size()) >= max_images) break;
    }
    std::vector<std::vector<cv::Mat>> batches;
    for (size_t i = 0; i < images.size(); i += batch) {
      batches.emplace_back(images.begin() + i, images.begin() + std::min(images.size(), i + batch));
    }
    const cvdeploy::PredictOptions options;  // rect on, conf 0.25
    auto group = [&](const std::vector<cv::Mat>& b) { predictor->PredictBatch(b, options); };
    auto pad = [&](const std::vector<cv::Mat>& b) {
      cvdeploy::Batch prepared = predictor->Prepare(b, options);
      predictor->Decode(predictor->Run(prepared), prepared, options);
    };
    auto timed = [](Totals& t, auto&& f) {
      const double c0 = CpuSeconds(), w0 = WallSeconds();
      f();
      t.cpu += CpuSeconds() - c0;
      t.wall += WallSeconds() - w0;
      ++t.calls;
    };
    for (const auto& b : batches) {  // warm-up: every shape once through each side
      group(b);
      pad(b);
    }
    Totals g, p;
    for (int r = 0; r < rounds; ++r) {
      for (const auto& b : batches) {
        if (r % 2 == 0) {
          timed(g, [&] { group(b); });
          timed(p, [&] { pad(b); });
        } else {
          timed(p, [&] { pad(b); });
          timed(g, [&] { group(b); });
        }
      }
    }
    const cvdeploy::MachineInfo machine = cvdeploy::DetectMachine();
    std::printf("machine: %s, %d physical cores, %s\n", machine.cpu_model.c_str(),
                machine.physical_cores, machine.os.c_str());
    std::printf("model %s, %zu images, batch %d, %zu batches x %d rounds, %d engine threads\n",
                model.c_str(), images.size(), batch, batches.size(), rounds, predictor->threads());
    std::printf("group: cpu %.2f s, wall %.2f s\n", g.cpu, g.wall);
    std::printf("pad:   cpu %.2f s, wall %.2f s\n", p.cpu, p.wall);
    std::printf("pad / group: cpu %.3fx, wall %.3fx (> 1: grouping is faster)\n", p.cpu / g.cpu,
                p.wall / g.wall);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rect_batch_bench: %s\n", e.what());
    return 4;
  }
  return 0;
}
