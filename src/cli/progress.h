// SPDX-License-Identifier: Apache-2.0
// A one-line progress bar on stderr, drawn only when stderr is a terminal.
#pragma once

#include <chrono>
#include <string>

namespace cvdeploy::cli {

class Progress {
 public:
  // total <= 0: unknown (shows a count only).
  Progress(std::string label, long total);
  ~Progress();
  void Step(long n = 1);
  void Finish();

 private:
  void Draw(bool force);
  std::string label_;
  long total_, done_ = 0;
  bool enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace cvdeploy::cli
