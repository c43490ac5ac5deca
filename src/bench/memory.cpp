// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/bench.h"

#include <fstream>
#include <sstream>
#include <string>

namespace cvdeploy::bench {

MemoryUsage ReadMemoryUsage() {
  MemoryUsage usage;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    auto kib = [&] {
      std::istringstream in(line.substr(line.find(':') + 1));
      double value = 0;
      in >> value;
      return value / 1024.0;
    };
    if (line.rfind("VmRSS:", 0) == 0) usage.rss_mb = kib();
    if (line.rfind("VmHWM:", 0) == 0) usage.peak_mb = kib();
  }
  return usage;
}

}  // namespace cvdeploy::bench
