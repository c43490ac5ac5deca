// SPDX-License-Identifier: Apache-2.0
// The real `cvdeploy keygen`, `pack`, `verify` and `unpack` on yolov8n-dq: key files and their
// modes, the round trip (the unpacked model is byte-identical to the original), and every
// failure with its exit code and the check named in the one stderr line; no key bytes in any
// output.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "cvdeploy/security/crypto.h"
#include "cvdeploy/security/model_package.h"
#include "support/assets.h"
#include "support/process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
void Write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}
unsigned Mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

class CliPackageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("cli_package"));
    model_ = new std::string(Asset("models/yolov8n-dq.onnx"));
    for (const auto& [kind, out] : {std::pair{"signing", "keys"}, std::pair{"data", "keys"},
                                    std::pair{"signing", "other"}, std::pair{"data", "other"}}) {
      const std::vector<std::string> args = {"keygen", "--kind", kind, "--out", D(out)};
      const ProcessResult r = RunCli(args);
      ASSERT_EQ(r.exit_code, 0) << DescribeRun(args, r);
    }
    fs::create_directories(D("trusted"));
    fs::copy_file(D("keys/signing.pub"), D("trusted/owner.pub"));
    // Encrypted + signed, the package most tests start from.
    const std::vector<std::string> pack = {"pack",
                                           "--model",
                                           *model_,
                                           "--out",
                                           D("m.cvdm"),
                                           "--encrypt-key",
                                           D("keys/data.key"),
                                           "--sign-key",
                                           D("keys/signing.key"),
                                           "--name",
                                           "det",
                                           "--version",
                                           "4"};
    const ProcessResult r = RunCli(pack);
    ASSERT_EQ(r.exit_code, 0) << DescribeRun(pack, r);
    secrets_ = new std::vector<std::string>;
    for (const char* f : {"keys/data.key", "other/data.key"}) {
      std::string hex = Read(D(f));
      hex.pop_back();
      secrets_->push_back(hex);
    }
    for (const char* f : {"keys/signing.key", "other/signing.key"}) {
      const std::string pem = Read(D(f));
      // The base64 body of the private key PEM.
      const size_t start = pem.find('\n') + 1;
      secrets_->push_back(pem.substr(start, pem.find('\n', start) - start));
    }
  }
  static void TearDownTestSuite() { fs::remove_all(*dir_); }

  static std::string D(const std::string& rel) { return (fs::path(*dir_) / rel).string(); }

  // Runs the CLI and checks that no secret key text shows in its output.
  static ProcessResult Run(const std::vector<std::string>& args) {
    const ProcessResult r = RunCli(args);
    for (const std::string& secret : *secrets_) {
      EXPECT_EQ(r.out.find(secret), std::string::npos) << "key bytes on stdout";
      EXPECT_EQ(r.err.find(secret), std::string::npos) << "key bytes on stderr";
    }
    return r;
  }
  static ProcessResult ExpectFailure(const std::vector<std::string>& args, int code,
                                     const std::string& names) {
    const ProcessResult r = ExpectCliError(args, code, names);
    for (const std::string& secret : *secrets_) {
      EXPECT_EQ(r.out.find(secret) + r.err.find(secret), 2 * std::string::npos);
    }
    return r;
  }
  // A copy of m.cvdm with `edit` applied, under `name`.
  static std::string Edited(const std::string& name,
                            const std::function<void(std::string&)>& edit) {
    std::string bytes = Read(D("m.cvdm"));
    edit(bytes);
    Write(D(name), bytes);
    return D(name);
  }

  static std::string* dir_;
  static std::string* model_;
  static std::vector<std::string>* secrets_;
};
std::string* CliPackageTest::dir_ = nullptr;
std::string* CliPackageTest::model_ = nullptr;
std::vector<std::string>* CliPackageTest::secrets_ = nullptr;

