// SPDX-License-Identifier: Apache-2.0
// The crypto wrappers against known answers (RFC 4231 HMAC, FIPS 180 SHA-256, RFC 4648
// base64url) and the secret-file permission rules.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "cvdeploy/error.h"
#include "cvdeploy/security/crypto.h"
#include "cvdeploy/security/secret_file.h"

namespace cvdeploy::security {
namespace {

TEST(SecurityCrypto, Sha256KnownAnswer) {
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(SecurityCrypto, HmacSha256Rfc4231Case2) {
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(SecurityCrypto, Base64UrlRoundTripAndRejects) {
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  for (size_t n = 0; n < 40; ++n) {
    const std::string bytes = RandomBytes(n);
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(bytes)), bytes);
  }
  EXPECT_EQ(Base64UrlDecode("Zm8="), "fo");
  EXPECT_FALSE(Base64UrlDecode("Zm+v"));  // '+' is standard base64, not base64url
  EXPECT_FALSE(Base64UrlDecode("Z"));     // impossible length
  EXPECT_FALSE(Base64UrlDecode("Zm9"));   // non-canonical trailing bits
}

TEST(SecurityCrypto, HexRoundTrip) {
  const std::string bytes("\x00\x7f\xff", 3);
  EXPECT_EQ(HexDecode(HexEncode(bytes)), bytes);
  EXPECT_EQ(HexEncode(bytes), "007fff");
  EXPECT_FALSE(HexDecode("abc"));
  EXPECT_FALSE(HexDecode("zz"));
}

TEST(SecurityCrypto, ConstantTimeEqual) {
  EXPECT_TRUE(ConstantTimeEqual("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEqual("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEqual("secret", "secret2"));
  EXPECT_TRUE(ConstantTimeEqual("", ""));
}

TEST(SecurityCrypto, PasswordHashIsArgon2idAndVerifies) {
  const std::string hash = HashPassword("correct horse");
  EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u) << hash;
  EXPECT_TRUE(VerifyPassword(hash, "correct horse"));
  EXPECT_FALSE(VerifyPassword(hash, "correct horsE"));
  EXPECT_FALSE(VerifyPassword("not a hash", "correct horse"));
  EXPECT_NE(HashPassword("correct horse"), hash);  // salted
}

TEST(SecurityCrypto, Ed25519SignVerifyAndPem) {
  const Ed25519Key key = Ed25519Key::Generate();
  const std::string sig = key.Sign("message");
  EXPECT_EQ(sig.size(), 64u);
  EXPECT_TRUE(key.Verify("message", sig));
  EXPECT_FALSE(key.Verify("messagE", sig));
  std::string bad = sig;
  bad[10] ^= 1;
  EXPECT_FALSE(key.Verify("message", bad));
  const Ed25519Key pub = Ed25519Key::FromPem(key.PublicPem());
  EXPECT_FALSE(pub.has_private());
  EXPECT_TRUE(pub.Verify("message", sig));
  const Ed25519Key priv = Ed25519Key::FromPem(key.PrivatePem());
  EXPECT_TRUE(pub.Verify("other", priv.Sign("other")));
  EXPECT_TRUE(Ed25519Key::FromRawPublic(key.RawPublic()).Verify("message", sig));
  EXPECT_THROW(Ed25519Key::FromPem("junk"), Error);
}

class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("cvdeploy_secret_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(SecretFileTest, WrittenFilesAre0600AndReadBack) {
  const std::string path = (dir_ / "keys.json").string();
  WriteSecretFile(path, "{\"a\":1}");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadSecretFile(path), "{\"a\":1}");
}

TEST_F(SecretFileTest, WiderPermissionsAreRefusedWithTheReason) {
  const std::string path = (dir_ / "open.json").string();
  std::ofstream(path) << "x";
  ::chmod(path.c_str(), 0644);
  try {
    CheckSecretFile(path);
    FAIL() << "0644 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
    EXPECT_NE(std::string(e.what()).find("0644"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  ::chmod(path.c_str(), 0640);
  EXPECT_THROW(CheckSecretFile(path), Error);
  ::chmod(path.c_str(), 0400);
  EXPECT_NO_THROW(CheckSecretFile(path));
  try {
    CheckSecretFile((dir_ / "missing").string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

}  // namespace
}  // namespace cvdeploy::security
