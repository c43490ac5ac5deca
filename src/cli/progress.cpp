// SPDX-License-Identifier: Apache-2.0
#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

namespace cvdeploy::cli {

Progress::Progress(std::string label, long total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled && isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { Finish(); }

void Progress::Step(long n) {
  done_ += n;
  Draw(false);
}

void Progress::Clear() {
  if (!enabled_ || !drawn_) return;
  // Carriage return + erase to the end of the line (ANSI EL), flushed before stdout is used.
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
  // Redraw at the next Step even within the 100 ms throttle.
  last_draw_ = start_;
}

void Progress::Finish() {
  if (!enabled_ || finished_) return;
  Draw(true);
  std::fputc('\n', stderr);
  finished_ = true;
}

void Progress::Draw(bool force) {
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = secs > 0 ? done_ / secs : 0;
  if (total_ > 0) {
    constexpr int kWidth = 30;
    const int filled =
        static_cast<int>(kWidth * std::min(1.0, static_cast<double>(done_) / total_));
    std::string bar(filled, '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r%s [%s] %ld/%ld %.1f/s%s%s\033[K", label_.c_str(), bar.c_str(), done_,
                 total_, rate, note_.empty() ? "" : " ", note_.c_str());
  } else {
    std::fprintf(stderr, "\r%s %ld %.1f/s%s%s\033[K", label_.c_str(), done_, rate,
                 note_.empty() ? "" : " ", note_.c_str());
  }
  drawn_ = true;
  std::fflush(stderr);
}

}  // namespace cvdeploy::cli
