// SPDX-License-Identifier: Apache-2.0
// `cvdeploy serve` over its lifetime, against real server processes, the sample models and
// model repositories built in temp dirs: readiness during warm-up, hot reload under load,
// a broken new version, explicit model control, queue limit, deadlines, slow and idle
// clients, SIGTERM with requests in flight, dynamic batching and startup errors.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
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
#include "support/process.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

const std::string& BusJpeg() {
  static const std::string bytes = ReadFileText(Asset("images/bus.jpg"));
  return bytes;
}

std::string ModelAsset(const std::string& file) { return Asset("models/" + file); }

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// A model repository DIR/<name>/<version>/model.onnx (+ DIR/<name>/config.json).
class Repository {
 public:
  Repository() : dir_(MakeTempDir("repo")) {}
  ~Repository() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const std::string& dir() const { return dir_; }

  // Links `source` as version `version` of `name` (before the server starts).
  void Link(const std::string& name, int version, const std::string& source) const {
    const fs::path vdir = fs::path(dir_) / name / std::to_string(version);
    fs::create_directories(vdir);
    fs::create_symlink(source, vdir / "model.onnx");
  }
  // Publishes a version as a deployer should: written in full under a temporary name, then
  // renamed to model.onnx, so a scan never sees a partial file.
  void Publish(const std::string& name, int version, const std::string& bytes) const {
    const fs::path vdir = fs::path(dir_) / name / std::to_string(version);
    fs::create_directories(vdir);
    const fs::path partial = vdir / ".model.onnx.partial";
    {
      std::ofstream out(partial, std::ios::binary);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!out) throw std::runtime_error("cannot write " + partial.string());
    }
    fs::rename(partial, vdir / "model.onnx");
  }
  void Config(const std::string& name, const json& config) const {
    fs::create_directories(fs::path(dir_) / name);
    std::ofstream(fs::path(dir_) / name / "config.json") << config.dump();
  }

 private:
  std::string dir_;
};

// POST /v1/models/{model}/predict with bus.jpg.
HttpReply Predict(int port, const std::string& model = "m",
                  std::map<std::string, std::string> headers = {}) {
  headers["Content-Type"] = "image/jpeg";
  return Http(port, "POST", "/v1/models/" + model + "/predict", BusJpeg(), headers, 120);
}

std::string Describe(const HttpReply& r) {
  std::string text = "HTTP " + std::to_string(r.status);
  if (!r.error.empty()) text += " (" + r.error + ")";
  return text + ": " + r.body.substr(0, 400);
}

json BodyJson(const HttpReply& r) { return json::parse(r.body, nullptr, false); }

std::string Header(const HttpReply& r, const std::string& lower_name) {
  auto it = r.headers.find(lower_name);
  return it == r.headers.end() ? "" : it->second;
}

// The reason of a {"error": reason} answer, "" when the body is not one.
std::string ErrorReason(const HttpReply& r) {
  const json body = BodyJson(r);
  if (!body.is_object() || !body.contains("error") || !body["error"].is_string()) return "";
  return body["error"].get<std::string>();
}

// Runs request(i) for i in [0, n) on n threads at once; the replies in index order.
std::vector<HttpReply> Concurrently(int n, const std::function<HttpReply(int)>& request) {
  std::vector<HttpReply> replies(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] { replies[static_cast<size_t>(i)] = request(i); });
  }
  for (auto& t : threads) t.join();
  return replies;
}

