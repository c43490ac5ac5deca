// SPDX-License-Identifier: Apache-2.0
// PlanThreads against the three computations it replaced, written out here as naive
// references: the pipeline's default split, the CLI's --workers/--threads resolution and the
// server's instances/threads defaults. Every combination of cores and requests must agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "cvdeploy/system.h"

namespace cvdeploy {
namespace {

ThreadPlan ReferenceDefault(int cores) {
  cores = std::max(1, cores);
  const int workers = std::min(cores, 4);
  return {workers, std::max(1, cores / workers)};
}

// The CLI: threads 0 for a single input meant "the engine's default", i.e. every core.
ThreadPlan ReferenceCli(int cores, size_t inputs, int workers, int threads) {
  if (workers > 0) return {workers, threads ? threads : std::max(1, cores / workers)};
  if (inputs <= 1) return {1, threads ? threads : cores};
  if (threads > 0) return {std::max(1, cores / threads), threads};
  return ReferenceDefault(cores);
}

ThreadPlan ReferenceServer(int cores, bool batching, int instances, int threads) {
  if (!instances) instances = batching ? 1 : ReferenceDefault(cores).workers;
  if (!threads) threads = std::max(1, cores / instances);
  return {instances, threads};
}

std::string Describe(const ThreadPlan& p) {
  return std::to_string(p.workers) + " x " + std::to_string(p.engine_threads);
}

TEST(PlanThreadsTest, DefaultIsUpToFourWorkersSharingTheCores) {
  for (int cores = -1; cores <= 64; ++cores) {
    EXPECT_EQ(Describe(PlanThreads(cores)), Describe(ReferenceDefault(cores))) << cores;
  }
  EXPECT_EQ(Describe(PlanThreads(2)), "2 x 1");
  EXPECT_EQ(Describe(PlanThreads(16)), "4 x 4");
}

TEST(PlanThreadsTest, MatchesTheCliResolution) {
  for (int cores = 1; cores <= 32; ++cores) {
    for (size_t inputs : {0, 1, 2, 100}) {
      for (int workers = 0; workers <= 5; ++workers) {
        for (int threads = 0; threads <= 5; ++threads) {
          const ThreadPlan plan = PlanThreads(
              cores, {.workers = workers, .engine_threads = threads, .single_call = inputs <= 1});
          EXPECT_EQ(Describe(plan), Describe(ReferenceCli(cores, inputs, workers, threads)))
              << cores << " cores, " << inputs << " inputs, " << workers << " workers, " << threads
              << " threads";
        }
      }
    }
  }
}

TEST(PlanThreadsTest, MatchesTheServerDefaults) {
  for (int cores = 1; cores <= 32; ++cores) {
    for (bool batching : {false, true}) {
      for (int instances = 0; instances <= 5; ++instances) {
        for (int threads = 0; threads <= 5; ++threads) {
          const ThreadPlan plan = PlanThreads(cores, {.workers = instances,
                                                      .engine_threads = threads,
                                                      .single_call = batching,
                                                      .fit_workers_to_threads = false});
          EXPECT_EQ(Describe(plan), Describe(ReferenceServer(cores, batching, instances, threads)))
              << cores << " cores, batching " << batching << ", " << instances << " instances, "
              << threads << " threads";
        }
      }
    }
  }
}

TEST(PlanThreadsTest, PhysicalCoresIsTheDetectedCountAtLeastOne) {
  EXPECT_EQ(PhysicalCores(), std::max(1, DetectMachine().physical_cores));
}

}  // namespace
}  // namespace cvdeploy
