// SPDX-License-Identifier: Apache-2.0
// Resident memory of this process, as the kernel accounts it.
#pragma once

namespace cvdeploy::bench {

struct MemoryUsage {
  double rss_mb = 0;   // current resident set (VmRSS)
  double peak_mb = 0;  // peak resident set since the process started (VmHWM)
};

// Reads /proc/self/status; zeros where the kernel does not provide the fields.
MemoryUsage ReadMemoryUsage();

}  // namespace cvdeploy::bench