// The value of one series (`name{labels}` exactly as rendered) in the server's /metrics.
std::optional<double> Metric(int port, const std::string& series) {
  const HttpReply r = Http(port, "GET", "/metrics");
  if (r.status != 200) return std::nullopt;
  for (const auto& line : Lines(r.body)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return std::nullopt;
}

std::string Series(const std::string& name, const std::string& model, const std::string& version) {
  return name + "{model=\"" + model + "\",version=\"" + version + "\"}";
}

// GET /v2/models/{model} "versions", or an empty list when it does not answer 200.
std::vector<std::string> ServedVersions(int port, const std::string& model) {
  const HttpReply r = Http(port, "GET", "/v2/models/" + model);
  const json body = BodyJson(r);
  if (r.status != 200 || !body.is_object() || !body.contains("versions")) return {};
  return body["versions"].get<std::vector<std::string>>();
}

// A complete image request for a raw socket; the server closes the connection after it.
std::string RawPredictRequest(const std::string& model) {
  return "POST /v1/models/" + model +
         "/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
         "Content-Length: " +
         std::to_string(BusJpeg().size()) + "\r\nConnection: close\r\n\r\n" + BusJpeg();
}

// Whether `fd` is still open: no data, EOF or error is pending on it right now.
bool StillOpen(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 0;
}

// `cvdeploy serve ARGS` that is expected to exit by itself (bounded, so a hang fails).
ProcessResult RunServe(const std::vector<std::string>& args) {
  std::vector<std::string> full = {"serve", "--host", "127.0.0.1"};
  full.insert(full.end(), args.begin(), args.end());
  return RunProcess(CliBinary(), full, "", 120);
}

// Exactly one non-empty stderr line, naming `names`.
void ExpectOneLineNaming(const std::vector<std::string>& args, const ProcessResult& run,
                         const std::string& names) {
  const std::string what = DescribeRun(args, run);
  const auto lines = Lines(run.err);
  EXPECT_EQ(lines.size(), 1u) << what;
  EXPECT_TRUE(Contains(run.err, names)) << "stderr does not name " << names << ": " << what;
  for (const char* bad : {"terminate", "what()", "Aborted", "core dumped"}) {
    EXPECT_FALSE(Contains(run.err, bad)) << what;
  }
}

// ---------------------------------------------------------------------------------------

// Live at once; neither the server nor the model is ready while the model warms up, and an
// image request is refused with 503 meanwhile; all of it turns ready after the warm-up.
TEST(ServerLifecycle, NotReadyUntilWarmUpCompletes) {
  Repository repo;
  repo.Link("m", 1, ModelAsset("yolov8n-dq.onnx"));
  // Fifteen full inferences on one engine thread: seconds of warm-up on any machine.
  repo.Config("m", {{"warmup", 15}, {"instances", 1}, {"threads", 1}});
  ServerProcess server({"--model-repository", repo.dir()});
  const int port = server.port();

  const HttpReply live = Http(port, "GET", "/v2/health/live");
  const HttpReply ready = Http(port, "GET", "/v2/health/ready");
  const HttpReply model_ready = Http(port, "GET", "/v2/models/m/ready");
  const HttpReply predict = Predict(port);
  EXPECT_EQ(live.status, 200) << Describe(live);
  EXPECT_EQ(ready.status, 400) << Describe(ready);
  EXPECT_EQ(BodyJson(ready).value("ready", true), false) << Describe(ready);
  EXPECT_EQ(model_ready.status, 400) << Describe(model_ready);
  EXPECT_EQ(BodyJson(model_ready).value("ready", true), false) << Describe(model_ready);
  EXPECT_EQ(predict.status, 503) << Describe(predict);
  EXPECT_TRUE(Contains(ErrorReason(predict), "not ready")) << Describe(predict);

  ASSERT_TRUE(server.WaitReady(180)) << server.Stderr();
  const HttpReply model_ready_after = Http(port, "GET", "/v2/models/m/ready");
  EXPECT_EQ(model_ready_after.status, 200) << Describe(model_ready_after);
  const HttpReply predict_after = Predict(port);
  EXPECT_EQ(predict_after.status, 200) << Describe(predict_after);
  EXPECT_EQ(Header(predict_after, "x-model-version"), "1");
  EXPECT_TRUE(Contains(server.Stderr(), "model 'm' version 1 ready in")) << server.Stderr();
}

// A new version published while clients stream requests replaces the old one without a
// single failed request; then a broken version 3 fails to load and version 2 keeps serving.
TEST(ServerLifecycle, HotReloadUnderLoadThenBrokenVersionKeepsServing) {
  Repository repo;
  repo.Link("m", 1, ModelAsset("yolov8n-dq.onnx"));
  repo.Config("m", {{"warmup", 1}, {"instances", 2}, {"threads", 1}});
  ServerProcess server({"--model-repository", repo.dir(), "--poll-interval", "0.2"});
  const int port = server.port();
  ASSERT_TRUE(server.WaitReady(120)) << server.Stderr();

  struct Answer {
    Clock::time_point sent;
    HttpReply reply;
  };
  std::mutex mu;
  std::vector<Answer> answers;
  std::atomic<bool> stop{false};
  auto answered = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return answers.size();
  };
  auto answered_by = [&](const std::string& version, size_t from) {
    std::lock_guard<std::mutex> lock(mu);
    return static_cast<size_t>(std::count_if(
        answers.begin() + static_cast<long>(std::min(from, answers.size())), answers.end(),
        [&](const Answer& a) { return Header(a.reply, "x-model-version") == version; }));
  };
  std::vector<std::thread> clients;
  for (int c = 0; c < 3; ++c) {
    clients.emplace_back([&] {
      while (!stop) {
        const auto sent = Clock::now();
        HttpReply reply = Predict(port);
        std::lock_guard<std::mutex> lock(mu);
        answers.push_back({sent, std::move(reply)});
      }
    });
  }
  struct StopClients {
    std::atomic<bool>& stop;
    std::vector<std::thread>& clients;
    ~StopClients() {
      stop = true;
      for (auto& t : clients) t.join();
    }
  } stop_clients{stop, clients};

  EXPECT_TRUE(WaitFor([&] { return answered_by("1", 0) >= 3; }, 60));
  repo.Publish("m", 2, ReadFileText(ModelAsset("yolo11n-dq.onnx")));
  const bool switched =
      WaitFor([&] { return ServedVersions(port, "m") == std::vector<std::string>{"2"}; }, 60);
  const auto switched_at = Clock::now();
  ASSERT_TRUE(switched) << "GET /v2/models/m never showed only version 2: " << server.Stderr();
  const size_t mark = answered();
  EXPECT_TRUE(WaitFor([&] { return answered_by("2", mark) >= 6; }, 60));

  // Version 3 is not a model at all.
  repo.Publish("m", 3, "this is a text file, not an ONNX model\n");
  EXPECT_TRUE(
      WaitFor([&] { return Contains(server.Stderr(), "model 'm' version 3 failed to load"); }, 60))
      << server.Stderr();
  const size_t mark3 = answered();
  EXPECT_TRUE(WaitFor([&] { return answered_by("2", mark3) >= 6; }, 60));
  // Several more scans pass: the broken file is not retried (the failure counts once).
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  stop = true;
  for (auto& t : clients) t.join();
  clients.clear();

  size_t failed = 0, on_v1 = 0, on_v2 = 0;
  for (const auto& a : answers) {
    const std::string version = Header(a.reply, "x-model-version");
    if (a.reply.status != 200) {
      if (++failed <= 5)
        ADD_FAILURE() << "a request failed during the reload: " << Describe(a.reply);
      continue;
    }
    on_v1 += version == "1";
    on_v2 += version == "2";
    EXPECT_TRUE(version == "1" || version == "2") << "X-Model-Version '" << version << "'";
    // Once only version 2 is listed, every new request is served by it.
    if (a.sent > switched_at) {
      EXPECT_EQ(version, "2");
    }
  }
  EXPECT_EQ(failed, 0u) << "of " << answers.size() << " requests";
  EXPECT_GE(on_v1, 3u);
  EXPECT_GE(on_v2, 12u);

  const std::string log = server.Stderr();
  EXPECT_TRUE(Contains(log, "unloading model 'm' version 1")) << log;
  EXPECT_EQ(ServedVersions(port, "m"), std::vector<std::string>{"2"});
  const HttpReply ready3 = Http(port, "GET", "/v2/models/m/versions/3/ready");
  EXPECT_EQ(ready3.status, 400) << Describe(ready3);
  EXPECT_TRUE(Contains(BodyJson(ready3).value("reason", ""), "failed to load")) << Describe(ready3);
  EXPECT_EQ(Http(port, "GET", "/v2/health/ready").status, 200);
  EXPECT_EQ(Metric(port, Series("cvdeploy_model_load_failures_total", "m", "3")), 1.0);
  // Version 1's series leave /metrics once its last request is done; version 2's stay.
  EXPECT_TRUE(WaitFor(
      [&] {
        return !Metric(port, Series("cvdeploy_model_ready", "m", "1")) &&
               !Metric(port, Series("cvdeploy_inference_request_success_total", "m", "1"));
      },
      20))
      << Http(port, "GET", "/metrics").body;
  EXPECT_EQ(Metric(port, Series("cvdeploy_model_ready", "m", "2")), 1.0);
  EXPECT_GE(Metric(port, Series("cvdeploy_inference_request_success_total", "m", "2")), 12.0);
}

