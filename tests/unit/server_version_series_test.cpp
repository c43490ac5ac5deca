// SPDX-License-Identifier: Apache-2.0
// The lifetime of a model version's metric series: removed from the registry when the last
// lease on them goes, kept while another holder (a version of the same number swapped in)
// still uses them, untouched for other versions and for the load-attempt counters.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "server/metrics.h"
#include "server/model_metrics.h"

namespace cvdeploy::server {
namespace {

bool Has(Registry& registry, const std::string& needle) {
  return registry.Render().find(needle) != std::string::npos;
}

// What the repository does when a version loads: the lease, then ready and load duration.
std::shared_ptr<const void> Load(VersionSeriesLeases& leases, Registry& registry,
                                 const std::string& version, VersionMetrics* metrics) {
  auto lease = leases.Acquire("m", version,
                              [&] { *metrics = VersionMetrics::Create(registry, "m", version); });
  const Labels labels = {{"model", "m"}, {"version", version}};
  registry.GetGauge(kModelReadyMetric, "r", labels).Set(1);
  registry.GetGauge(kModelLoadDurationMetric, "d", labels).Set(5);
  return lease;
}

TEST(VersionSeries, LastLeaseRemovesTheVersionsSeriesOnly) {
  Registry registry;
  auto leases = std::make_shared<VersionSeriesLeases>(registry);
  VersionMetrics m1, m2;
  auto lease1 = Load(*leases, registry, "1", &m1);
  auto lease2 = Load(*leases, registry, "2", &m2);
  m1.success->Inc(4);
  m2.success->Inc(7);
  registry.GetCounter("cvdeploy_model_load_failures_total", "f", {{"model", "m"}, {"version", "1"}})
      .Inc();
  const std::string v1 = "{model=\"m\",version=\"1\"}";
  const std::string v2 = "{model=\"m\",version=\"2\"}";
  ASSERT_TRUE(Has(registry, "cvdeploy_model_ready" + v1 + " 1\n"));
  ASSERT_TRUE(Has(registry, "cvdeploy_inference_request_success_total" + v1 + " 4\n"));
  EXPECT_EQ(leases->Holders("m", "1"), 1);

  lease1.reset();
  EXPECT_EQ(leases->Holders("m", "1"), 0);
  const std::string text = registry.Render();
  for (const auto& family : VersionSeriesFamilies()) {
    EXPECT_EQ(text.find(family + v1), std::string::npos) << family << "\n" << text;
    EXPECT_EQ(text.find(family + "_count" + v1), std::string::npos) << family;
    EXPECT_EQ(text.find(family + "_bucket{model=\"m\",version=\"1\""), std::string::npos) << family;
  }
  // Version 2 keeps its values; the load-attempt counter of version 1 stays.
  EXPECT_TRUE(Has(registry, "cvdeploy_inference_request_success_total" + v2 + " 7\n"));
  EXPECT_TRUE(Has(registry, "cvdeploy_model_ready" + v2 + " 1\n"));
  EXPECT_TRUE(Has(registry, "cvdeploy_model_load_failures_total" + v1 + " 1\n"));
  lease2.reset();
  EXPECT_FALSE(Has(registry, "cvdeploy_model_ready" + v2));
}

// A version swapped in while the old one of the same number drains shares its series: the
// old one going must not remove them (the new one's pointers would dangle).
TEST(VersionSeries, SharedSeriesStayUntilTheLastHolderGoes) {
  Registry registry;
  auto leases = std::make_shared<VersionSeriesLeases>(registry);
  VersionMetrics old_metrics, new_metrics;
  auto old_lease = Load(*leases, registry, "3", &old_metrics);
  auto new_lease = Load(*leases, registry, "3", &new_metrics);
  EXPECT_EQ(old_metrics.success, new_metrics.success);
  EXPECT_EQ(leases->Holders("m", "3"), 2);
  old_lease.reset();
  new_metrics.success->Inc(2);  // still a live series
  EXPECT_TRUE(
      Has(registry, "cvdeploy_inference_request_success_total{model=\"m\",version=\"3\"} 2\n"));
  new_lease.reset();
  EXPECT_FALSE(Has(registry, "version=\"3\""));
  // Loaded again later: fresh series from zero.
  VersionMetrics again;
  auto lease = Load(*leases, registry, "3", &again);
  EXPECT_EQ(again.success->Value(), 0);
}

// A lease outlives the table's owner (a request still holds a version at shutdown).
TEST(VersionSeries, LeaseKeepsTheTableAlive) {
  Registry registry;
  auto leases = std::make_shared<VersionSeriesLeases>(registry);
  VersionMetrics m;
  auto lease = Load(*leases, registry, "1", &m);
  leases.reset();
  EXPECT_TRUE(Has(registry, "cvdeploy_model_ready{model=\"m\",version=\"1\"} 1\n"));
  lease.reset();
  EXPECT_FALSE(Has(registry, "cvdeploy_model_ready{model=\"m\",version=\"1\"}"));
}

TEST(VersionSeries, FailedCreateTakesNoLease) {
  Registry registry;
  auto leases = std::make_shared<VersionSeriesLeases>(registry);
  EXPECT_THROW(leases->Acquire("m", "1", [] { throw std::runtime_error("no"); }),
               std::runtime_error);
  EXPECT_EQ(leases->Holders("m", "1"), 0);
}

}  // namespace
}  // namespace cvdeploy::server
