// SPDX-License-Identifier: Apache-2.0
// config.json reading (depth bound, size bound, non-regular files that must neither block nor
// be mistaken for a config) and the repository scan's view of a model.onnx that is not a
// regular file (a broken version, not a missing one).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "cvdeploy/error.h"
#include "server/model_config.h"
#include "support/assets.h"

namespace cvdeploy::server {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() : path_(testing::MakeTempDir("model-config")) {}
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
};

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

// ReadModelConfig(dir)'s error message; "" when it succeeds. Fails the test when it does not
// return within 10 s (a FIFO opened for reading blocks until a writer appears): the FIFO is
// then opened for writing and closed, so the stuck read ends and the test can finish.
std::string ConfigError(const std::string& dir) {
  auto result = std::async(std::launch::async, [dir]() -> std::string {
    try {
      ReadModelConfig(dir);
      return "";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kBadInput) << e.what();
      return e.what();
    }
  });
  if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "ReadModelConfig(" << dir << ") blocked";
    const int fd = ::open((fs::path(dir) / "config.json").c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
  return result.get();
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ModelConfigFile, AbsentMeansDefaults) {
  TempDir dir;
  const ModelConfig c = ReadModelConfig(dir.path());
  EXPECT_FALSE(c.conf.has_value());
  EXPECT_EQ(c.instances, 0);
  EXPECT_EQ(c.warmup, 2);
  EXPECT_EQ(c.version_policy.kind, VersionPolicy::Kind::kLatest);
}

TEST(ModelConfigFile, ValidFileIsParsed) {
  TempDir dir;
  Write(dir / "config.json", R"({"instances": 2, "conf": 0.5, "version_policy": {"all": true}})");
  const ModelConfig c = ReadModelConfig(dir.path());
  EXPECT_EQ(c.instances, 2);
  EXPECT_FLOAT_EQ(c.conf.value_or(0), 0.5f);
  EXPECT_EQ(c.version_policy.kind, VersionPolicy::Kind::kAll);
  EXPECT_FALSE(c.rect.has_value());  // unset: the server's --rect/--no-rect decides
}

TEST(ModelConfigFile, RectIsABoolean) {
  TempDir dir;
  Write(dir / "config.json", R"({"rect": false})");
  EXPECT_EQ(ReadModelConfig(dir.path()).rect, std::optional<bool>(false));
  Write(dir / "config.json", R"({"rect": true})");
  EXPECT_EQ(ReadModelConfig(dir.path()).rect, std::optional<bool>(true));
  for (const char* bad : {R"({"rect": 1})", R"({"rect": "no"})", R"({"rect": null})"}) {
    Write(dir / "config.json", bad);
    const std::string error = ConfigError(dir.path());
    EXPECT_TRUE(Contains(error, "\"rect\" must be true or false")) << bad << ": " << error;
  }
  // A changed "rect" reloads the version (it changes what the engine is fed).
  ModelConfig a, b;
  b.rect = false;
  EXPECT_FALSE(a.LoadsAlike(b));
}

TEST(ModelConfigFile, GraphOptimizationIsALevelName) {
  TempDir dir;
  EXPECT_FALSE(ReadModelConfig(dir.path()).graph_optimization.has_value());  // the server's
  Write(dir / "config.json", R"({"graph_optimization": "basic"})");
  EXPECT_EQ(ReadModelConfig(dir.path()).graph_optimization,
            std::optional<GraphOptimization>(GraphOptimization::kBasic));
  Write(dir / "config.json", R"({"graph_optimization": "disable"})");
  EXPECT_EQ(ReadModelConfig(dir.path()).graph_optimization,
            std::optional<GraphOptimization>(GraphOptimization::kDisabled));
  for (const char* bad : {R"({"graph_optimization": 1})", R"({"graph_optimization": "ALL"})",
                          R"({"graph_optimization": null})", R"({"graph_optimization": ""})"}) {
    Write(dir / "config.json", bad);
    const std::string error = ConfigError(dir.path());
    EXPECT_TRUE(Contains(error,
                         "\"graph_optimization\" must be \"all\", \"extended\", \"basic\" or "
                         "\"disable\""))
        << bad << ": " << error;
  }
  // A changed level reloads the version (another engine session).
  ModelConfig a, b;
  b.graph_optimization = GraphOptimization::kBasic;
  EXPECT_FALSE(a.LoadsAlike(b));
}

TEST(ModelConfigFile, DeepNestingIsRefusedBeforeParsing) {
  TempDir dir;
  const std::string path = dir / "config.json";
  Write(path, std::string(100000, '[') + std::string(100000, ']'));
  std::string error = ConfigError(dir.path());
  EXPECT_TRUE(Contains(error, path + ": JSON nested deeper than 64 levels")) << error;

  Write(path, R"({"instances": )" + std::string(100000, '[') + std::string(100000, ']') + "}");
  error = ConfigError(dir.path());
  EXPECT_TRUE(Contains(error, path + ": JSON nested deeper than 64 levels")) << error;

  // 64 levels are still read (and then rejected for what they contain, not for depth).
  Write(path, R"({"instances": )" + std::string(63, '[') + std::string(63, ']') + "}");
  error = ConfigError(dir.path());
  EXPECT_TRUE(Contains(error, "\"instances\" must be an integer")) << error;
}