// Polling: a model whose directory is deleted is unloaded; the server stays ready and the
// model's requests are answered 404 while the other models keep serving.
TEST(ServerLifecycle, ModelRemovedFromRepositoryIsUnloaded) {
  Repository repo;
  for (const char* name : {"m", "k"}) {
    repo.Link(name, 1, ModelAsset("yolov8n-dq.onnx"));
    repo.Config(name, {{"warmup", 0}, {"instances", 1}});
  }
  ServerProcess server({"--model-repository", repo.dir(), "--poll-interval", "0.2"});
  const int port = server.port();
  ASSERT_TRUE(server.WaitReady(60)) << server.Stderr();
  ASSERT_EQ(Predict(port, "k").status, 200);

  fs::remove_all(fs::path(repo.dir()) / "k");
  EXPECT_TRUE(WaitFor([&] { return Predict(port, "k").status == 404; }, 30))
      << Describe(Predict(port, "k")) << server.Stderr();
  EXPECT_TRUE(Contains(server.Stderr(), "unloading model 'k' version 1")) << server.Stderr();
  // Several scans later the server is still ready, and the other model still serves.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  const HttpReply ready = Http(port, "GET", "/v2/health/ready");
  EXPECT_EQ(ready.status, 200) << Describe(ready);
  EXPECT_EQ(Http(port, "GET", "/v2/models/k/ready").status, 404);
  EXPECT_EQ(Predict(port, "m").status, 200);
  // The removed model's per-version series are gone; the other model's stay.
  EXPECT_TRUE(WaitFor(
      [&] {
        return !Metric(port, Series("cvdeploy_model_ready", "k", "1")) &&
               !Metric(port, Series("cvdeploy_inference_request_success_total", "k", "1"));
      },
      20))
      << Http(port, "GET", "/metrics").body;
  EXPECT_EQ(Metric(port, Series("cvdeploy_model_ready", "m", "1")), 1.0);
  EXPECT_EQ(Metric(port, Series("cvdeploy_inference_request_success_total", "m", "1")), 1.0);

  // A directory that is still being deployed (no version yet) does not affect readiness
  // either; once its version lands, it is served.
  fs::create_directories(fs::path(repo.dir()) / "n");
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(Http(port, "GET", "/v2/health/ready").status, 200);
  repo.Config("n", {{"warmup", 0}, {"instances", 1}});
  repo.Publish("n", 1, ReadFileText(ModelAsset("yolo11n-dq.onnx")));
  EXPECT_TRUE(WaitFor([&] { return Predict(port, "n").status == 200; }, 60)) << server.Stderr();
}

