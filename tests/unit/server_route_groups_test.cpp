// SPDX-License-Identifier: Apache-2.0
// Route classification: every route Api::Handle serves maps to its group and model; the login
// route is public; anything else is unknown (authenticated only), including near misses that
// the Api would not route either.
#include <gtest/gtest.h>

#include "server/route_groups.h"

namespace cvdeploy::server {
namespace {

using G = security::RouteGroup;

struct Case {
  std::string method, path;
  std::optional<G> group;
  std::string model;
  bool is_public = false;
};

TEST(RouteGroups, EveryRoute) {
  const std::vector<Case> cases = {
      {"GET", "/v2/health/live", G::kHealth, ""},
      {"GET", "/v2/health/ready", G::kHealth, ""},
      {"GET", "/", G::kHealth, ""},
      {"GET", "/v2", G::kMetadata, ""},
      {"GET", "/v1/models", G::kMetadata, ""},
      {"GET", "/v2/models", G::kMetadata, ""},
      {"GET", "/v2/models/yolo", G::kMetadata, "yolo"},
      {"GET", "/v2/models/yolo/versions/3", G::kMetadata, "yolo"},
      {"GET", "/v2/models/yolo/ready", G::kHealth, "yolo"},
      {"GET", "/v2/models/yolo/versions/2/ready", G::kHealth, "yolo"},
      {"POST", "/v2/models/yolo/infer", G::kInfer, "yolo"},
      {"POST", "/v2/models/yolo/versions/1/infer", G::kInfer, "yolo"},
      {"POST", "/v1/models/yolo/predict", G::kInfer, "yolo"},
      {"GET", "/metrics", G::kMetrics, ""},
      {"GET", "/v2/repository/index", G::kRepositoryRead, ""},
      {"POST", "/v2/repository/index", G::kRepositoryRead, ""},
      {"POST", "/v2/repository/models/yolo/load", G::kRepositoryWrite, "yolo"},
      {"POST", "/v2/repository/models/yolo/unload", G::kRepositoryWrite, "yolo"},
      {"GET", "/v1/auth/policy", G::kAdmin, ""},
      // The dashboard's data, drift and samples need "monitor".
      {"GET", "/v1/dashboard/history", G::kMonitor, ""},
      {"GET", "/v1/dashboard/models", G::kMonitor, ""},
      {"GET", "/v1/models/yolo/drift", G::kMonitor, "yolo"},
      {"GET", "/v1/models/yolo/samples", G::kMonitor, "yolo"},
      // A wrong method keeps the path's group (the handler answers 405 after authorization).
      {"GET", "/v2/models/yolo/infer", G::kInfer, "yolo"},
      {"DELETE", "/metrics", G::kMetrics, ""},
      // A model name with odd characters (percent-decoded by the transport) is the model.
      {"POST", "/v2/models/a*b/infer", G::kInfer, "a*b"},
  };
  for (const auto& c : cases) {
    const RouteClass r = ClassifyRoute(c.method, c.path);
    ASSERT_TRUE(r.group.has_value()) << c.path;
    EXPECT_EQ(*r.group, *c.group) << c.path;
    EXPECT_EQ(r.model, c.model) << c.path;
    EXPECT_FALSE(r.is_public) << c.path;
  }
}

TEST(RouteGroups, LoginIsPublic) {
  for (const char* method : {"POST", "GET"}) {
    const RouteClass r = ClassifyRoute(method, "/v1/auth/login");
    EXPECT_TRUE(r.is_public);
    EXPECT_FALSE(r.group.has_value());
  }
  EXPECT_FALSE(ClassifyRoute("POST", "/v1/auth/login/").is_public);
  EXPECT_FALSE(ClassifyRoute("POST", "/v1/auth").is_public);
}

TEST(RouteGroups, UnknownPathsHaveNoGroup) {
  for (const char* path : {"",
                           "x",
                           "//",
                           "/v1",
                           "/v1/models/",
                           "/v3/models",
                           "/v2/models/x/y",
                           "/v2/",
                           "/v2/health",
                           "/v2/health/live/",
                           "/v2/health/dead",
                           "/v2//health/live",
                           "/v2/models/",
                           "/v2/models//infer",
                           "/v2/models/m/infer/x",
                           "/v2/models/m/versions",
                           "/v2/models/a/b/infer",
                           "/v2/repository",
                           "/v2/repository/index/x",
                           "/v2/repository/models/m/delete",
                           "/v1/models/m",
                           "/v1/models//predict",
                           "/metrics/",
                           "/metricsx",
                           "/admin",
                           "/v1/auth/users",
                           "/.env"}) {
    const RouteClass r = ClassifyRoute("GET", path);
    EXPECT_FALSE(r.group.has_value()) << path;
    EXPECT_FALSE(r.is_public) << path;
  }
}

// GET / is the one route a caller without credentials may use beyond the policy's public
// routes (the handler shows such a caller only name, version and links); no other route is.
TEST(RouteGroups, OnlyTheRootIsServedAnonymously) {
  EXPECT_TRUE(ClassifyRoute("GET", "/").anonymous_ok);
  EXPECT_FALSE(ClassifyRoute("GET", "/").is_public);
  for (const char* path : {"//", "/v1/models", "/v2/models", "/v2", "/v2/health/ready", "/metrics",
                           "/v2/repository/index", "/v1/auth/login", "/x", ""}) {
    EXPECT_FALSE(ClassifyRoute("GET", path).anonymous_ok) << path;
  }
}

// A load or unload without a model name is no route (Api::Handle does not serve it either):
// as a repository.write route about no model, a key's model scope would not apply to it.
TEST(RouteGroups, RepositoryControlWithoutAModelIsNoRoute) {
  for (const char* path : {"/v2/repository/models//load", "/v2/repository/models//unload"}) {
    EXPECT_FALSE(ClassifyRoute("POST", path).group.has_value()) << path;
  }
}

// A model name percent-decoded from the path may hold a NUL byte; fnmatch would stop there
// and judge "yolo\0other" as "yolo". Such a name is in no scoped list.
TEST(RouteGroups, ModelScopeRefusesNulInTheName) {
  using std::string_literals::operator""s;
  const RouteClass r = ClassifyRoute("GET", "/v2/models/yolo\0other"s);
  ASSERT_TRUE(r.group.has_value());
  EXPECT_EQ(r.model, "yolo\0other"s);
  EXPECT_FALSE(security::ModelInScope({"yolo*"}, r.model));
  EXPECT_FALSE(security::ModelInScope({"yolo"}, "yolo\0"s));
  EXPECT_FALSE(security::ModelInScope({"*"}, "\0"s));
  // Unscoped lists still match everything; ordinary names are unchanged.
  EXPECT_TRUE(security::ModelInScope({}, "yolo\0other"s));
  EXPECT_TRUE(security::ModelInScope({"yolo*"}, "yolo11n"));
  EXPECT_TRUE(security::ModelInScope({"yolo*"}, "yolo*"));
  EXPECT_FALSE(security::ModelInScope({"yolo*"}, "other"));
}

// The dashboard's static shell (no data) is served without credentials; near misses of the
// monitor routes are unknown.
TEST(RouteGroups, DashboardShellAnonymousDataNot) {
  for (const char* path :
       {"/dashboard", "/dashboard/", "/dashboard/app.js", "/dashboard/style.css"}) {
    const RouteClass r = ClassifyRoute("GET", path);
    EXPECT_TRUE(r.anonymous_ok) << path;
    EXPECT_FALSE(r.group.has_value()) << path;
    EXPECT_FALSE(r.is_public) << path;
  }
  for (const char* path : {"/v1/dashboard/history", "/v1/dashboard/models", "/v1/models/m/drift"}) {
    EXPECT_FALSE(ClassifyRoute("GET", path).anonymous_ok) << path;
  }
  for (const char* path : {"/v1/dashboard", "/v1/dashboard/other", "/v1/dashboard/history/x",
                           "/v1/models//drift", "/v1/models/m/drift/x", "/dashboards"}) {
    const RouteClass r = ClassifyRoute("GET", path);
    EXPECT_FALSE(r.group.has_value()) << path;
    EXPECT_FALSE(r.anonymous_ok) << path;
  }
}

}  // namespace
}  // namespace cvdeploy::server
