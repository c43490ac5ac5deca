// SPDX-License-Identifier: Apache-2.0
// AES-256-GCM and HKDF-SHA-256 (security/crypto.h) against known answers (the GCM
// specification's test cases 14 and 16, the ones NIST's GCMVS vectors include for 256-bit
// keys; RFC 5869 test case 1) and what a tampered input does: no plaintext, ever.
#include <gtest/gtest.h>

#include "cvdeploy/error.h"
#include "cvdeploy/security/crypto.h"

namespace cvdeploy::security {
namespace {

std::string Hex(const std::string& hex) { return HexDecode(hex).value(); }

TEST(SecurityCryptoAead, HkdfRfc5869Case1) {
  const std::string okm =
      HkdfSha256(Hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                 Hex("000102030405060708090a0b0c"), Hex("f0f1f2f3f4f5f6f7f8f9"), 42);
  EXPECT_EQ(HexEncode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(SecurityCryptoAead, HkdfDependsOnEveryInputAndRejectsBadLengths) {
  const std::string base = HkdfSha256("ikm", "salt", "info", 32);
  EXPECT_EQ(base.size(), 32u);
  EXPECT_NE(HkdfSha256("ikn", "salt", "info", 32), base);
  EXPECT_NE(HkdfSha256("ikm", "salu", "info", 32), base);
  EXPECT_NE(HkdfSha256("ikm", "salt", "infp", 32), base);
  EXPECT_THROW(HkdfSha256("ikm", "salt", "info", 0), Error);
  EXPECT_THROW(HkdfSha256("ikm", "salt", "info", 255 * 32 + 1), Error);
}

TEST(SecurityCryptoAead, AesGcmKnownAnswerCase16WithAad) {
  const std::string key = Hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  const std::string plain = Hex(
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449"
      "a6b525b16aedf5aa0de657ba637b39");
  const std::string aad = Hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const std::string iv = Hex("cafebabefacedbaddecaf888");
  const std::string sealed = Aes256GcmEncrypt(key, iv, plain, aad);
  EXPECT_EQ(HexEncode(sealed),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b"
            "1056828838c5f61e6393ba7a0abcc9f662"
            "76fc6ece0f4e1768cddf8853bb2d551b");
  EXPECT_EQ(Aes256GcmDecrypt(key, iv, sealed, aad), plain);
}

TEST(SecurityCryptoAead, AesGcmKnownAnswerCase14) {
  const std::string zeros32(32, '\0'), zeros12(12, '\0'), zeros16(16, '\0');
  EXPECT_EQ(HexEncode(Aes256GcmEncrypt(zeros32, zeros12, zeros16, "")),
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
}

TEST(SecurityCryptoAead, AesGcmEveryTamperFailsWithoutPlaintext) {
  const std::string key = RandomBytes(32), nonce = RandomBytes(12);
  const std::string plain = "the model's weights, which must stay secret";
  const std::string aad = "header and manifest";
  const std::string sealed = Aes256GcmEncrypt(key, nonce, plain, aad);
  ASSERT_EQ(sealed.size(), plain.size() + 16);
  for (size_t i = 0; i < sealed.size(); ++i) {  // every ciphertext and tag byte
    std::string bad = sealed;
    bad[i] ^= 0x01;
    EXPECT_FALSE(Aes256GcmDecrypt(key, nonce, bad, aad)) << "byte " << i;
  }
  std::string bad_aad = aad;
  bad_aad[0] ^= 0x20;
  EXPECT_FALSE(Aes256GcmDecrypt(key, nonce, sealed, bad_aad));
  EXPECT_FALSE(Aes256GcmDecrypt(key, nonce, sealed, ""));
  EXPECT_FALSE(Aes256GcmDecrypt(RandomBytes(32), nonce, sealed, aad));
  EXPECT_FALSE(Aes256GcmDecrypt(key, RandomBytes(12), sealed, aad));
  EXPECT_FALSE(Aes256GcmDecrypt(key, nonce, sealed.substr(0, sealed.size() - 1), aad));
  EXPECT_FALSE(Aes256GcmDecrypt(key, nonce, sealed.substr(0, 15), aad));
  EXPECT_EQ(Aes256GcmDecrypt(key, nonce, sealed, aad), plain);
}

TEST(SecurityCryptoAead, DecryptIntoWipesTheOutputOnFailure) {
  const std::string key = RandomBytes(32), nonce = RandomBytes(12);
  const std::string plain(1000, 'P');
  std::string sealed = Aes256GcmEncrypt(key, nonce, plain, "aad");
  sealed.back() ^= 0x80;  // the tag
  std::vector<uint8_t> out(plain.size(), 0xAA);
  EXPECT_FALSE(Aes256GcmDecryptInto(key, nonce, sealed, "aad", out.data()));
  for (uint8_t b : out) ASSERT_EQ(b, 0) << "unauthenticated plaintext left in the buffer";
}

TEST(SecurityCryptoAead, EmptyPlaintextAndBadSizes) {
  const std::string key = RandomBytes(32), nonce = RandomBytes(12);
  const std::string sealed = Aes256GcmEncrypt(key, nonce, "", "aad only");
  EXPECT_EQ(sealed.size(), 16u);
  EXPECT_EQ(Aes256GcmDecrypt(key, nonce, sealed, "aad only"), "");
  EXPECT_FALSE(Aes256GcmDecrypt(key, nonce, sealed, "aad onlY"));
  try {
    Aes256GcmEncrypt(RandomBytes(16), nonce, "x", "");
    FAIL() << "a 16-byte key was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_THROW(Aes256GcmEncrypt(key, RandomBytes(16), "x", ""), Error);
  EXPECT_THROW(Aes256GcmDecrypt(key, RandomBytes(8), sealed, ""), Error);
}

}  // namespace
}  // namespace cvdeploy::security