// --model-control explicit: nothing loads until asked; load, unload and unknown models.
TEST(ServerLifecycle, ExplicitModelControl) {
  Repository repo;
  repo.Link("m", 1, ModelAsset("yolov8n-dq.onnx"));
  repo.Config("m", {{"warmup", 1}, {"instances", 1}});
  ServerProcess server({"--model-repository", repo.dir(), "--model-control", "explicit"});
  const int port = server.port();
  ASSERT_TRUE(server.WaitReady(60)) << server.Stderr();

  // The index entries of model m.
  auto index_of_m = [&] {
    const HttpReply r = Http(port, "GET", "/v2/repository/index");
    EXPECT_EQ(r.status, 200) << Describe(r);
    std::vector<json> out;
    const json body = BodyJson(r);
    EXPECT_TRUE(body.is_array()) << Describe(r);
    if (!body.is_array()) return out;
    for (const auto& e : body) {
      if (e.value("name", "") == "m") out.push_back(e);
    }
    return out;
  };
  auto entries = index_of_m();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].value("state", ""), "UNAVAILABLE") << entries[0].dump();
  EXPECT_EQ(entries[0].value("reason", ""), "not loaded") << entries[0].dump();
  EXPECT_EQ(Predict(port).status, 404);
  EXPECT_FALSE(Contains(server.Stderr(), "loading model")) << server.Stderr();

  const HttpReply load = Http(port, "POST", "/v2/repository/models/m/load", "", {}, 120);
  ASSERT_EQ(load.status, 200) << Describe(load) << server.Stderr();
  const HttpReply predict = Predict(port);
  EXPECT_EQ(predict.status, 200) << Describe(predict);
  EXPECT_EQ(Header(predict, "x-model-version"), "1");
  entries = index_of_m();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].value("state", ""), "READY") << entries[0].dump();
  EXPECT_EQ(entries[0].value("version", ""), "1") << entries[0].dump();

  const HttpReply unload = Http(port, "POST", "/v2/repository/models/m/unload", "", {}, 120);
  ASSERT_EQ(unload.status, 200) << Describe(unload);
  const HttpReply after = Predict(port);
  EXPECT_EQ(after.status, 404) << Describe(after);
  entries = index_of_m();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].value("state", ""), "UNAVAILABLE") << entries[0].dump();

  const HttpReply unknown = Http(port, "POST", "/v2/repository/models/nope/load", "", {}, 120);
  EXPECT_EQ(unknown.status, 404) << Describe(unknown);
  EXPECT_FALSE(ErrorReason(unknown).empty()) << Describe(unknown);

  // Loading again after an unload works.
  const HttpReply reload = Http(port, "POST", "/v2/repository/models/m/load", "", {}, 120);
  EXPECT_EQ(reload.status, 200) << Describe(reload);
  EXPECT_EQ(Predict(port).status, 200);
}

