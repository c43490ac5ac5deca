// SPDX-License-Identifier: Apache-2.0
// Every tool works on a protected model: predict, validate, bench and info read an encrypted,
// signed package with the data key and give what they give for the plain model; without the
// key, with an untrusted signer or with --require-signed on a plain model they refuse with one
// line naming the check and the documented exit code.

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/assets.h"
#include "support/process.h"

namespace cvdeploy::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class ProtectedTools : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("protected_tools"));
    const std::string d = *dir_;
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"keygen", "--kind", "signing", "--out", d + "/signer"},
             {"keygen", "--kind", "signing", "--out", d + "/rogue"},
             {"keygen", "--kind", "data", "--out", d + "/keys"},
             {"pack", "--model", Asset("models/yolov8n-dq.onnx"), "--out", d + "/m.cvdm",
              "--encrypt-key", d + "/keys/data.key", "--sign-key", d + "/signer/signing.key"}}) {
      const ProcessResult r = RunCli(args);
      ASSERT_EQ(r.exit_code, 0) << DescribeRun(args, r);
    }
    fs::create_directories(d + "/trusted");
    fs::copy_file(d + "/signer/signing.pub", d + "/trusted/signer.pub");
    fs::create_directories(d + "/rogue-trusted");
    fs::copy_file(d + "/rogue/signing.pub", d + "/rogue-trusted/rogue.pub");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string Package() { return *dir_ + "/m.cvdm"; }
  static std::vector<std::string> Keys() {
    return {"--decrypt-key-file", *dir_ + "/keys/data.key", "--trusted-keys", *dir_ + "/trusted",
            "--require-signed"};
  }
  static std::vector<std::string> With(std::vector<std::string> args,
                                       const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  static std::string* dir_;
};
std::string* ProtectedTools::dir_ = nullptr;

TEST_F(ProtectedTools, PredictOnThePackageEqualsPredictOnThePlainModel) {
  const std::vector<std::string> rest = {"--source", Asset("images/bus.jpg"),
                                         Asset("images/zidane.jpg"), "--json", "-"};
  const auto packaged = RunCli(With(With({"predict", "--model", Package()}, rest), Keys()));
  const auto plain = RunCli(With({"predict", "--model", Asset("models/yolov8n-dq.onnx")}, rest));
  ASSERT_EQ(packaged.exit_code, 0) << packaged.err;
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const auto a = ParseJsonLines(packaged.out), b = ParseJsonLines(plain.out);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_FALSE(a[i]["detections"].empty());
    EXPECT_EQ(a[i]["detections"], b[i]["detections"]) << i;
  }
}

TEST_F(ProtectedTools, InfoValidateAndBenchReadThePackage) {
  const auto info = RunCli(With({"info", Package(), "--json"}, Keys()));
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const json j = json::parse(info.out);
  EXPECT_EQ(j["package"]["encrypted"], true);
  EXPECT_EQ(j["package"]["signature_checked"], true);
  EXPECT_EQ(j["model"]["num_classes"], 80) << info.out;

  // A two-image YOLO dataset from coco128.
  const std::string data = MakeTempDir("protected_val");
  fs::create_directories(data + "/images");
  fs::create_directories(data + "/labels");
  int n = 0;
  for (const auto& e : fs::directory_iterator(Asset("datasets/coco128/images"))) {
    const std::string stem = e.path().stem().string();
    const fs::path label = fs::path(Asset("datasets/coco128")) / "labels" / (stem + ".txt");
    if (!fs::exists(label)) continue;
    fs::copy_file(e.path(), data + "/images/" + e.path().filename().string());
    fs::copy_file(label, data + "/labels/" + stem + ".txt");
    if (++n == 2) break;
  }
  const auto val =
      RunCli(With({"validate", "--model", Package(), "--data", data, "--json", "-"}, Keys()));
  const auto val_plain = RunCli(
      {"validate", "--model", Asset("models/yolov8n-dq.onnx"), "--data", data, "--json", "-"});
  ASSERT_EQ(val.exit_code, 0) << val.err;
  ASSERT_EQ(val_plain.exit_code, 0) << val_plain.err;
  EXPECT_EQ(json::parse(val.out)["map50_95"], json::parse(val_plain.out)["map50_95"]);

  const std::string report = data + "/bench.json";
  const auto bench =
      RunCli(With({"bench", "--model", Package(), "--source", Asset("images/bus.jpg"), "--warmup",
                   "1", "--iters", "2", "--json", report},
                  Keys()));
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  std::ifstream in(report);
  EXPECT_EQ(json::parse(in)["results"].size(), 1u);
}

