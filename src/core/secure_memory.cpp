// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/secure_memory.h"

#include <sys/mman.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "cvdeploy/error.h"

namespace cvdeploy {

bool LockMemory(const void* data, size_t size) {
  if (data == nullptr || size == 0) return true;
  return mlock(data, size) == 0;
}

void UnlockMemory(const void* data, size_t size) {
  if (data != nullptr && size != 0) munlock(data, size);
}

void WipeMemory(void* data, size_t size) {
  if (data != nullptr && size != 0) explicit_bzero(data, size);
}

void MakeProcessNonDumpable() {
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    throw Error(ErrorCode::kRuntime,
                std::string("prctl(PR_SET_DUMPABLE, 0) failed: ") + std::strerror(errno));
  }
}

bool ProcessIsDumpable() { return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0; }

}  // namespace cvdeploy