TEST_F(CliPackageTest, KeygenWritesPrivateFilesAndRefusesToOverwrite) {
  EXPECT_EQ(Mode(D("keys/signing.key")), 0600u);
  EXPECT_EQ(Mode(D("keys/data.key")), 0600u);
  EXPECT_EQ(Mode(D("keys/signing.pub")), 0644u);
  EXPECT_NE(Read(D("keys/signing.key")).find("BEGIN PRIVATE KEY"), std::string::npos);
  EXPECT_NE(Read(D("keys/signing.pub")).find("BEGIN PUBLIC KEY"), std::string::npos);
  EXPECT_EQ(Read(D("keys/data.key")).size(), 65u);
  const std::string before = Read(D("keys/data.key"));
  ExpectFailure({"keygen", "--kind", "data", "--out", D("keys")}, 2, "exists");
  ExpectFailure({"keygen", "--kind", "signing", "--out", D("keys")}, 2, "exists");
  EXPECT_EQ(Read(D("keys/data.key")), before);
  const ProcessResult forced = Run({"keygen", "--kind", "data", "--out", D("forced"), "--force"});
  EXPECT_EQ(forced.exit_code, 0);
  EXPECT_NE(forced.out.find("key id "), std::string::npos) << forced.out;
  std::string text = Read(D("forced/data.key"));
  text.pop_back();
  EXPECT_EQ(forced.out.find(text), std::string::npos) << "keygen printed the data key";
  ExpectFailure({"keygen", "--kind", "rsa", "--out", D("x")}, 2, "--kind");
}