TEST_F(ProtectedTools, GoldenCheckUsesThePackagesOwnGoldenSet) {
  const std::string d = *dir_;
  const std::string images = MakeTempDir("protected_golden_images");
  fs::copy_file(Asset("images/bus.jpg"), images + "/bus.jpg");
  const std::vector<std::string> pack = {"pack",
                                         "--model",
                                         Asset("models/yolov8n-dq.onnx"),
                                         "--out",
                                         d + "/golden.cvdm",
                                         "--encrypt-key",
                                         d + "/keys/data.key",
                                         "--sign-key",
                                         d + "/signer/signing.key",
                                         "--golden-images",
                                         images};
  const auto packed = RunCli(pack);
  ASSERT_EQ(packed.exit_code, 0) << DescribeRun(pack, packed);
  const auto check = RunCli(With({"golden", "check", "--model", d + "/golden.cvdm"}, Keys()));
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("bus.jpg: OK"), std::string::npos) << check.out;
  // A package without a golden set and no --golden: a usage error naming the remedy.
  ExpectCliError(With({"golden", "check", "--model", Package()}, Keys()), 2, "--golden DIR");
  // --golden DIR that the model does not pass: pack refuses to embed it.
  const std::string other = MakeTempDir("protected_golden_other") + "/golden";
  const std::vector<std::string> record = {
      "golden",   "record", "--model", Asset("models/yolo11n-dq.onnx"),
      "--images", images,   "--out",   other};
  ASSERT_EQ(RunCli(record).exit_code, 0);
  ExpectCliError({"pack", "--model", Asset("models/yolov8n-dq.onnx"), "--out",
                  d + "/bad-golden.cvdm", "--golden", other},
                 3, "does not pass");
  EXPECT_FALSE(fs::exists(d + "/bad-golden.cvdm"));
}

TEST_F(ProtectedTools, TrustedKeysRefuseUnsignedPackagesAndVerifyNamesTheCheck) {
  const std::string d = *dir_;
  const std::vector<std::string> pack = {"pack", "--model", Asset("models/yolov8n-dq.onnx"),
                                         "--out", d + "/unsigned.cvdm"};
  ASSERT_EQ(RunCli(pack).exit_code, 0);
  // Without trusted keys an unsigned package is usable; with them it is refused (a signed
  // package stripped of its signature looks exactly like this).
  const std::vector<std::string> predict = {
      "predict", "--source", Asset("images/bus.jpg"), "--json",
      "-",       "--model",  d + "/unsigned.cvdm"};
  EXPECT_EQ(RunCli(predict).exit_code, 0);
  ExpectCliError(With(predict, {"--trusted-keys", d + "/trusted"}), 3, "signature: unsigned");
  // verify --json names the failed check by its key.
  const auto v = RunCli({"verify", Package(), "--json", "--trusted-keys", d + "/rogue-trusted"});
  EXPECT_EQ(v.exit_code, 3) << v.err;
  const json j = json::parse(v.out);
  EXPECT_EQ(j["checks"]["signature"], "FAILED") << v.out;
  EXPECT_EQ(j["ok"], false);
}

TEST_F(ProtectedTools, UnpackWritesGoldenInputsOwnerOnly) {
  const std::string d = *dir_;
  const std::string images = MakeTempDir("unpack_golden_images");
  fs::copy_file(Asset("images/bus.jpg"), images + "/bus.jpg");
  const std::vector<std::string> pack = {"pack",
                                         "--model",
                                         Asset("models/yolov8n-dq.onnx"),
                                         "--out",
                                         d + "/g.cvdm",
                                         "--encrypt-key",
                                         d + "/keys/data.key",
                                         "--golden-images",
                                         images};
  ASSERT_EQ(RunCli(pack).exit_code, 0);
  const std::string out = MakeTempDir("unpack_out");
  const auto r = RunCli({"unpack", d + "/g.cvdm", "--out", out + "/m.onnx", "--decrypt-key",
                         d + "/keys/data.key", "--golden-out", out + "/golden"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* f : {"/m.onnx", "/golden/bus.jpg"}) {
    EXPECT_EQ(fs::status(out + f).permissions() & (fs::perms::group_all | fs::perms::others_all),
              fs::perms::none)
        << f;
  }
  EXPECT_TRUE(fs::exists(out + "/golden/golden.json"));
}

TEST_F(ProtectedTools, RefusalsNameTheCheck) {
  const std::vector<std::string> predict = {"predict", "--source", Asset("images/bus.jpg"),
                                            "--json",  "-",        "--model"};
  // Encrypted, no key: the invocation lacks something (exit 2).
  ExpectCliError(With(predict, {Package()}), 2, "decrypt");
  // A signer that is not in --trusted-keys: the package is refused (exit 3).
  ExpectCliError(With(predict, {Package(), "--decrypt-key-file", *dir_ + "/keys/data.key",
                                "--trusted-keys", *dir_ + "/rogue-trusted"}),
                 3, "signature");
  // --require-signed refuses a plain model.
  ExpectCliError(With(predict, {Asset("models/yolov8n-dq.onnx"), "--trusted-keys",
                                *dir_ + "/trusted", "--require-signed"}),
                 3, "signature");
  // --require-signed without trusted keys is a usage error.
  ExpectCliError(With(predict, {Package(), "--require-signed"}), 2, "--trusted-keys");
  // A key command that fails, or prints something that is not a key: exit 2, output not shown.
  ExpectCliError(With(predict, {Package(), "--decrypt-key-cmd", "exit 3"}), 2, "--decrypt-key-cmd");
  const auto r =
      ExpectCliError(With(predict, {Package(), "--decrypt-key-cmd", "echo not-a-key-but-a-secret"}),
                     2, "--decrypt-key-cmd");
  EXPECT_EQ(r.err.find("not-a-key-but-a-secret"), std::string::npos) << r.err;
  // The key through a command works like the key file.
  const auto ok =
      RunCli(With(predict, {Package(), "--decrypt-key-cmd", "cat '" + *dir_ + "/keys/data.key'"}));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

}  // namespace
}  // namespace cvdeploy::testing
