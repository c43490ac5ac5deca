// SPDX-License-Identifier: Apache-2.0
// The sample store's pieces without a server: meta.json round trip and refusals
// (cvdeploy/samples.h), and the server's Sampler: a full queue drops (counted) instead of
// waiting for the writer, files are 0600 in 0700 directories, rotation keeps the bound.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <future>

#include "cvdeploy/error.h"
#include "cvdeploy/samples.h"
#include "server/metrics.h"
#include "server/sampler.h"
#include "support/assets.h"
#include "support/server_process.h"

namespace cvdeploy {
namespace {

namespace fs = std::filesystem;

samples::SampleMeta ImageMeta() {
  samples::SampleMeta m;
  m.request_id = "req-1";
  m.trace_id = "0af7651916cd43dd8448eb211c80319c";
  m.model = "det";
  m.version = "3";
  m.time = "2026-12-04T04:30:00.123Z";
  m.time_ms = 1796358600123;
  m.kind = "image";
  m.input = "input.jpg";
  m.input_bytes = 10;
  m.conf = 0.3f;
  m.imgsz = 320;
  m.timings_ms = {{"queue", 0.5}, {"inference", 70.25}};
  return m;
}

TEST(SampleMeta, RoundTrips) {
  const samples::SampleMeta m = ImageMeta();
  const samples::SampleMeta back =
      samples::SampleMetaFromJson(samples::SampleMetaToJson(m), "meta.json");
  EXPECT_EQ(back.request_id, m.request_id);
  EXPECT_EQ(back.trace_id, m.trace_id);
  EXPECT_EQ(back.version, "3");
  EXPECT_EQ(back.input, "input.jpg");
  EXPECT_FLOAT_EQ(back.conf, 0.3f);
  EXPECT_EQ(back.imgsz, 320);
  EXPECT_DOUBLE_EQ(back.timings_ms.at("inference"), 70.25);
}

TEST(SampleMeta, RefusesCorruptFieldsWithOneLine) {
  auto refuse = [](const std::string& text, const std::string& names) {
    try {
      samples::SampleMetaFromJson(text, "S/meta.json");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kBadInput);
      EXPECT_NE(std::string(e.what()).find(names), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    }
  };
  std::string good = samples::SampleMetaToJson(ImageMeta());
  refuse("{not json", "S/meta.json");
  refuse("[]", "expected a JSON object");
  refuse(std::string(70000, ' ').append("{}"), "more than the limit");
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  refuse(with("\"input.jpg\"", "\"../../etc/passwd\""), "input");
  refuse(with("\"kind\":\"image\"", "\"kind\":\"video\""), "kind");
  refuse(with("\"req-1\"", std::string(1, '"').append(200, 'x').append(1, '"')), "request_id");
  refuse(with("\"req-1\"", "\"a\\u0007b\""), "request_id");
  refuse(with("\"conf\":0.3", "\"conf\":7"), "options.conf");
  refuse(with("cvdeploy-sample-1", "other"), "format");
  refuse(std::string(100, '[').append(100, ']'), "nested deeper");
}

TEST(SampleResponse, ReadsPredictJsonAndRefusesBadBoxes) {
  const std::string text =
      R"({"source":"x","width":640,"height":480,"task":"detect","detections":[{"class_id":0,)"
      R"("class_name":"person","confidence":0.9,"box":{"x1":1,"y1":2,"x2":30,"y2":40}}]})";
  const Result r = samples::SampleResponseFromJson(text, "response.json");
  ASSERT_EQ(r.detections.size(), 1u);
  EXPECT_EQ(r.detections[0].class_name, "person");
  EXPECT_FLOAT_EQ(r.detections[0].box.y2, 40);
  std::string bad = text;
  bad.replace(bad.find("\"x2\":30"), 7, "\"x2\":\"a\"");
  EXPECT_THROW(samples::SampleResponseFromJson(bad, "response.json"), Error);
}

server::SampleRecord Record(const std::string& id, size_t bytes) {
  server::SampleRecord r;
  r.meta = server::NewSampleMeta(id, "", "det", "1", "image", nullptr);
  r.image.assign(bytes, 'x');
  r.image_ext = "jpg";
  r.response = "{}";
  return r;
}

TEST(Sampler, FullQueueDropsWithoutWaitingForTheWriter) {
  const std::string dir = testing::MakeTempDir("sampler-queue") + "/store";
  server::Registry registry;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  server::SamplingOptions options;
  options.rate = 1;
  options.dir = dir;
  options.queue = 2;
  {
    server::Sampler sampler(options, registry, [released] { released.wait(); });
    // The writer takes the first record and waits; two more fit in the queue; the rest are
    // dropped at once. Were Offer to wait for room, this loop would never end (the writer
    // waits for the release below).
    for (int i = 0; i < 20; ++i) {
      sampler.Offer(Record(std::string("r").append(std::to_string(i)), 100));
    }
    const double dropped =
        registry.GetCounter("cvdeploy_samples_total", "", {{"result", "dropped"}}).Value();
    EXPECT_GE(dropped, 17);
    EXPECT_LE(dropped, 18);  // 18 when the writer had not yet taken the first one
    release.set_value();
  }  // the destructor writes what is queued
  const double written =
      registry.GetCounter("cvdeploy_samples_total", "", {{"result", "written"}}).Value();
  const double dropped =
      registry.GetCounter("cvdeploy_samples_total", "", {{"result", "dropped"}}).Value();
  EXPECT_EQ(written + dropped, 20);
  const auto stored = samples::ScanSampleDirs(dir);
  EXPECT_EQ(static_cast<double>(stored.size()), written);
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_FALSE(stored.empty());
  for (const auto& e : fs::directory_iterator(stored.front().path)) {
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << e.path();
  }
}

TEST(Sampler, RotatesOldestFirstAndRescansAtStart) {
  const std::string dir = testing::MakeTempDir("sampler-rotate") + "/store";
  server::SamplingOptions options;
  options.rate = 1;
  options.dir = dir;
  options.max_bytes = 5000;
  {
    server::Registry registry;
    server::Sampler sampler(options, registry);
    for (int i = 0; i < 10; ++i) {
      sampler.Offer(Record(std::string("r").append(std::to_string(i)), 1500));
      // One at a time, so that none is dropped.
      ASSERT_TRUE(testing::WaitFor(
          [&] {
            return registry.GetCounter("cvdeploy_samples_total", "", {{"result", "written"}})
                       .Value() == i + 1;
          },
          10));
    }
  }
  auto stored = samples::ScanSampleDirs(dir);
  uint64_t bytes = 0;
  for (const auto& s : stored) bytes += s.bytes;
  EXPECT_LE(bytes, 5000u);
  ASSERT_EQ(stored.size(), 2u);  // ~1.9 KB each
  EXPECT_NE(stored.back().name.find("_r9"), std::string::npos) << stored.back().name;
  EXPECT_NE(stored.front().name.find("_r8"), std::string::npos) << stored.front().name;
  // A restart with a smaller bound trims what is there before the first write.
  options.max_bytes = 2500;
  server::Registry registry;
  server::Sampler sampler(options, registry);
  stored = samples::ScanSampleDirs(dir);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_NE(stored.front().name.find("_r9"), std::string::npos);
  EXPECT_EQ(registry.GetGauge("cvdeploy_samples_stored", "").Value(), 1);
}

TEST(Sampler, UnwritableDirectoryIsRefusedAtStart) {
  // A path under a regular file: refused for root too (which may write anywhere else).
  const std::string base = testing::MakeTempDir("sampler-bad");
  const std::string file = base + "/file";
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  server::Registry registry;
  server::SamplingOptions options;
  options.rate = 1;
  options.dir = file + "/store";
  try {
    server::Sampler sampler(options, registry);
    ADD_FAILURE() << "accepted " << options.dir;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
    EXPECT_NE(std::string(e.what()).find(options.dir), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cvdeploy
