// SPDX-License-Identifier: Apache-2.0
// Protected models served by real server processes: an encrypted, signed package with a golden
// set serves the same predictions as the plain model under --require-signed; every kind of
// tampering (a flipped byte in the manifest, the ciphertext or the signature, truncation, an
// untrusted signer, a wrong data key, an unsigned package, a plain model.onnx) is a broken
// version named by its check while the version already served keeps serving; a golden set
// recorded with another model keeps a version from ever becoming ready; no plaintext of the
// model reaches the repository, the working directory or $TMPDIR; the process is
// non-dumpable, seen from outside (its /proc files belong to root, not to its user).

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/assets.h"
#include "support/model_variants.h"
#include "support/process.h"
#include "support/server_api.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kNobody = 65534;

std::string ReadBytes(const std::string& path) { return ReadFileText(path); }

void WriteBytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

void Cli(const std::vector<std::string>& args) {
  const ProcessResult r = RunCli(args);
  ASSERT_EQ(r.exit_code, 0) << DescribeRun(args, r);
}

// Gives a tree to `uid` (when the test runs as root and starts the server as another user).
void Chown(const std::string& path, int uid) {
  if (uid < 0) return;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(path, ec); it != fs::end(it); ++it) {
    ASSERT_EQ(lchown(it->path().c_str(), uid, uid), 0) << it->path();
  }
  ASSERT_EQ(lchown(path.c_str(), uid, uid), 0) << path;
}

std::optional<double> Metric(int port, const std::string& series) {
  const HttpReply r = Http(port, "GET", "/metrics");
  if (r.status != 200) return std::nullopt;
  const auto metrics = ParseMetrics(r.body);
  const auto it = metrics.find(series);
  if (it == metrics.end()) return std::nullopt;
  return it->second;
}

std::string LoadFailures(const std::string& model, const std::string& version) {
  return "cvdeploy_model_load_failures_total{model=\"" + model + "\",version=\"" + version + "\"}";
}

// POST an image to /v1/models/MODEL/predict: the reply.
HttpReply Predict(int port, const std::string& model, const std::string& image) {
  return Http(port, "POST", "/v1/models/" + model + "/predict", ReadBytes(Asset(image)),
              {{"Content-Type", "image/jpeg"}});
}

// The detections of a predict reply, as compared between servers.
json Detections(const HttpReply& r) {
  const json body = json::parse(r.body, nullptr, false);
  if (!body.is_object() || !body.contains("detections")) return json();
  return body["detections"];
}

// Keys, a trusted-keys directory, an encrypted+signed package with a golden set, made once.
class ProtectedModels : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("protected"));
    const std::string d = *dir_;
    Cli({"keygen", "--kind", "signing", "--out", d + "/signer"});
    Cli({"keygen", "--kind", "signing", "--out", d + "/rogue"});
    Cli({"keygen", "--kind", "data", "--out", d + "/keys"});
    Cli({"keygen", "--kind", "data", "--out", d + "/other-keys"});
    fs::create_directories(d + "/trusted");
    fs::copy_file(d + "/signer/signing.pub", d + "/trusted/signer.pub");
    fs::create_directories(d + "/golden-images");
    for (const char* img : {"bus.jpg", "zidane.jpg"}) {
      fs::copy_file(Asset(std::string("images/") + img), d + "/golden-images/" + img);
    }
    const std::string model = Asset("models/yolov8n-dq.onnx");
    Cli({"pack", "--model", model, "--out", d + "/good.cvdm", "--encrypt-key", d + "/keys/data.key",
         "--sign-key", d + "/signer/signing.key", "--golden-images", d + "/golden-images", "--name",
         "m"});
    Cli({"pack", "--model", model, "--out", d + "/rogue.cvdm", "--encrypt-key",
         d + "/keys/data.key", "--sign-key", d + "/rogue/signing.key"});
    Cli({"pack", "--model", model, "--out", d + "/other-key.cvdm", "--encrypt-key",
         d + "/other-keys/data.key", "--sign-key", d + "/signer/signing.key"});
    Cli({"pack", "--model", model, "--out", d + "/unsigned.cvdm", "--encrypt-key",
         d + "/keys/data.key"});
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static const std::string& dir() { return *dir_; }
  static std::vector<std::string> ProtectionFlags() {
    return {"--trusted-keys", dir() + "/trusted", "--decrypt-key-file", dir() + "/keys/data.key",
            "--require-signed"};
  }

  static std::string* dir_;
};
std::string* ProtectedModels::dir_ = nullptr;