// A full queue answers 503 with Retry-After and a reason; what fits is served.
TEST(ServerLifecycle, FullQueueAnswers503WithRetryAfter) {
  Repository repo;
  repo.Link("m", 1, ModelAsset("yolov8n-dq.onnx"));
  repo.Config("m", {{"warmup", 1}, {"instances", 1}, {"threads", 1}, {"max_queue_size", 1}});
  ServerProcess server({"--model-repository", repo.dir()});
  const int port = server.port();
  ASSERT_TRUE(server.WaitReady(60)) << server.Stderr();

  const auto replies = Concurrently(8, [&](int) { return Predict(port); });
  int ok = 0, busy = 0;
  for (const auto& r : replies) {
    if (r.status == 200) {
      ++ok;
    } else if (r.status == 503) {
      ++busy;
      EXPECT_FALSE(Header(r, "retry-after").empty()) << Describe(r);
      EXPECT_TRUE(Contains(ErrorReason(r), "queue")) << Describe(r);
    } else {
      ADD_FAILURE() << "expected 200 or 503: " << Describe(r);
    }
  }
  EXPECT_GE(busy, 1);
  EXPECT_GE(ok, 1);
  EXPECT_EQ(ok + busy, 8);
}

// Requests whose deadline passes in the queue are answered 504 and never run; a malformed
// X-Request-Timeout-Ms is a 400.
TEST(ServerLifecycle, ExpiredDeadlineAnswers504WithoutRunning) {
  Repository repo;
  repo.Link("m", 1, ModelAsset("yolov8n-dq.onnx"));
  repo.Config("m", {{"warmup", 1}, {"instances", 1}, {"threads", 1}});
  ServerProcess server({"--model-repository", repo.dir()});
  const int port = server.port();
  ASSERT_TRUE(server.WaitReady(60)) << server.Stderr();
  const std::string inferred = Series("cvdeploy_inference_count_total", "m", "1");
  const auto before = Metric(port, inferred);
  ASSERT_TRUE(before.has_value());

  HttpReply slow;
  std::thread slow_client([&] { slow = Predict(port); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto burst = Concurrently(6, [&](int) {
    return Predict(port, "m", {{"X-Request-Timeout-Ms", "1"}});
  });
  slow_client.join();
  EXPECT_EQ(slow.status, 200) << Describe(slow);
  int ok = 1, expired = 0;
  for (const auto& r : burst) {
    if (r.status == 200) {
      ++ok;
    } else if (r.status == 504) {
      ++expired;
      EXPECT_TRUE(Contains(ErrorReason(r), "not executed")) << Describe(r);
    } else {
      ADD_FAILURE() << "expected 200 or 504: " << Describe(r);
    }
  }
  EXPECT_GE(expired, 1);
  const auto after = Metric(port, inferred);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(*after - *before, ok) << "inferences counted vs. requests answered 200";

  for (const std::string bad : {"abc", "0", "-5", "1.5", ""}) {
    const HttpReply r = Predict(port, "m", {{"X-Request-Timeout-Ms", bad}});
    EXPECT_EQ(r.status, 400) << "X-Request-Timeout-Ms '" << bad << "': " << Describe(r);
    EXPECT_TRUE(Contains(ErrorReason(r), "X-Request-Timeout-Ms")) << Describe(r);
  }
}

// A client that stalls mid-request is dropped after --read-timeout and blocks nobody; an
// idle keep-alive connection is closed after --idle-timeout.
TEST(ServerLifecycle, SlowAndIdleClientsAreDropped) {
  Repository repo;
  repo.Link("m", 1, ModelAsset("yolov8n-dq.onnx"));
  repo.Config("m", {{"warmup", 1}, {"instances", 1}});
  ServerProcess server({"--model-repository", repo.dir(), "--read-timeout", "1", "--idle-timeout",
                        "1", "--io-threads", "1"});
  const int port = server.port();
  ASSERT_TRUE(server.WaitReady(60)) << server.Stderr();

  std::vector<int> slow;
  for (int i = 0; i < 4; ++i) {
    const int fd = ConnectRaw(port);
    ASSERT_GE(fd, 0);
    slow.push_back(fd);
    ASSERT_TRUE(SendRaw(fd, "POST /v1/models/m/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nConte"));
  }
  const auto stalled_at = Clock::now();
  // On the one I/O thread, with four stalled requests: a request is still answered before
  // any of them times out.
  const HttpReply health = Http(port, "GET", "/v2/health/ready", "", {}, 10);
  EXPECT_EQ(health.status, 200) << Describe(health);
  for (int fd : slow) EXPECT_TRUE(StillOpen(fd)) << "closed before the read timeout";
  const HttpReply predict = Predict(port);
  EXPECT_EQ(predict.status, 200) << Describe(predict);
  for (int fd : slow) {
    EXPECT_TRUE(WaitClosed(fd, 10)) << "a stalled request was not dropped";
    close(fd);
  }
  EXPECT_GE(SecondsSince(stalled_at), 0.9) << "dropped before --read-timeout passed";

  // A client that keeps dribbling header bytes is dropped too: the read timeout bounds the
  // whole request, not the gap between bytes.
  {
    const int fd = ConnectRaw(port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendRaw(fd, "GET /v2/health/live HTTP/1.1\r\nX-Slow: "));
    const auto started = Clock::now();
    bool dropped = false;
    while (!dropped && SecondsSince(started) < 10) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      dropped = !StillOpen(fd) || !SendRaw(fd, "a");
    }
    EXPECT_TRUE(dropped) << "a client sending a byte every 100 ms was never dropped";
    EXPECT_GE(SecondsSince(started), 0.9) << "dropped before --read-timeout passed";
    close(fd);
  }

  // Keep-alive: two requests on one connection, then silence.
  const int fd = ConnectRaw(port);
  ASSERT_GE(fd, 0);
  const std::string get = "GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_TRUE(SendRaw(fd, get));
  EXPECT_EQ(ReadRaw(fd, 0.3).rfind("HTTP/1.1 200", 0), 0u);
  ASSERT_TRUE(SendRaw(fd, get));
  const auto answered_at = Clock::now();
  EXPECT_EQ(ReadRaw(fd, 0.3).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_TRUE(WaitClosed(fd, 10)) << "an idle keep-alive connection was not closed";
  EXPECT_GE(SecondsSince(answered_at), 0.9) << "closed before --idle-timeout passed";
  close(fd);
}

// SIGTERM: requests already with the server are all answered 200, new connections are
// refused, and the process exits 0 after saying so.
TEST(ServerLifecycle, SigtermCompletesInFlightRequests) {
  Repository repo;
  repo.Link("m", 1, ModelAsset("yolov8n-dq.onnx"));
  repo.Config("m", {{"warmup", 1}, {"instances", 1}, {"threads", 1}});
  ServerProcess server({"--model-repository", repo.dir(), "--drain-timeout", "60"});
  const int port = server.port();
  ASSERT_TRUE(server.WaitReady(60)) << server.Stderr();

  // Four requests sent in full; one engine instance runs them one after another.
  std::vector<int> fds;
  for (int i = 0; i < 4; ++i) {
    const int fd = ConnectRaw(port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendRaw(fd, RawPredictRequest("m")));
    fds.push_back(fd);
  }
  // Wait until all four are with the scheduler: one running, the others queued or already
  // answered (queued + answered >= 3), some still queued.
  EXPECT_TRUE(WaitFor(
      [&] {
        const auto pending = Metric(port, Series("cvdeploy_pending_requests", "m", "1"));
        const auto done =
            Metric(port, Series("cvdeploy_inference_request_success_total", "m", "1"));
        return pending && done && *pending >= 1 && *pending + *done >= 3;
      },
      30))
      << "the requests never queued up";
  server.Signal(SIGTERM);

  EXPECT_TRUE(WaitFor(
      [&] {
        const int probe = ConnectRaw(port);
        if (probe < 0) return true;
        close(probe);
        return false;
      },
      10))
      << "new connections are still accepted after SIGTERM";
  for (int fd : fds) {
    const std::string response = ReadRaw(fd, 60);
    close(fd);
    EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response.substr(0, 300);
    EXPECT_TRUE(Contains(response, "\"detections\"")) << response.substr(0, 300);
  }
  EXPECT_EQ(server.Wait(60), 0) << server.Stderr();
  const std::string log = server.Stderr();
  EXPECT_TRUE(Contains(log, "draining")) << log;
  EXPECT_TRUE(Contains(log, "stopped")) << log;
}

// The detections of two answers agree (up to last-digit rounding of the printed values).
void ExpectSameDetections(const json& got, const json& want) {
  ASSERT_TRUE(got.is_array());
  ASSERT_EQ(got.size(), want.size()) << got.dump() << "\nvs\n" << want.dump();
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i]["class_id"], want[i]["class_id"]) << i;
    EXPECT_NEAR(got[i]["confidence"].get<double>(), want[i]["confidence"].get<double>(), 2e-4) << i;
    for (const char* k : {"x1", "y1", "x2", "y2"}) {
      EXPECT_NEAR(got[i]["box"][k].get<double>(), want[i]["box"][k].get<double>(), 0.2)
          << i << " " << k;
    }
  }
}