TEST(ModelConfigFile, InvalidContentNamesFileAndReason) {
  TempDir dir;
  const std::string path = dir / "config.json";
  Write(path, "{bad");
  std::string error = ConfigError(dir.path());
  EXPECT_TRUE(Contains(error, path + ": invalid JSON")) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;

  Write(path, R"({"instances": 0})");
  error = ConfigError(dir.path());
  EXPECT_TRUE(Contains(error, path + ": \"instances\" must be an integer in [1, 64]")) << error;

  Write(path, R"({"instancez": 2})");
  error = ConfigError(dir.path());
  EXPECT_TRUE(Contains(error, path + ": unknown key \"instancez\"")) << error;
}

TEST(ModelConfigFile, OversizedFileIsRefusedUnread) {
  TempDir dir;
  const std::string path = dir / "config.json";
  Write(path, "{}" + std::string(kMaxModelConfigBytes, ' '));
  const std::string error = ConfigError(dir.path());
  EXPECT_TRUE(Contains(error, path + ": larger than 1048576 bytes")) << error;
}

TEST(ModelConfigFile, NonRegularFilesAreRefusedWithoutBlocking) {
  {
    TempDir dir;
    ASSERT_EQ(::mkfifo((dir / "config.json").c_str(), 0600), 0);
    const std::string error = ConfigError(dir.path());
    EXPECT_TRUE(Contains(error, "config.json: not a regular file (a FIFO)")) << error;
  }
  {
    TempDir dir;
    fs::create_directory(dir / "config.json");
    const std::string error = ConfigError(dir.path());
    EXPECT_TRUE(Contains(error, "config.json: not a regular file (a directory)")) << error;
  }
  {
    TempDir dir;
    fs::create_symlink("/dev/zero", dir / "config.json");
    const std::string error = ConfigError(dir.path());
    EXPECT_TRUE(
        Contains(error, "config.json: not a regular file (a symbolic link to a character device)"))
        << error;
  }
  {
    TempDir dir;
    fs::create_symlink(dir / "missing.json", dir / "config.json");
    const std::string error = ConfigError(dir.path());
    EXPECT_TRUE(Contains(error, "config.json: a symbolic link to a missing file")) << error;
  }
}

TEST(ModelConfigFile, LoadsAlikeIgnoresOnlyTheVersionPolicy) {
  ModelConfig a, b;
  b.version_policy.kind = VersionPolicy::Kind::kAll;
  EXPECT_TRUE(a.LoadsAlike(b));
  EXPECT_FALSE(a == b);
  b.instances = 2;
  EXPECT_FALSE(a.LoadsAlike(b));
  ModelConfig c;
  c.conf = 0.5f;
  EXPECT_FALSE(a.LoadsAlike(c));
}

TEST(ModelFileProbe, KindsOfModelFile) {
  TempDir dir;
  EXPECT_FALSE(ProbeModelFile(dir / "absent.onnx").has_value());

  Write(dir / "model.onnx", "bytes");
  auto regular = ProbeModelFile(dir / "model.onnx");
  ASSERT_TRUE(regular.has_value());
  EXPECT_EQ(regular->error, "");
  EXPECT_EQ(regular->signature.rfind("5@", 0), 0u) << regular->signature;
  // A symlink to a regular file is that file.
  fs::create_symlink(dir / "model.onnx", dir / "link.onnx");
  EXPECT_EQ(ProbeModelFile(dir / "link.onnx")->signature, regular->signature);

  fs::create_directory(dir / "d.onnx");
  fs::create_symlink(dir / "d.onnx", dir / "dlink.onnx");
  ASSERT_EQ(::mkfifo((dir / "fifo.onnx").c_str(), 0600), 0);
  fs::create_symlink(dir / "absent.onnx", dir / "dangling.onnx");
  const std::pair<const char*, const char*> broken[] = {
      {"d.onnx", "not a regular file (a directory)"},
      {"dlink.onnx", "not a regular file (a symbolic link to a directory)"},
      {"fifo.onnx", "not a regular file (a FIFO)"},
      {"dangling.onnx", "a symbolic link to a missing file"},
  };
  for (const auto& [name, reason] : broken) {
    const auto probe = ProbeModelFile(dir / name);
    ASSERT_TRUE(probe.has_value()) << name;
    EXPECT_EQ(probe->error, reason) << name;
    EXPECT_EQ(probe->path, dir / name);
    EXPECT_NE(probe->signature, regular->signature) << name;
  }
}

// The scan lists a version whose model.onnx is not a regular file, with its error, instead of
// dropping it (which made poll mode unload the version as if it had been deleted).
TEST(ModelFileProbe, ScanListsBrokenVersions) {
  TempDir dir;
  fs::create_directories(dir / "m/1/model.onnx");  // a directory named model.onnx
  fs::create_directories(dir / "m/2");
  Write(dir / "m/2/model.onnx", "bytes");
  fs::create_directories(dir / "m/3");  // no model.onnx yet: not a version
  fs::create_directories(dir / "m/4");
  ASSERT_EQ(::mkfifo((dir / "m/4/model.onnx").c_str(), 0600), 0);

  const auto repo = ScanRepository(dir.path());
  ASSERT_EQ(repo.count("m"), 1u);
  const auto& versions = repo.at("m");
  ASSERT_EQ(versions.size(), 3u);
  EXPECT_EQ(versions.at(1).error, "not a regular file (a directory)");
  EXPECT_EQ(versions.at(2).error, "");
  EXPECT_EQ(versions.at(4).error, "not a regular file (a FIFO)");
  EXPECT_EQ(versions.count(3), 0u);
}

}  // namespace
}  // namespace cvdeploy::server
