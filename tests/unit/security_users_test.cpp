// SPDX-License-Identifier: Apache-2.0
// UserStore and LoginThrottle: password rules, what the users file holds, Login's outcomes
// (TOTP window of +-1 step, replay, unknown user), codes from oathtool, exponential delay and
// lockout per user and per address, bounded throttle memory, and management (remove, new
// password, new TOTP secret) seen by another store on the same file.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cvdeploy/error.h"
#include "cvdeploy/security/users.h"
#include "security/totp.h"
#include "support/process.h"

namespace cvdeploy::security {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;
using std::chrono::seconds;

constexpr char kPassword[] = "correct horse battery";
// 2026-12-04 14:00:00 UTC, the start of a 30 s step.
const Clock::time_point kT0 = Clock::time_point(seconds(1796392800));

// prefix + i (GCC 12 warns, wrongly, on "literal" + std::to_string(i) at -O3).
std::string Numbered(const char* prefix, int i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

class UsersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cvdeploy_users_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "users.json").string();
    UserStoreOptions o;
    o.create_if_missing = true;
    o.throttle = throttle_;
    store_ = std::make_unique<UserStore>(path_, o);
    secret_ = *Base32Decode(store_->Add("alice", {"admin"}, kPassword, kT0).secret_base32);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Code(Clock::time_point t, int step_offset = 0) {
    return TotpCode(secret_, TotpStep(t) + step_offset);
  }
  AuthResult Login(const std::string& password, const std::string& code, Clock::time_point t,
                   const std::string& user = "alice", const std::string& client = "10.0.0.1") {
    return store_->Login(user, password, code, client, t);
  }

  LoginThrottleOptions throttle_;
  fs::path dir_;
  std::string path_;
  std::unique_ptr<UserStore> store_;
  std::string secret_;
};

TEST(SecurityPasswordRules, LengthNameAndLimit) {
  EXPECT_THROW(CheckPasswordRules("bob", "elevenchars"), Error);
  EXPECT_NO_THROW(CheckPasswordRules("bob", "twelve chars"));
  // 12 code points in 24 bytes: counted as characters, not bytes.
  EXPECT_NO_THROW(CheckPasswordRules("bob",
                                     "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
                                     "\u00e9\u00e9\u00e9\u00e9"));
  EXPECT_THROW(CheckPasswordRules("bob", "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"),
               Error);
  EXPECT_THROW(CheckPasswordRules("administrator1", "Administrator1"), Error);
  EXPECT_THROW(CheckPasswordRules("bob", std::string(kMaxPasswordBytes + 1, 'x')), Error);
  try {
    CheckPasswordRules("bob", "secretpw");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).find("secretpw"), std::string::npos);
  }
}

TEST_F(UsersTest, FileHoldsHashAndSecretOnly) {
  std::ifstream in(path_);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str().find(kPassword), std::string::npos);
  EXPECT_NE(text.str().find("$argon2id$"), std::string::npos);
  EXPECT_NE(text.str().find(Base32Encode(secret_)), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto list = store_->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name, "alice");
  EXPECT_EQ(list[0].roles, std::vector<std::string>{"admin"});
  EXPECT_THROW(store_->Add("alice", {"admin"}, kPassword), Error);
  EXPECT_THROW(store_->Add("bob", {}, kPassword), Error);
  EXPECT_THROW(store_->Add("bob", {"admin"}, "short"), Error);
  EXPECT_THROW(store_->Add("bad name", {"admin"}, kPassword), Error);
}

TEST_F(UsersTest, LoginSuccessGivesMfaSessionIdentity) {
  const auto t = kT0 + seconds(10);
  const AuthResult r = Login(kPassword, Code(t), t);
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.identity->method, AuthMethod::kSession);
  EXPECT_EQ(r.identity->name, "alice");
  EXPECT_EQ(r.identity->roles, std::vector<std::string>{"admin"});
  EXPECT_TRUE(r.identity->mfa);
}