TEST_F(CliPackageTest, PackVerifyUnpackRoundTrip) {
  const ProcessResult v = Run(
      {"verify", D("m.cvdm"), "--trusted-keys", D("trusted"), "--decrypt-key", D("keys/data.key")});
  ASSERT_EQ(v.exit_code, 0) << v.out << v.err;
  for (const char* want : {"name      det  version 4", "signature  OK", "decryption OK",
                           "integrity  OK", "\"task\":\"detect\"", "\"imgsz\":[640,640]"}) {
    EXPECT_NE(v.out.find(want), std::string::npos) << want << "\n" << v.out;
  }
  EXPECT_EQ(v.err, "");
  const ProcessResult j = Run({"verify", D("m.cvdm"), "--json", "--trusted-keys", D("trusted"),
                               "--decrypt-key", D("keys/data.key")});
  ASSERT_EQ(j.exit_code, 0);
  const nlohmann::json doc = nlohmann::json::parse(j.out);
  EXPECT_TRUE(doc["ok"].get<bool>());
  EXPECT_EQ(doc["manifest"]["model"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(doc["manifest"]["model"]["metadata"]["task"], "detect");
  EXPECT_TRUE(doc["manifest"].contains("optimizations"));
  EXPECT_EQ(doc["manifest"]["model"]["contract"]["letterbox"]["pad"], 114);

  const ProcessResult u = Run({"unpack", D("m.cvdm"), "--out", D("plain.onnx"), "--trusted-keys",
                               D("trusted"), "--decrypt-key", D("keys/data.key")});
  ASSERT_EQ(u.exit_code, 0) << u.out << u.err;
  EXPECT_TRUE(Read(D("plain.onnx")) == Read(*model_)) << "unpacked model differs";
  EXPECT_EQ(Mode(D("plain.onnx")), 0600u);
  // The encrypted package does not hold the model's bytes in the clear.
  const std::string model = Read(*model_);
  EXPECT_EQ(Read(D("m.cvdm")).find(model.substr(model.size() / 2, 64)), std::string::npos);
}

TEST_F(CliPackageTest, UnencryptedSignedAndUncheckedSignatures) {
  const std::vector<std::string> pack = {
      "pack", "--model", *model_, "--out", D("s.cvdm"), "--sign-key", D("keys/signing.key")};
  ASSERT_EQ(Run(pack).exit_code, 0);
  const ProcessResult v = Run({"verify", D("s.cvdm")});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("not checked (no --trusted-keys)"), std::string::npos) << v.out;
  EXPECT_NE(v.err.find("not checked"), std::string::npos) << v.err;
  EXPECT_NE(v.out.find("integrity  OK"), std::string::npos) << v.out;
  const ProcessResult e = Run({"verify", D("m.cvdm")});
  EXPECT_EQ(e.exit_code, 0);
  EXPECT_NE(e.out.find("skipped (no --decrypt-key)"), std::string::npos) << e.out;
  ASSERT_EQ(Run({"unpack", D("s.cvdm"), "--out", D("s.onnx")}).exit_code, 0);
  EXPECT_TRUE(Read(D("s.onnx")) == Read(*model_));
  // Unsigned, checked against trusted keys: a signature failure.
  ASSERT_EQ(Run({"pack", "--model", *model_, "--out", D("u.cvdm")}).exit_code, 0);
  ExpectFailure({"verify", D("u.cvdm"), "--trusted-keys", D("trusted")}, 3,
                "cvdeploy verify: " + D("u.cvdm") + ": signature: the package is not signed");
}

TEST_F(CliPackageTest, EveryTamperFailsWithItsCheck) {
  const std::vector<std::string> keys = {"--trusted-keys", D("trusted"), "--decrypt-key",
                                         D("keys/data.key")};
  auto verify = [&](const std::string& path, const std::string& check) {
    std::vector<std::string> args = {"verify", path};
    args.insert(args.end(), keys.begin(), keys.end());
    ExpectFailure(args, 3, "cvdeploy verify: " + path + ": " + check + ": ");
    std::vector<std::string> unpack = {"unpack", path, "--out", D("never.onnx")};
    unpack.insert(unpack.end(), keys.begin(), keys.end());
    ExpectFailure(unpack, 3, path + ": " + check + ": ");
    EXPECT_FALSE(fs::exists(D("never.onnx")));
  };
  const std::string good = Read(D("m.cvdm"));
  const size_t manifest_at = good.find("\"name\":\"det\"") + 9;
  verify(Edited("manifest.cvdm", [&](std::string& b) { b[manifest_at] ^= 1; }), "signature");
  verify(Edited("cipher.cvdm", [&](std::string& b) { b[b.size() / 2] ^= 1; }), "signature");
  verify(Edited("sig.cvdm", [&](std::string& b) { b[b.size() - 3] ^= 1; }), "signature");
  verify(Edited("magic.cvdm", [&](std::string& b) { b[1] ^= 1; }), "format");
  verify(Edited("short.cvdm", [&](std::string& b) { b.resize(b.size() - 100); }), "format");
  verify(Edited("long.cvdm", [&](std::string& b) { b += "trailing"; }), "format");
  // Signed by a key that is not trusted.
  ASSERT_EQ(Run({"pack", "--model", *model_, "--out", D("stranger.cvdm"), "--sign-key",
                 D("other/signing.key")})
                .exit_code,
            0);
  const ProcessResult r =
      ExpectFailure({"verify", D("stranger.cvdm"), "--trusted-keys", D("trusted")}, 3,
                    "which is not in the trusted keys (1 key in " + D("trusted") + ")");
  EXPECT_NE(r.err.find(": signature: signed by ed25519:"), std::string::npos) << r.err;
  // The right signer but the wrong data key.
  ExpectFailure(
      {"verify", D("m.cvdm"), "--trusted-keys", D("trusted"), "--decrypt-key", D("other/data.key")},
      3, ": decryption: wrong data key");
  // Encrypted without a signature: a manifest edit is caught by decryption (AAD).
  ASSERT_EQ(
      Run({"pack", "--model", *model_, "--out", D("e.cvdm"), "--encrypt-key", D("keys/data.key")})
          .exit_code,
      0);
  std::string e = Read(D("e.cvdm"));
  e[e.find("yolov8n-dq\"") + 1] ^= 1;
  Write(D("e2.cvdm"), e);
  ExpectFailure({"verify", D("e2.cvdm"), "--decrypt-key", D("keys/data.key")}, 3,
                ": decryption: authentication failed (wrong data key or tampered package)");
}

TEST_F(CliPackageTest, BadKeyFilesAreUsageErrors) {
  ExpectFailure({"verify", D("m.cvdm"), "--decrypt-key", D("missing.key")}, 2, "missing.key");
  Write(D("loose.key"), Read(D("keys/data.key")));
  ::chmod(D("loose.key").c_str(), 0644);
  ExpectFailure({"verify", D("m.cvdm"), "--decrypt-key", D("loose.key")}, 2, "loose.key");
  Write(D("junk.key"), "correct horse battery staple\n");
  ::chmod(D("junk.key").c_str(), 0600);
  const ProcessResult junk =
      ExpectFailure({"unpack", D("m.cvdm"), "--out", D("x.onnx"), "--decrypt-key", D("junk.key")},
                    2, "not a data key");
  EXPECT_EQ(junk.err.find("horse"), std::string::npos) << "the rejected key text was echoed";
  ExpectFailure({"verify", D("m.cvdm"), "--trusted-keys", D("nodir")}, 2, "nodir");
  ExpectFailure(
      {"pack", "--model", *model_, "--out", D("y.cvdm"), "--sign-key", D("keys/signing.pub")}, 2,
      "signing.pub");
  ExpectFailure({"pack", "--model", *model_, "--out", D("y.cvdm"), "--encrypt-key", D("junk.key")},
                2, "not a data key");
  // Encrypted package without a key: unpack cannot, verify skips.
  ExpectFailure({"unpack", D("m.cvdm"), "--out", D("x.onnx")}, 2, "needs a data key");
  EXPECT_FALSE(fs::exists(D("x.onnx")));
  EXPECT_FALSE(fs::exists(D("y.cvdm")));
}

TEST_F(CliPackageTest, UnpackWritesGoldenInputs) {
  // A package with golden parts written by the library (pack --golden-images is in
  // cli_protected_tools_test), so that unpack's output can be compared byte for byte.
  security::PackageInput in;
  in.manifest = {{"name", "g"}, {"version", 1}, {"golden", {{"format_version", 1}}}};
  in.parts.emplace_back("model.onnx", std::vector<uint8_t>{'m', 'o', 'd'});
  in.parts.emplace_back("golden/bus.jpg", std::vector<uint8_t>{'j', 'p', 'g'});
  const security::DataKey key = security::DataKey::FromFile(D("keys/data.key"));
  Write(D("g.cvdm"), security::WritePackage(in, &key, nullptr));
  const ProcessResult r = Run({"unpack", D("g.cvdm"), "--out", D("g.onnx"), "--decrypt-key",
                               D("keys/data.key"), "--golden-out", D("golden")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(Read(D("g.onnx")), "mod");
  EXPECT_EQ(Read(D("golden/bus.jpg")), "jpg");
  EXPECT_EQ(nlohmann::json::parse(Read(D("golden/golden.json")))["format_version"], 1);
  const ProcessResult v = Run({"verify", D("g.cvdm"), "--decrypt-key", D("keys/data.key")});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("entry     golden/bus.jpg  3 bytes"), std::string::npos) << v.out;
}

TEST_F(CliPackageTest, PackRefusesBadArguments) {
  ExpectFailure({"pack", "--model", *model_, "--out", D("m.onnx")}, 2, ".cvdm");
  ExpectFailure({"pack", "--model", D("nothing.onnx"), "--out", D("n.cvdm")}, 3, "nothing.onnx");
  ExpectFailure({"pack", "--model", *model_, "--out", D("g.cvdm"), "--golden", D("g"),
                 "--golden-images", D("i")},
                2, "excludes");
  // Golden images that do not exist: the input is named, nothing is written.
  ExpectFailure({"pack", "--model", *model_, "--out", D("h.cvdm"), "--golden-images", D("i")}, 3,
                D("i"));
  EXPECT_FALSE(std::filesystem::exists(D("h.cvdm")));
  ExpectFailure({"verify", D("nothing.cvdm")}, 3, "nothing.cvdm");
}

}  // namespace
}  // namespace cvdeploy::testing
