// SPDX-License-Identifier: Apache-2.0
// Poll mode against real server processes and model repositories in temp dirs: a model.onnx
// replaced by something that is not a regular file (a directory, a symlink to one, a FIFO) is a
// broken version while the served one keeps serving; config.json changes are applied by an
// atomic reload, or rejected (invalid JSON, a FIFO, nesting beyond 64 levels, invalid values, a
// config the model cannot load with) while the old config keeps serving; removing config.json
// reverts to the defaults. Every rejection is one warning line and one count.

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/assets.h"
#include "support/server_api.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kPollInterval[] = "0.1";
// A few poll intervals: long enough for several scans to pass.
constexpr auto kSeveralScans = std::chrono::milliseconds(600);

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Lines of `text` that contain every one of `parts`.
int LinesWith(const std::string& text, const std::vector<std::string>& parts) {
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (const auto& p : parts) all = all && Contains(line, p);
    n += all;
  }
  return n;
}

// Swaps two paths atomically, whatever they are (a file and a directory included): a scan sees
// either the old or the new model.onnx, never a missing one.
void Exchange(const fs::path& a, const fs::path& b) {
  if (renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) != 0) {
    throw std::runtime_error("renameat2(RENAME_EXCHANGE) " + a.string() + " " + b.string() + ": " +
                             std::strerror(errno));
  }
}

// Writes `text` to `path` as a deployer should: a temporary file renamed over it.
void WriteAtomically(const fs::path& path, const std::string& text) {
  const fs::path partial = path.parent_path() / ".partial";
  {
    std::ofstream out(partial, std::ios::binary);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + partial.string());
  }
  fs::rename(partial, path);
}

// A repository with one model "m", version 1 = yolov8n-dq (a symlink to the sample asset).
class Repository {
 public:
  Repository() : dir_(MakeTempDir("repo-poll")) {
    fs::create_directories(VersionDir());
    fs::create_symlink(Asset("models/yolov8n-dq.onnx"), ModelPath());
  }
  ~Repository() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const std::string& dir() const { return dir_; }
  fs::path VersionDir() const { return fs::path(dir_) / "m" / "1"; }
  fs::path ModelPath() const { return VersionDir() / "model.onnx"; }
  fs::path ConfigPath() const { return fs::path(dir_) / "m" / "config.json"; }
  void Config(const std::string& text) const { WriteAtomically(ConfigPath(), text); }

 private:
  std::string dir_;
};

// POST /v1/models/m/predict with bus.jpg.
HttpReply PredictM(int port, const std::string& query = "") {
  return Http(port, "POST", "/v1/models/m/predict" + query, BusJpeg(),
              {{"Content-Type", "image/jpeg"}}, 120);
}

// What identifies a detection result: class ids and boxes to the pixel (confidences and
// sub-pixel coordinates may move in the last digit between engine sessions).
std::string Summary(const HttpReply& r) {
  if (r.status != 200) return "HTTP " + std::to_string(r.status);
  const json body = json::parse(r.body, nullptr, false);
  if (!body.is_object() || !body.contains("detections")) return "no detections: " + r.body;
  std::ostringstream out;
  for (const auto& d : body["detections"]) {
    out << d.value("class_id", -1);
    for (const auto& c : d.value("box", json::array())) out << ' ' << std::lround(c.get<double>());
    out << ';';
  }
  return out.str();
}

// The value of one series in /metrics (0 when it is not there yet).
double MetricOf(int port, const std::string& series) {
  const HttpReply r = Http(port, "GET", "/metrics");
  const auto metrics = ParseMetrics(r.body);
  const auto it = metrics.find(series);
  return it == metrics.end() ? 0 : it->second;
}

std::string FailuresSeries(const std::string& version) {
  return "cvdeploy_model_load_failures_total{model=\"m\",version=\"" + version + "\"}";
}

// parameters.instances of GET /v2/models/m (-1 when it does not answer 200).
int Instances(int port) {
  const HttpReply r = Http(port, "GET", "/v2/models/m");
  const json body = json::parse(r.body, nullptr, false);
  if (r.status != 200 || !body.is_object() || !body.contains("parameters")) return -1;
  return body["parameters"].value("instances", -1);
}

// A client that predicts in a loop until stopped and remembers every answer that differs
// from `expected` (a status other than 200 or another result): there must be none while a
// model version is replaced, broken or reconfigured.
class Client {
 public:
  Client(int port, std::function<bool(const HttpReply&)> acceptable)
      : port_(port), acceptable_(std::move(acceptable)), thread_([this] { Run(); }) {}
  ~Client() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int answered() const { return answered_; }
  std::vector<std::string> Bad() {
    std::lock_guard<std::mutex> lock(mu_);
    return bad_;
  }