TEST_F(UsersTest, TotpWindowAndReplay) {
  const auto t = kT0 + seconds(3000);
  EXPECT_EQ(Login(kPassword, Code(t, -3), t).reason, "bad_totp");
  EXPECT_EQ(Login(kPassword, Code(t, -2), t + seconds(2)).reason, "bad_totp");
  // Past the throttle's delays (1 s, 2 s) from here on.
  const auto later = t + seconds(10);
  ASSERT_TRUE(Login(kPassword, Code(later, -1), later).ok());
  EXPECT_EQ(Login(kPassword, Code(later, -1), later + seconds(5)).reason, "replayed_totp");
  const auto t2 = later + seconds(30);
  ASSERT_TRUE(Login(kPassword, Code(t2, +1), t2).ok());  // clock skew: one step ahead
  // A step before the last accepted one is a replay too, even if never used.
  EXPECT_EQ(Login(kPassword, Code(t2, 0), t2 + seconds(5)).reason, "replayed_totp");
}

TEST_F(UsersTest, CodesFromOathtool) {
  if (::access("/usr/bin/oathtool", X_OK) != 0) GTEST_SKIP() << "oathtool is not installed";
  const std::string b32 = Base32Encode(secret_);
  auto oath = [&](const char* when) {
    const auto run = testing::RunProcess("/usr/bin/oathtool", {"--totp", "-b", b32, "--now", when});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return run.out.substr(0, run.out.find('\n'));
  };
  const auto now = kT0 + seconds(15);  // 14:00:15
  EXPECT_TRUE(Login(kPassword, oath("2026-12-04 14:00:10 UTC"), now).ok());
  EXPECT_EQ(Login(kPassword, oath("2026-12-04 14:00:10 UTC"), now + seconds(1)).reason,
            "replayed_totp");
  EXPECT_EQ(Login(kPassword, oath("2026-12-04 13:58:40 UTC"), now + seconds(30)).reason,
            "bad_totp");  // 3 steps before now + 30 s
  EXPECT_TRUE(Login(kPassword, oath("2026-12-04 14:00:35 UTC"), now + seconds(60)).ok());
}

TEST_F(UsersTest, BadPasswordAndUnknownUserLookAlikeAndCostTheSame) {
  const auto t = kT0 + seconds(100);
  const AuthResult wrong = Login("not the password", Code(t), t);
  const AuthResult unknown = Login(kPassword, Code(t), t, "mallory", "10.0.0.2");
  EXPECT_EQ(wrong.reason, "bad_password");
  EXPECT_EQ(unknown.reason, "bad_password");
  EXPECT_EQ(wrong.message, unknown.message);
  EXPECT_EQ(store_->argon2_verifications(), 2u);
  EXPECT_EQ(Login(kPassword, "00000", t + seconds(9), "alice", "10.0.0.3").reason, "malformed");
  EXPECT_EQ(Login(kPassword, "abcdef", t + seconds(9), "alice", "10.0.0.3").reason, "malformed");
  EXPECT_EQ(Login("", Code(t), t + seconds(9), "alice", "10.0.0.3").reason, "malformed");
  EXPECT_EQ(Login(kPassword, Code(t), t + seconds(9), "", "10.0.0.3").reason, "malformed");
  EXPECT_EQ(
      Login(std::string(kMaxPasswordBytes + 1, 'x'), Code(t), t + seconds(9), "alice", "10.0.0.3")
          .reason,
      "malformed");
  EXPECT_EQ(store_->argon2_verifications(), 2u);
}

TEST_F(UsersTest, ExponentialDelayThenLockout) {
  auto t = kT0 + seconds(1000);
  const int expected_delay[] = {1, 2, 4, 8};
  for (int delay : expected_delay) {
    EXPECT_EQ(Login("wrong password!", Code(t), t).reason, "bad_password");
    const AuthResult refused = Login(kPassword, Code(t), t);  // even the right credentials
    EXPECT_EQ(refused.reason, "locked_out");
    EXPECT_EQ(refused.retry_after_s, delay);
    t += seconds(delay);
  }
  EXPECT_EQ(Login("wrong password!", Code(t), t).reason, "bad_password");  // 5th: lockout
  const AuthResult locked = Login(kPassword, Code(t), t + seconds(60));
  EXPECT_EQ(locked.reason, "locked_out");
  EXPECT_EQ(locked.retry_after_s, 15 * 60 - 60);
  // Another address is locked out too (per user), but after the lockout the user gets in.
  EXPECT_EQ(Login(kPassword, Code(t), t + seconds(61), "alice", "10.9.9.9").reason, "locked_out");
  t += seconds(15 * 60);
  ASSERT_TRUE(Login(kPassword, Code(t), t).ok());
  // Success reset the user's counter (not the address's): one failure costs 1 s again.
  const std::string fresh = "10.0.0.7";
  EXPECT_EQ(Login("wrong password!", Code(t), t + seconds(40), "alice", fresh).reason,
            "bad_password");
  EXPECT_EQ(Login(kPassword, Code(t), t + seconds(40), "alice", fresh).retry_after_s, 1);
}

