// SPDX-License-Identifier: Apache-2.0
// Memory that holds secrets or protected plaintext (a decrypted model, a data key): locking its
// pages against swapping and wiping it so that the compiler cannot drop the writes.
// LockMemory is best effort (RLIMIT_MEMLOCK may forbid it; the process then still works and
// the caller may report it); WipeMemory always wipes. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cvdeploy {

// mlock(2) of the pages covering [data, data + size); false when the kernel refused it.
bool LockMemory(const void* data, size_t size);
void UnlockMemory(const void* data, size_t size);
// Overwrites [data, data + size) with zeros in a way the optimizer keeps (explicit_bzero).
void WipeMemory(void* data, size_t size);
inline void WipeBytes(std::vector<uint8_t>& bytes) { WipeMemory(bytes.data(), bytes.size()); }
inline void WipeBytes(std::string& bytes) { WipeMemory(bytes.data(), bytes.size()); }

// Marks the process non-dumpable (prctl PR_SET_DUMPABLE 0): no core dump, no ptrace attach or
// /proc/PID/mem read by other processes of the same user. Idempotent; throws Error(kRuntime)
// when the kernel refuses.
void MakeProcessNonDumpable();
// Whether /proc/self/status says "Dumpable: 0" (prctl PR_GET_DUMPABLE).
bool ProcessIsDumpable();

}  // namespace cvdeploy