// Dynamic batching: concurrent requests share engine calls and get the same detections as
// a batch-1 model.
TEST(ServerLifecycle, DynamicBatchingGroupsConcurrentRequests) {
  const std::string work = MakeTempDir("dynamic");
  const std::string dynamic = work + "/yolov8n-dynamic.onnx";
  const std::vector<std::string> convert = {"convert",  "--model", ModelAsset("yolov8n-dq.onnx"),
                                            "--output", dynamic,   "--dynamic-batch"};
  const ProcessResult converted = RunCli(convert);
  ASSERT_EQ(converted.exit_code, 0) << DescribeRun(convert, converted);

  Repository repo;
  repo.Link("b", 1, dynamic);
  repo.Config(
      "b", {{"max_batch_size", 4}, {"max_queue_delay_us", 50000}, {"instances", 1}, {"warmup", 1}});
  repo.Link("ref", 1, ModelAsset("yolov8n-dq.onnx"));
  repo.Config("ref", {{"warmup", 1}, {"instances", 1}});
  ServerProcess server({"--model-repository", repo.dir()});
  const int port = server.port();
  ASSERT_TRUE(server.WaitReady(120)) << server.Stderr();

  const HttpReply reference = Predict(port, "ref");
  ASSERT_EQ(reference.status, 200) << Describe(reference);
  const json want = BodyJson(reference)["detections"];
  ASSERT_GE(want.size(), 4u) << reference.body;

  const auto replies = Concurrently(8, [&](int) { return Predict(port, "b"); });
  for (const auto& r : replies) {
    ASSERT_EQ(r.status, 200) << Describe(r);
    ExpectSameDetections(BodyJson(r)["detections"], want);
  }
  const auto inputs = Metric(port, Series("cvdeploy_inference_count_total", "b", "1"));
  const auto calls = Metric(port, Series("cvdeploy_inference_exec_count_total", "b", "1"));
  ASSERT_TRUE(inputs && calls);
  EXPECT_EQ(*inputs, 8);
  EXPECT_GT(*inputs / *calls, 1.0) << *inputs << " inputs in " << *calls << " engine calls";

  // The access log records each request's batch size.
  std::vector<json> logged;
  auto collect = [&] {
    logged.clear();
    for (const auto& line : Lines(server.Stdout())) {
      const json record = json::parse(line, nullptr, false);
      if (record.is_object() && record.value("path", "") == "/v1/models/b/predict") {
        logged.push_back(record);
      }
    }
    return logged.size() >= 8;
  };
  ASSERT_TRUE(WaitFor(collect, 10)) << server.Stdout();
  int largest = 0;
  for (const auto& record : logged) {
    EXPECT_EQ(record.value("status", 0), 200) << record.dump();
    EXPECT_GE(record.value("batch_size", 0), 1) << record.dump();
    largest = std::max(largest, record.value("batch_size", 0));
  }
  EXPECT_GT(largest, 1);
  EXPECT_LE(largest, 4);
  std::error_code ec;
  fs::remove_all(work, ec);
}