 private:
  void Run() {
    while (!stop_) {
      const HttpReply r = PredictM(port_);
      ++answered_;
      if (!acceptable_(r)) {
        std::lock_guard<std::mutex> lock(mu_);
        bad_.push_back(Describe(r));
      }
    }
  }
  int port_;
  std::function<bool(const HttpReply&)> acceptable_;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
  std::mutex mu_;
  std::vector<std::string> bad_;
  std::thread thread_;
};

void ExpectNoBadAnswers(Client& client) {
  client.Stop();
  const auto bad = client.Bad();
  EXPECT_GT(client.answered(), 0);
  EXPECT_TRUE(bad.empty()) << bad.size() << " of " << client.answered()
                           << " requests failed or changed, first: " << bad.front();
}

// ---------------------------------------------------------------------------------------

TEST(ServerRepositoryPoll, NonRegularModelFileIsABrokenVersionNotADeletedOne) {
  Repository repo;
  repo.Config(R"({"warmup": 0, "instances": 1, "threads": 1})");
  ServerProcess server({"--model-repository", repo.dir(), "--poll-interval", kPollInterval});
  const int port = server.port();
  ASSERT_TRUE(server.WaitReady(120)) << server.Stderr();
  const std::string expected = Summary(PredictM(port));
  ASSERT_NE(expected.rfind("HTTP", 0), 0u) << expected;
  Client client(port, [&](const HttpReply& r) {
    return r.status == 200 && HeaderOf(r, "x-model-version") == "1" && Summary(r) == expected;
  });

  const std::string model = repo.ModelPath().string();
  const fs::path swap = repo.VersionDir() / ".swap";
  // Not a version directory (the scan skips names that are not numbers); removed with the repo.
  const fs::path elsewhere = repo.VersionDir().parent_path() / "elsewhere";
  fs::create_directory(elsewhere);
  struct Case {
    std::string what;
    std::function<void()> make;  // creates the replacement at `swap`
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"a directory", [&] { fs::create_directory(swap); }, "not a regular file (a directory)"},
      {"a symlink to a directory", [&] { fs::create_symlink(elsewhere, swap); },
       "not a regular file (a symbolic link to a directory)"},
      {"a FIFO", [&] { ASSERT_EQ(mkfifo(swap.c_str(), 0600), 0); }, "not a regular file (a FIFO)"},
  };
  const std::string model_bytes = ReadFileText(Asset("models/yolov8n-dq.onnx"));
  const std::string loaded = "model 'm' version 1 ready in";
  double failures = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE("model.onnx replaced by " + c.what);
    c.make();
    Exchange(swap, repo.ModelPath());
    fs::remove_all(swap);  // what model.onnx was before
    ++failures;
    ASSERT_TRUE(WaitFor([&] { return MetricOf(port, FailuresSeries("1")) == failures; }, 30))
        << "the broken model.onnx was not counted: " << MetricOf(port, FailuresSeries("1")) << "\n"
        << Describe(PredictM(port)) << "\n"
        << server.Stderr();
    std::this_thread::sleep_for(kSeveralScans);
    const HttpReply reply = PredictM(port);
    EXPECT_EQ(reply.status, 200) << Describe(reply);
    EXPECT_EQ(Summary(reply), expected);
    EXPECT_EQ(HeaderOf(reply, "x-model-version"), "1");
    EXPECT_EQ(Http(port, "GET", "/v2/health/ready").status, 200);
    EXPECT_EQ(Http(port, "GET", "/v2/models/m/versions/1/ready").status, 200);
    // One warning line naming the path and the reason, however many scans saw it.
    const std::string log = server.Stderr();
    EXPECT_EQ(LinesWith(log, {"warning:", model + ": " + c.reason}), 1) << log;
    EXPECT_EQ(MetricOf(port, FailuresSeries("1")), failures) << "counted again by a later scan";

    // A regular file comes back (written under another name, then swapped in): loaded again.
    const int loads = LinesWith(log, {loaded});
    {
      std::ofstream out(swap, std::ios::binary);
      out.write(model_bytes.data(), static_cast<std::streamsize>(model_bytes.size()));
      ASSERT_TRUE(out.good());
    }
    Exchange(swap, repo.ModelPath());
    fs::remove_all(swap);
    EXPECT_TRUE(WaitFor([&] { return LinesWith(server.Stderr(), {loaded}) == loads + 1; }, 60))
        << server.Stderr();
    EXPECT_EQ(Summary(PredictM(port)), expected);
    EXPECT_EQ(MetricOf(port, "cvdeploy_model_ready{model=\"m\",version=\"1\"}"), 1.0);
  }
  ExpectNoBadAnswers(client);
  EXPECT_EQ(MetricOf(port, FailuresSeries("1")), failures);
}

