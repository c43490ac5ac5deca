// SPDX-License-Identifier: Apache-2.0
// A one-line progress bar on stderr, drawn only when stderr is a terminal (and not --quiet).
// Clear() erases it before another line is printed; the next Step() draws it again.
#pragma once

#include <chrono>
#include <string>

namespace cvdeploy::cli {

class Progress {
 public:
  // total <= 0: unknown (shows a count only). enabled = false: draws nothing (--quiet).
  Progress(std::string label, long total, bool enabled = true);
  ~Progress();
  void Step(long n = 1);
  // Text shown after the count (e.g. "12 dropped"); drawn at the next Step.
  void SetNote(std::string note) { note_ = std::move(note); }
  // Erases the bar from the line, so that a result or error line starts on a clean line.
  void Clear();
  void Finish();

 private:
  void Draw(bool force);
  std::string label_, note_;
  long total_, done_ = 0;
  bool enabled_, finished_ = false, drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace cvdeploy::cli