TEST_F(ProtectedModels, EncryptedSignedPackageServesThePlainModelsPredictions) {
  const std::string repo = MakeTempDir("repo");
  fs::create_directories(repo + "/m/1");
  fs::copy_file(dir() + "/good.cvdm", repo + "/m/1/model.cvdm");
  std::vector<std::string> args = {"--model-repository", repo};
  for (const auto& f : ProtectionFlags()) args.push_back(f);
  ServerProcess packaged(args);
  ServerProcess plain({"--model", Asset("models/yolov8n-dq.onnx") + ":m"});
  ASSERT_TRUE(packaged.WaitReady()) << packaged.Stderr();
  ASSERT_TRUE(plain.WaitReady()) << plain.Stderr();
  for (const char* image : {"images/bus.jpg", "images/zidane.jpg"}) {
    const HttpReply a = Predict(packaged.port(), "m", image), b = Predict(plain.port(), "m", image);
    ASSERT_EQ(a.status, 200) << Describe(a);
    ASSERT_EQ(b.status, 200) << Describe(b);
    ASSERT_FALSE(Detections(a).empty()) << a.body;
    EXPECT_EQ(Detections(a), Detections(b)) << image;
  }
  // The golden set ran before the version became ready, and passed.
  EXPECT_NE(packaged.Stderr().find("golden set: passed"), std::string::npos) << packaged.Stderr();
  EXPECT_EQ(Metric(packaged.port(),
                   "cvdeploy_model_golden_checks_total{model=\"m\",version=\"1\",result=\"pass\"}"),
            1.0)
      << Http(packaged.port(), "GET", "/metrics").body;
}

// Replacements of version 2 that must each be refused, with the check their error names.
struct Tamper {
  std::string name, check;  // check: "a|b" when either may fire first
  std::function<std::string(const std::string& good)> make;  // package bytes -> file bytes
};