TEST(ServerRepositoryPoll, ConfigChangesAreAppliedOrRejected) {
  Repository repo;
  repo.Config(R"({"warmup": 0, "instances": 1, "threads": 1})");
  ServerProcess server({"--model-repository", repo.dir(), "--poll-interval", kPollInterval});
  const int port = server.port();
  ASSERT_TRUE(server.WaitReady(120)) << server.Stderr();
  // conf is the observable key: 0.5 keeps fewer of bus.jpg's detections than the default 0.25.
  const std::string at_default = Summary(PredictM(port));
  const std::string at_half = Summary(PredictM(port, "?conf=0.5"));
  ASSERT_NE(at_default, at_half) << "bus.jpg must have detections between conf 0.25 and 0.5";
  ASSERT_EQ(Instances(port), 1);

  {
    // A valid change is applied by an atomic reload: no request fails meanwhile.
    Client client(port, [&](const HttpReply& r) {
      return r.status == 200 && (Summary(r) == at_default || Summary(r) == at_half);
    });
    repo.Config(R"({"warmup": 0, "instances": 2, "threads": 1, "conf": 0.5})");
    EXPECT_TRUE(WaitFor([&] { return Instances(port) == 2; }, 60)) << server.Stderr();
    EXPECT_EQ(Summary(PredictM(port)), at_half);
    EXPECT_TRUE(Contains(server.Stderr(), "config.json changed; reloading")) << server.Stderr();
    ExpectNoBadAnswers(client);
  }

  // Rejected configs: the old one keeps serving; one warning line and one count each.
  const std::string path = repo.ConfigPath().string();
  Client client(port, [&](const HttpReply& r) { return r.status == 200 && Summary(r) == at_half; });
  struct Case {
    std::string what, text, reason;
    bool fifo = false;  // config.json becomes a FIFO (the scan must not block on it)
  };
  const std::vector<Case> cases = {
      {"invalid JSON", "{\"instances\": 2,", "invalid JSON"},
      {"a FIFO", "", "not a regular file (a FIFO)", true},
      {"100,000-deep JSON", std::string(100000, '[') + std::string(100000, ']'),
       "JSON nested deeper than 64 levels"},
      {"an invalid value", R"({"warmup": 0, "instances": 0})",
       "\"instances\" must be an integer in [1, 64]"},
      {"an unknown key", R"({"warmup": 0, "instancez": 1})", "unknown key \"instancez\""},
  };
  double rejected = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE("config.json with " + c.what);
    if (c.fifo) {
      const fs::path fifo = repo.ConfigPath().parent_path() / ".fifo";
      ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
      fs::rename(fifo, repo.ConfigPath());
    } else {
      repo.Config(c.text);
    }
    ++rejected;
    ASSERT_TRUE(WaitFor([&] { return MetricOf(port, FailuresSeries("")) == rejected; }, 30))
        << MetricOf(port, FailuresSeries("")) << "\n"
        << server.Stderr();
    std::this_thread::sleep_for(kSeveralScans);
    EXPECT_EQ(LinesWith(server.Stderr(), {"warning:", path + ": " + c.reason}), 1)
        << server.Stderr();
    EXPECT_EQ(MetricOf(port, FailuresSeries("")), rejected) << "counted again by a later scan";
    EXPECT_EQ(Instances(port), 2);
    EXPECT_EQ(Summary(PredictM(port)), at_half);
    EXPECT_EQ(Http(port, "GET", "/v2/health/ready").status, 200);
  }

  {
    // Valid, but the model cannot load with it (fixed batch axis): a failed load of version
    // 1, counted once under it; version 1 keeps serving with its config.
    SCOPED_TRACE("config.json the model cannot load with");
    repo.Config(R"({"warmup": 0, "instances": 1, "threads": 1, "max_batch_size": 4})");
    ASSERT_TRUE(WaitFor([&] { return MetricOf(port, FailuresSeries("1")) == 1; }, 60))
        << server.Stderr();
    std::this_thread::sleep_for(kSeveralScans);
    EXPECT_EQ(MetricOf(port, FailuresSeries("1")), 1) << "retried by a later scan";
    EXPECT_EQ(
        LinesWith(server.Stderr(), {"model 'm' version 1 failed to load", "max_batch_size 4"}), 1)
        << server.Stderr();
    EXPECT_EQ(Instances(port), 2);
    EXPECT_EQ(Summary(PredictM(port)), at_half);
  }
  ExpectNoBadAnswers(client);
  EXPECT_EQ(MetricOf(port, FailuresSeries("")), rejected);

  // No config.json: the defaults (conf 0.25 again).
  fs::remove(repo.ConfigPath());
  EXPECT_TRUE(WaitFor([&] { return Summary(PredictM(port)) == at_default; }, 60))
      << Summary(PredictM(port)) << "\n"
      << server.Stderr();
  EXPECT_EQ(Http(port, "GET", "/v2/health/ready").status, 200);
}

}  // namespace
}  // namespace cvdeploy::testing