// max_batch_size on a model with a fixed batch axis of 1 fails its load, naming the fix;
// with the default --exit-on-error the server exits 3.
TEST(ServerLifecycle, BatchingConfigOnFixedBatchModelFailsToLoad) {
  Repository repo;
  repo.Link("m", 1, ModelAsset("yolov8n-dq.onnx"));
  repo.Config("m", {{"max_batch_size", 4}, {"warmup", 1}});
  const std::vector<std::string> args = {"--port", "0", "--model-repository", repo.dir()};
  const ProcessResult run = RunServe(args);
  const std::string what = DescribeRun(args, run);
  EXPECT_EQ(run.exit_code, 3) << what;
  bool named = false;
  for (const auto& line : Lines(run.err)) {
    if (Contains(line, "max_batch_size 4") && Contains(line, "--dynamic-batch") &&
        Contains(line, "version 1")) {
      named = true;
    }
  }
  EXPECT_TRUE(named) << "no stderr line names the model, max_batch_size and --dynamic-batch: "
                     << what;
  EXPECT_FALSE(Contains(run.err, "terminate")) << what;
}

// Errors before serving: the documented exit code and one line with the reason.
TEST(ServerLifecycle, StartupErrors) {
  {
    const std::vector<std::string> args = {"--port", "0", "--model", "/nonexistent/missing.onnx"};
    const ProcessResult run = RunServe(args);
    EXPECT_EQ(run.exit_code, 3) << DescribeRun(args, run);
    ExpectOneLineNaming(args, run, "missing.onnx");
  }
  {
    const std::vector<std::string> args = {"--port", "0", "--model-repository", "/nonexistent"};
    const ProcessResult run = RunServe(args);
    EXPECT_EQ(run.exit_code, 3) << DescribeRun(args, run);
    ExpectOneLineNaming(args, run, "/nonexistent");
  }
  Repository repo;
  repo.Link("m", 1, ModelAsset("yolov8n-dq.onnx"));
  {
    const std::vector<std::string> args = {
        "--port", "0", "--model-repository", repo.dir(), "--model-control", "poll"};
    const ProcessResult run = RunServe(args);
    EXPECT_EQ(run.exit_code, 2) << DescribeRun(args, run);
    ExpectOneLineNaming(args, run, "--poll-interval");
  }
  {
    const std::vector<std::string> args = {"--port", "0"};
    const ProcessResult run = RunServe(args);
    EXPECT_EQ(run.exit_code, 2) << DescribeRun(args, run);
    ExpectOneLineNaming(args, run, "--model");
  }
  {
    // Another socket listens on the port.
    const int busy = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(busy, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ASSERT_EQ(bind(busy, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(listen(busy, 4), 0);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(getsockname(busy, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    const std::string port = std::to_string(ntohs(addr.sin_port));
    const std::vector<std::string> args = {"--port", port, "--model",
                                           ModelAsset("yolov8n-dq.onnx")};
    const ProcessResult run = RunServe(args);
    close(busy);
    // A port in use is a runtime failure (kUnavailable, exit 4), not a usage error.
    EXPECT_EQ(run.exit_code, 4) << DescribeRun(args, run);
    EXPECT_NE(run.exit_code, 124) << "the server ran instead of failing: "
                                  << DescribeRun(args, run);
    ExpectOneLineNaming(args, run, "127.0.0.1:" + port);
  }
}

TEST(ServerLifecycle, ConnectionsBeyondTheLimitAre503) {
  Repository repo;
  repo.Link("m", 1, ModelAsset("yolov8n-dq.onnx"));
  repo.Config("m", {{"warmup", 1}, {"instances", 1}});
  ServerProcess server({"--model-repository", repo.dir(), "--max-connections", "2"});
  const int port = server.port();
  ASSERT_TRUE(server.WaitReady(60)) << server.Stderr();
  // Two keep-alive connections, each proven accepted by an answered request.
  std::vector<int> held;
  for (int i = 0; i < 2; ++i) {
    const int fd = ConnectRaw(port);
    ASSERT_GE(fd, 0);
    held.push_back(fd);
    ASSERT_TRUE(SendRaw(fd, "GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    const std::string answer = ReadRaw(fd, 1.0);
    ASSERT_TRUE(Contains(answer, "HTTP/1.1 200")) << answer;
  }
  // A third one is answered 503 with a reason and closed.
  const int extra = ConnectRaw(port);
  ASSERT_GE(extra, 0);
  SendRaw(extra, "GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  const std::string refused = ReadRaw(extra, 5.0);
  EXPECT_TRUE(Contains(refused, "HTTP/1.1 503")) << refused;
  EXPECT_TRUE(Contains(refused, "too many connections")) << refused;
  close(extra);
  // Once one is released, a new connection is served again.
  close(held[0]);
  EXPECT_TRUE(
      WaitFor([&] { return Http(port, "GET", "/v2/health/live", "", {}, 5).status == 200; }, 10));
  close(held[1]);
}

}  // namespace
}  // namespace cvdeploy::testing