uint32_t ManifestLength(const std::string& pkg) {
  uint32_t n = 0;
  for (int i = 3; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(pkg[12 + i]);
  return n;
}

std::string Flip(std::string bytes, size_t at) {
  bytes.at(at) = static_cast<char>(bytes.at(at) ^ 0x01);
  return bytes;
}

TEST_F(ProtectedModels, TamperedPackagesAreBrokenVersionsAndTheServedOneKeepsServing) {
  const std::string good = ReadBytes(dir() + "/good.cvdm");
  const std::string d = dir();
  const size_t manifest_at = 16, payload_at = 16 + ManifestLength(good) + 8;
  ASSERT_LT(payload_at + 1000, good.size());
  const std::vector<Tamper> cases = {
      // A byte inside the manifest's JSON text (its first value, still valid JSON or not).
      {"manifest byte", "manifest|signature",
       [&](const std::string& g) { return Flip(g, manifest_at + 40); }},
      {"ciphertext byte", "signature",
       [&](const std::string& g) { return Flip(g, payload_at + 1000); }},
      {"signature byte", "signature", [&](const std::string& g) { return Flip(g, g.size() - 10); }},
      {"truncated", "format", [&](const std::string& g) { return g.substr(0, g.size() / 2); }},
      {"untrusted signer", "signature",
       [&](const std::string&) { return ReadBytes(d + "/rogue.cvdm"); }},
      {"wrong data key", "decryption",
       [&](const std::string&) { return ReadBytes(d + "/other-key.cvdm"); }},
      {"unsigned", "signature",
       [&](const std::string&) { return ReadBytes(d + "/unsigned.cvdm"); }},
  };
  const std::string repo = MakeTempDir("repo");
  fs::create_directories(repo + "/m/1");
  fs::copy_file(d + "/good.cvdm", repo + "/m/1/model.cvdm");
  std::vector<std::string> args = {"--model-repository", repo, "--poll-interval", "0.1"};
  for (const auto& f : ProtectionFlags()) args.push_back(f);
  ServerProcess server(args);
  ASSERT_TRUE(server.WaitReady()) << server.Stderr();
  double failures = 0;
  auto expect_refused = [&](const std::string& what, const std::string& check) {
    failures += 1;
    EXPECT_TRUE(WaitFor(
        [&] { return Metric(server.port(), LoadFailures("m", "2")).value_or(0) >= failures; }, 30))
        << what << "\n"
        << server.Stderr();
    const std::string log = server.Stderr();
    const size_t line_at = log.rfind("version 2 failed to load");
    ASSERT_NE(line_at, std::string::npos) << what << "\n" << log;
    const std::string line = log.substr(line_at, log.find('\n', line_at) - line_at);
    bool named = false;
    std::istringstream alternatives(check);
    for (std::string one; std::getline(alternatives, one, '|');) {
      named = named || line.find(": " + one + ":") != std::string::npos;
    }
    EXPECT_TRUE(named) << what << ": expected the check " << check << " in: " << line;
    // The served version is untouched.
    const HttpReply r = Predict(server.port(), "m", "images/bus.jpg");
    EXPECT_EQ(r.status, 200) << what << ": " << Describe(r);
    EXPECT_EQ(HeaderOf(r, "x-model-version"), "1") << what;
  };
  for (const auto& c : cases) {
    fs::remove_all(repo + "/m/2");
    WriteBytes(repo + "/m/2/model.cvdm.tmp", c.make(good));
    fs::rename(repo + "/m/2/model.cvdm.tmp", repo + "/m/2/model.cvdm");
    expect_refused(c.name, c.check);
  }
  // A plain model.onnx is unsigned: refused under --require-signed.
  fs::remove_all(repo + "/m/2");
  fs::create_directories(repo + "/m/2");
  fs::copy_file(Asset("models/yolov8n-dq.onnx"), repo + "/m/2/model.onnx");
  expect_refused("plain model.onnx", "signature");
  // And the untampered package as version 2 is accepted: the refusals were about the bytes.
  fs::remove_all(repo + "/m/2");
  fs::create_directories(repo + "/m/2");
  fs::copy_file(d + "/good.cvdm", repo + "/m/2/model.cvdm");
  EXPECT_TRUE(WaitFor(
      [&] {
        return HeaderOf(Predict(server.port(), "m", "images/bus.jpg"), "x-model-version") == "2";
      },
      60))
      << server.Stderr();
}

// golden/ beside each plain model.onnx, all recorded with yolov8n-dq: version 1 is yolov8n-dq
// and passes (with 1 and with 2 engine threads); a different model under the same name, the
// model with an altered preprocessing contract (metadata imgsz) and the model with perturbed
// weights are each refused before they are ready, while version 1 keeps serving.
class GoldenGate : public ProtectedModels, public ::testing::WithParamInterface<int> {};

TEST_P(GoldenGate, OnlyTheRecordedModelBecomesReady) {
  const std::string source = Asset("models/yolov8n-dq.onnx");
  const std::vector<std::pair<std::string, std::string>> versions = {
      {"1", source},
      {"2", Asset("models/yolo11n-dq.onnx")},
      {"3", ModelWithMetadata(source, "imgsz", "[480, 480]", "gate-contract")},
      {"4", ModelWithScaledLastConv(source, 1.05f, "gate-weights")}};
  const std::string repo = MakeTempDir("repo");
  for (const auto& [v, model] : versions) {
    fs::create_directories(repo + "/m/" + v);
    Cli({"golden", "record", "--model", source, "--images", dir() + "/golden-images", "--out",
         repo + "/m/" + v + "/golden"});
    fs::copy_file(model, repo + "/m/" + v + "/model.onnx");
  }
  fs::create_directories(repo + "/m");
  std::ofstream(repo + "/m/config.json") << R"({"version_policy": {"all": true}})";
  ServerProcess server({"--model-repository", repo, "--exit-on-error", "false", "--threads",
                        std::to_string(GetParam()), "--instances", "1"});
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const char* v : {"2", "3", "4"}) {
          if (Metric(server.port(), LoadFailures("m", v)).value_or(0) != 1) return false;
        }
        return true;
      },
      120))
      << server.Stderr();
  const std::string log = server.Stderr();
  for (const char* v : {"2", "3", "4"}) {
    EXPECT_NE(log.find(std::string("version ") + v + " failed to load: golden set:"),
              std::string::npos)
        << v << "\n"
        << log;
    EXPECT_NE(
        Http(server.port(), "GET", std::string("/v2/models/m/versions/") + v + "/ready").status,
        200);
  }
  EXPECT_NE(log.find("preprocessing contract changed: metadata imgsz"), std::string::npos) << log;
  EXPECT_NE(log.find("version 1: golden set: passed"), std::string::npos) << log;
  const HttpReply r = Predict(server.port(), "m", "images/bus.jpg");
  EXPECT_EQ(r.status, 200) << Describe(r);
  EXPECT_EQ(HeaderOf(r, "x-model-version"), "1");
}

