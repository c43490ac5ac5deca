// SPDX-License-Identifier: Apache-2.0
// TOTP and base32 against the RFCs' known answers (RFC 4648 section 10, RFC 4226 appendix D,
// RFC 6238 appendix B SHA-1 rows) and against oathtool, the independent implementation.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "cvdeploy/error.h"
#include "cvdeploy/security/crypto.h"
#include "security/totp.h"
#include "support/process.h"

namespace cvdeploy::security {
namespace {

using Clock = std::chrono::system_clock;

TEST(SecurityTotp, Base32Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "MY"},
                                                         {"fo", "MZXQ"},
                                                         {"foo", "MZXW6"},
                                                         {"foob", "MZXW6YQ"},
                                                         {"fooba", "MZXW6YTB"},
                                                         {"foobar", "MZXW6YTBOI"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base32Encode(plain), encoded) << plain;
    EXPECT_EQ(Base32Decode(encoded), std::string(plain)) << encoded;
  }
  EXPECT_EQ(Base32Decode("MZXW6YQ="), "foob");      // padding accepted
  EXPECT_EQ(Base32Decode("mzxw6ytboi"), "foobar");  // lower case accepted
}

TEST(SecurityTotp, Base32RefusesBadInput) {
  EXPECT_FALSE(Base32Decode("MZXW6YT1"));  // '1' is not in the alphabet
  EXPECT_FALSE(Base32Decode("MZ XW"));
  EXPECT_FALSE(Base32Decode("M"));  // 1, 3 or 6 trailing characters cannot occur
  EXPECT_FALSE(Base32Decode("MZX"));
  EXPECT_FALSE(Base32Decode("MZXW6Y"));
  EXPECT_FALSE(Base32Decode("MZ"));  // non-canonical trailing bits ("f" is MY)
  for (size_t n = 0; n < 41; ++n) {
    const std::string bytes = RandomBytes(n);
    EXPECT_EQ(Base32Decode(Base32Encode(bytes)), bytes);
  }
}

TEST(SecurityTotp, Rfc4226HotpValues) {
  const char* expected[] = {"755224", "287082", "359152", "969429", "338314",
                            "254676", "287922", "162583", "399871", "520489"};
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(TotpCode("12345678901234567890", i), expected[i]) << "counter " << i;
  }
}

TEST(SecurityTotp, Rfc6238Sha1Vectors) {
  const std::pair<int64_t, const char*> rows[] = {
      {59, "94287082"},         {1111111109, "07081804"}, {1111111111, "14050471"},
      {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"}};
  for (const auto& [unix_time, code] : rows) {
    // The last row (year 2603) is beyond system_clock's nanosecond range: its step is given.
    const int64_t step = unix_time < 10000000000
                             ? TotpStep(Clock::time_point(std::chrono::seconds(unix_time)))
                             : unix_time / kTotpPeriodSeconds;
    EXPECT_EQ(step, unix_time / kTotpPeriodSeconds);
    EXPECT_EQ(TotpCode("12345678901234567890", step, 8), code) << unix_time;
  }
  EXPECT_THROW(TotpCode("k", 1, 5), Error);
  EXPECT_THROW(TotpCode("k", 1, 9), Error);
}

TEST(SecurityTotp, WellFormedCodesAndUri) {
  EXPECT_TRUE(IsWellFormedTotpCode("012345"));
  EXPECT_FALSE(IsWellFormedTotpCode("12345"));
  EXPECT_FALSE(IsWellFormedTotpCode("1234567"));
  EXPECT_FALSE(IsWellFormedTotpCode("12345a"));
  EXPECT_FALSE(IsWellFormedTotpCode(std::string("12345\0", 6)));
  EXPECT_EQ(TotpUri("alice", "ABCD"),
            "otpauth://totp/cvdeploy:alice?secret=ABCD&issuer=cvdeploy&algorithm=SHA1&digits=6"
            "&period=30");
  EXPECT_EQ(TotpStep(Clock::time_point(std::chrono::seconds(-5))), 0);
  EXPECT_EQ(TotpStep(Clock::time_point(std::chrono::seconds(89))), 2);
}

TEST(SecurityTotp, MatchesOathtool) {
  if (::access("/usr/bin/oathtool", X_OK) != 0) GTEST_SKIP() << "oathtool is not installed";
  const std::string secret = RandomBytes(kTotpSecretBytes);
  const std::string b32 = Base32Encode(secret);
  // Times as oathtool reads them (--now, UTC) and as seconds since the epoch.
  const std::pair<const char*, int64_t> times[] = {{"2026-12-04 14:00:00 UTC", 1796392800},
                                                   {"2030-01-01 00:00:29 UTC", 1893456029},
                                                   {"2001-09-09 01:46:40 UTC", 1000000000}};
  for (const auto& [text, unix_time] : times) {
    const auto run = testing::RunProcess("/usr/bin/oathtool", {"--totp", "-b", b32, "--now", text});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const std::string code = run.out.substr(0, run.out.find('\n'));
    const auto t = Clock::time_point(std::chrono::seconds(unix_time));
    EXPECT_EQ(TotpCode(secret, TotpStep(t)), code) << text;
    EXPECT_NE(TotpCode(secret, TotpStep(t) + 1), code) << text;
  }
}

}  // namespace
}  // namespace cvdeploy::security