TEST(SecurityLoginThrottle, PerAddressAndBoundedMemory) {
  LoginThrottleOptions o;
  o.address_lockout_after = 3;
  o.max_entries = 4;
  LoginThrottle throttle(o);
  auto t = kT0;
  // Guessing across users from one address: the address locks.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(throttle.RetryAfter(Numbered("u", i), "1.2.3.4", t), 0);
    throttle.RecordFailure(Numbered("u", i), "1.2.3.4", t);
    t += seconds(10);
  }
  EXPECT_EQ(throttle.RetryAfter("fresh", "1.2.3.4", t), 15 * 60 - 10);
  EXPECT_EQ(throttle.RetryAfter("fresh", "5.6.7.8", t), 0);
  throttle.RecordSuccess("u0");  // a success does not unlock the address
  EXPECT_GT(throttle.RetryAfter("u0", "1.2.3.4", t), 0);
  for (int i = 0; i < 100; ++i) {
    throttle.RecordFailure(Numbered("x", i), Numbered("9.9.9.", i), t);
  }
  EXPECT_LE(throttle.entries(), 8u);
  // Forgotten after forget_after.
  EXPECT_EQ(throttle.RetryAfter("x99", "9.9.9.99", t + o.forget_after + seconds(1)), 0);
}

TEST(SecurityLoginThrottle, DelayIsCapped) {
  LoginThrottleOptions o;
  o.user_lockout_after = 100;
  o.address_lockout_after = 100;
  o.max_delay = seconds(10);
  LoginThrottle throttle(o);
  auto t = kT0;
  for (int i = 0; i < 20; ++i) {
    throttle.RecordFailure("u", "a", t);
    EXPECT_LE(throttle.RetryAfter("u", "a", t), 10);
    t += seconds(11);
  }
  throttle.RecordFailure("u", "a", t);
  EXPECT_EQ(throttle.RetryAfter("u", "a", t), 10);
}

TEST_F(UsersTest, ManagementIsSeenByAnotherStore) {
  auto t = kT0 + seconds(5000);
  UserStore cli(path_);
  const std::string new_password = "another long passphrase";
  cli.SetPassword("alice", new_password);
  EXPECT_EQ(Login(kPassword, Code(t), t).reason, "bad_password");
  t += seconds(60);
  ASSERT_TRUE(Login(new_password, Code(t), t).ok());
  const std::string old_secret = secret_;
  secret_ = *Base32Decode(cli.ResetTotp("alice").secret_base32);
  ASSERT_NE(secret_, old_secret);
  t += seconds(60);
  EXPECT_EQ(store_->Login("alice", new_password, TotpCode(old_secret, TotpStep(t)), "c", t).reason,
            "bad_totp");
  t += seconds(60);
  ASSERT_TRUE(Login(new_password, Code(t), t).ok());
  cli.Remove("alice");
  t += seconds(60);
  EXPECT_EQ(Login(new_password, Code(t), t).reason, "bad_password");
  EXPECT_THROW(cli.Remove("alice"), Error);
  EXPECT_THROW(cli.ResetTotp("alice"), Error);
}

TEST_F(UsersTest, FileRules) {
  ::chmod(path_.c_str(), 0644);
  try {
    UserStore s(path_);
    ADD_FAILURE() << "a 0644 users file was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
  }
  // A running store fails closed when the file becomes unusable.
  const auto t = kT0 + seconds(7000);
  EXPECT_EQ(Login(kPassword, Code(t), t).reason, "bad_password");
  EXPECT_NE(store_->last_reload_error().find("too open"), std::string::npos);
  try {
    UserStore s((dir_ / "missing.json").string());
    ADD_FAILURE() << "a missing users file was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

}  // namespace
}  // namespace cvdeploy::security