INSTANTIATE_TEST_SUITE_P(Threads, GoldenGate, ::testing::Values(1, 2));

// Whether `needle` occurs in any regular file under `root`.
std::vector<std::string> FilesContaining(const std::string& root, const std::string& needle) {
  std::vector<std::string> hits;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::end(it); it.increment(ec)) {
    if (ec || !it->is_regular_file(ec)) continue;
    if (ReadBytes(it->path().string()).find(needle) != std::string::npos) {
      hits.push_back(it->path().string());
    }
  }
  return hits;
}

// A 64-byte window of the plaintext model that is distinctive: many different byte values.
std::string DistinctiveWindow(const std::string& model) {
  for (size_t at = model.size() / 2; at + 64 < model.size(); at += 64) {
    std::string w = model.substr(at, 64);
    std::sort(w.begin(), w.end());
    if (std::unique(w.begin(), w.end()) - w.begin() >= 40) return model.substr(at, 64);
  }
  return "";
}

TEST_F(ProtectedModels, NoPlaintextOnDiskAndTheProcessIsNotDumpable) {
  const std::string plaintext = ReadBytes(Asset("models/yolov8n-dq.onnx"));
  const std::string window = DistinctiveWindow(plaintext);
  ASSERT_EQ(window.size(), 64u);
  const std::string root = MakeTempDir("noplain");
  const std::string repo = root + "/repo", cwd = root + "/cwd", tmp = root + "/tmp";
  fs::create_directories(repo + "/m/1");
  fs::create_directories(cwd);
  fs::create_directories(tmp);
  fs::copy_file(dir() + "/good.cvdm", repo + "/m/1/model.cvdm");
  // The search can fail: the window is found in a plaintext copy (then removed).
  WriteBytes(tmp + "/control.onnx", plaintext);
  ASSERT_EQ(FilesContaining(root, window).size(), 1u);
  fs::remove(tmp + "/control.onnx");
  // Run the server as another user when the test is root, so that root ownership of its /proc
  // files can only come from PR_SET_DUMPABLE 0 (as root, every /proc file is root's anyway).
  const int uid = geteuid() == 0 ? kNobody : -1;
  const std::string keys = root + "/keys";
  fs::create_directories(keys);
  fs::copy_file(dir() + "/keys/data.key", keys + "/data.key");
  fs::copy(dir() + "/trusted", keys + "/trusted");
  fs::permissions(keys + "/data.key", fs::perms::owner_read | fs::perms::owner_write);
  Chown(root, uid);
  ServerLaunch launch;
  launch.cwd = cwd;
  launch.env = {{"TMPDIR", tmp}};
  launch.uid = uid;
  launch.gid = uid;
  ServerProcess server({"--model-repository", repo, "--trusted-keys", keys + "/trusted",
                        "--decrypt-key-file", keys + "/data.key", "--require-signed"},
                       launch);
  ASSERT_TRUE(server.WaitReady()) << server.Stderr();
  ASSERT_EQ(Predict(server.port(), "m", "images/bus.jpg").status, 200);
  EXPECT_EQ(FilesContaining(root, window), std::vector<std::string>{});
  struct stat st {};
  ASSERT_EQ(stat(("/proc/" + std::to_string(server.pid()) + "/status").c_str(), &st), 0);
  const uid_t server_uid = uid >= 0 ? static_cast<uid_t>(uid) : geteuid();
  if (server_uid != 0) {
    EXPECT_EQ(st.st_uid, 0u) << "a dumpable process's /proc files belong to its user";
  }
  // The control: the same server without protected models stays dumpable.
  ServerProcess plain({"--model", Asset("models/yolov8n-dq.onnx") + ":m"}, launch);
  ASSERT_TRUE(plain.WaitReady()) << plain.Stderr();
  ASSERT_EQ(stat(("/proc/" + std::to_string(plain.pid()) + "/status").c_str(), &st), 0);
  if (server_uid != 0) {
    EXPECT_EQ(st.st_uid, server_uid);
  }
}

}  // namespace
}  // namespace cvdeploy::testing
