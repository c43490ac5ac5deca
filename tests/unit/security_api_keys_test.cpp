// SPDX-License-Identifier: Apache-2.0
// ApiKeyStore: the key format, what the file holds, Authenticate's outcomes (malformed,
// unknown, revoked, expired), the verified-key cache (argon2id once per key), reload on
// change (revocation by another writer acts at once; an unusable file fails closed), and
// last_used persistence that never overwrites another writer's change.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cvdeploy/error.h"
#include "cvdeploy/security/api_keys.h"
#include "cvdeploy/security/crypto.h"

namespace cvdeploy::security {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;
using std::chrono::hours;

class ApiKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cvdeploy_keys_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "keys.json").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  ApiKeyStoreOptions Creating() {
    ApiKeyStoreOptions o;
    o.create_if_missing = true;
    return o;
  }
  std::string FileText() {
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static ApiKeyStore::NewKey Key(const std::string& name,
                                 std::optional<std::chrono::seconds> ttl = std::nullopt) {
    return {name, {"inferencer"}, {"yolo*"}, ttl};
  }

  fs::path dir_;
  std::string path_;
};

ErrorCode CodeOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no cvdeploy::Error thrown";
  return ErrorCode::kRuntime;
}

TEST_F(ApiKeysTest, KeyFormatAndFileHoldsNoKeyMaterial) {
  ApiKeyStore store(path_, Creating());
  const std::string key = store.Create(Key("ci-bot"));
  ASSERT_EQ(key.size(), 64u) << key;
  EXPECT_EQ(key.rfind("cvd_", 0), 0u);
  const auto id = ApiKeyId(key);
  ASSERT_TRUE(id);
  EXPECT_EQ(key.substr(4, 16), *id);
  const std::string secret = key.substr(21);
  const std::string text = FileText();
  EXPECT_EQ(text.find(key), std::string::npos);
  EXPECT_EQ(text.find(secret), std::string::npos);
  EXPECT_NE(text.find("$argon2id$"), std::string::npos);
  EXPECT_NE(text.find("\"ci-bot\""), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(store.Create(Key("other")), key);
}

TEST_F(ApiKeysTest, AuthenticateGivesIdentityAndCachesVerification) {
  ApiKeyStore store(path_, Creating());
  const std::string key = store.Create(Key("ci-bot", hours(24)));
  const auto now = Clock::now();
  EXPECT_EQ(store.argon2_verifications(), 0u);
  const AuthResult first = store.Authenticate(key, now);
  ASSERT_TRUE(first.ok()) << first.reason;
  EXPECT_EQ(store.argon2_verifications(), 1u);
  const Identity& id = *first.identity;
  EXPECT_EQ(id.method, AuthMethod::kApiKey);
  EXPECT_EQ(id.name, "ci-bot");
  EXPECT_EQ(id.roles, std::vector<std::string>{"inferencer"});
  EXPECT_EQ(id.models, std::vector<std::string>{"yolo*"});
  EXPECT_FALSE(id.mfa);
  ASSERT_TRUE(id.expires);
  EXPECT_GT(*id.expires, now);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(store.Authenticate(key, now).ok());
  EXPECT_EQ(store.argon2_verifications(), 1u) << "a cached key must not run argon2id again";
  EXPECT_EQ(store.cache_entries(), 1u);
}

TEST_F(ApiKeysTest, UnknownIdsAndRepeatedWrongSecretsDoNotRunArgon2) {
  ApiKeyStore store(path_, Creating());
  const std::string key = store.Create(Key("ci-bot"));
  std::string wrong_secret = key;
  wrong_secret[30] = wrong_secret[30] == 'A' ? 'B' : 'A';
  std::string unknown_id = key;
  unknown_id[5] = unknown_id[5] == 'a' ? 'b' : 'a';
  const auto now = Clock::now();
  auto refused = [&](const std::string& bad, Clock::time_point when) {
    const AuthResult r = store.Authenticate(bad, when);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.reason, "unknown_key");
    EXPECT_EQ(r.message.find(bad), std::string::npos);
  };
  // An id that is not in the file costs no argon2id, however often it is tried.
  for (int i = 0; i < 3; ++i) refused(unknown_id, now);
  EXPECT_EQ(store.argon2_verifications(), 0u);
  // A wrong secret for a known id runs argon2id once; within the back-off the id refuses
  // further uncached attempts, the right key included (it was never cached).
  refused(wrong_secret, now);
  EXPECT_EQ(store.argon2_verifications(), 1u);
  refused(wrong_secret, now + std::chrono::milliseconds(500));
  refused(key, now + std::chrono::milliseconds(500));
  EXPECT_EQ(store.argon2_verifications(), 1u);
  // After it, the right key verifies and is cached; a wrong secret then no longer affects it.
  EXPECT_TRUE(store.Authenticate(key, now + std::chrono::seconds(2)).ok());
  EXPECT_EQ(store.argon2_verifications(), 2u);
  refused(wrong_secret, now + std::chrono::seconds(3));
  EXPECT_TRUE(store.Authenticate(key, now + std::chrono::seconds(3)).ok());
  EXPECT_EQ(store.argon2_verifications(), 3u);
  EXPECT_EQ(store.cache_entries(), 1u);
}

TEST_F(ApiKeysTest, WithoutHashingDecidesAllButAFirstCheck) {
  ApiKeyStore store(path_, Creating());
  const std::string key = store.Create(Key("ci-bot"));
  const auto now = Clock::now();
  // Never verified: the full check (argon2id) is needed.
  EXPECT_FALSE(store.AuthenticateWithoutHashing(key, now).has_value());
  std::string unknown_id = key;
  unknown_id[5] = unknown_id[5] == 'a' ? 'b' : 'a';
  auto unknown = store.AuthenticateWithoutHashing(unknown_id, now);
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(unknown->reason, "unknown_key");
  auto malformed = store.AuthenticateWithoutHashing("cvd_nope", now);
  ASSERT_TRUE(malformed.has_value());
  EXPECT_EQ(malformed->reason, "malformed");
  EXPECT_EQ(store.argon2_verifications(), 0u);
  ASSERT_TRUE(store.Authenticate(key, now).ok());
  EXPECT_EQ(store.argon2_verifications(), 1u);
  // Cached: decided without hashing.
  auto cached = store.AuthenticateWithoutHashing(key, now);
  ASSERT_TRUE(cached.has_value());
  EXPECT_TRUE(cached->ok());
  EXPECT_EQ(store.argon2_verifications(), 1u);
  // A change of the file empties the cache: the revoked key is checked once more, refused,
  // and from then on refused without hashing.
  store.Revoke("ci-bot", now);
  EXPECT_FALSE(store.AuthenticateWithoutHashing(key, now).has_value());
  EXPECT_EQ(store.Authenticate(key, now).reason, "revoked");
  auto revoked = store.AuthenticateWithoutHashing(key, now);
  ASSERT_TRUE(revoked.has_value());
  EXPECT_EQ(revoked->reason, "revoked");
  EXPECT_EQ(store.argon2_verifications(), 2u);
}

TEST_F(ApiKeysTest, MalformedKeysAreRefusedWithoutArgon2) {
  ApiKeyStore store(path_, Creating());
  const std::string key = store.Create(Key("ci-bot"));
  std::string upper_id = key;
  upper_id[4] = 'A';
  std::string no_sep = key;
  no_sep[20] = 'x';
  const std::string bad[] = {"",
                             "Bearer " + key,
                             "cvx_" + key.substr(4),
                             key + "A",
                             key.substr(0, 63),
                             upper_id,
                             no_sep,
                             key.substr(0, 60) + "+/==",
                             key.substr(0, 63) + "B"};  // non-canonical last character
  for (const auto& b : bad) {
    const AuthResult r = store.Authenticate(b, Clock::now());
    EXPECT_EQ(r.reason, "malformed") << b;
    EXPECT_FALSE(ApiKeyId(b)) << b;
  }
  EXPECT_EQ(store.argon2_verifications(), 0u);
}

TEST_F(ApiKeysTest, RevokeActsAtOnceOnTheSameAndOtherStores) {
  ApiKeyStore server(path_, Creating());
  const std::string a = server.Create(Key("a"));
  const std::string b = server.Create(Key("b"));
  ASSERT_TRUE(server.Authenticate(a, Clock::now()).ok());
  ASSERT_TRUE(server.Authenticate(b, Clock::now()).ok());
  server.Revoke("a");  // same object: the cached entry sees the record
  EXPECT_EQ(server.Authenticate(a, Clock::now()).reason, "revoked");
  {
    ApiKeyStore cli(path_);  // as `cvdeploy keys revoke` does, in another store
    cli.Revoke("b");
  }
  EXPECT_EQ(server.Authenticate(b, Clock::now()).reason, "revoked");
  EXPECT_EQ(CodeOf([&] { server.Revoke("nope"); }), ErrorCode::kNotFound);
  const auto list = server.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_TRUE(list[0].revoked && list[1].revoked);
  EXPECT_TRUE(list[0].revoked_at);
}

TEST_F(ApiKeysTest, ExpiredKeyRefused) {
  ApiKeyStore store(path_, Creating());
  const auto now = Clock::now();
  const std::string key = store.Create(Key("short", hours(1)), now);
  EXPECT_TRUE(store.Authenticate(key, now + std::chrono::minutes(59)).ok());
  EXPECT_EQ(store.Authenticate(key, now + hours(2)).reason, "expired");
  const std::string forever = store.Create(Key("forever"), now);
  EXPECT_TRUE(store.Authenticate(forever, now + hours(24 * 3650)).ok());
}

TEST_F(ApiKeysTest, NamesAndRolesAreChecked) {
  ApiKeyStore store(path_, Creating());
  store.Create(Key("ci-bot"));
  EXPECT_EQ(CodeOf([&] { store.Create(Key("ci-bot")); }), ErrorCode::kInvalidArgument);
  for (const std::string& name :
       std::vector<std::string>{"", "a b", "a/b", std::string(65, 'a'), "cvd_x"}) {
    EXPECT_EQ(CodeOf([&] { store.Create(Key(name)); }), ErrorCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(CodeOf([&] {
              store.Create({"noroles", {}, {}, std::nullopt});
            }),
            ErrorCode::kInvalidArgument);
  store.Create(Key(std::string(64, 'a')));
  EXPECT_EQ(store.List().size(), 2u);
}

TEST_F(ApiKeysTest, FileRulesMissingTooOpenCorrupt) {
  EXPECT_EQ(CodeOf([&] { ApiKeyStore s(path_); }), ErrorCode::kNotFound);
  { ApiKeyStore(path_, Creating()).Create(Key("a")); }
  ::chmod(path_.c_str(), 0644);
  try {
    ApiKeyStore s(path_);
    ADD_FAILURE() << "a 0644 keys file was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
    EXPECT_NE(std::string(e.what()).find(path_), std::string::npos);
  }
  ::chmod(path_.c_str(), 0600);
  { std::ofstream(path_) << "{\"version\":1,\"keys\":[{\"name\":\"a\"}]}"; }
  EXPECT_EQ(CodeOf([&] { ApiKeyStore s(path_); }), ErrorCode::kBadInput);
  { std::ofstream(path_) << "not json"; }
  EXPECT_EQ(CodeOf([&] { ApiKeyStore s(path_); }), ErrorCode::kBadInput);
}

TEST_F(ApiKeysTest, WritersNeverOverwriteAnUnusableFile) {
  ApiKeyStore store(path_, Creating());
  store.Create(Key("a"));
  { std::ofstream(path_) << "{ hand-edited, broken"; }
  EXPECT_EQ(CodeOf([&] { store.Create(Key("b")); }), ErrorCode::kBadInput);
  EXPECT_EQ(CodeOf([&] { store.Revoke("a"); }), ErrorCode::kBadInput);
  EXPECT_EQ(FileText(), "{ hand-edited, broken");
}

TEST_F(ApiKeysTest, UnusableFileOnReloadFailsClosed) {
  ApiKeyStore store(path_, Creating());
  const std::string key = store.Create(Key("a"));
  ASSERT_TRUE(store.Authenticate(key, Clock::now()).ok());
  ::chmod(path_.c_str(), 0644);
  const AuthResult r = store.Authenticate(key, Clock::now());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.reason, "unknown_key");
  EXPECT_NE(store.last_reload_error().find("too open"), std::string::npos);
  ::chmod(path_.c_str(), 0600);
  EXPECT_TRUE(store.Authenticate(key, Clock::now()).ok());
  EXPECT_EQ(store.last_reload_error(), "");
}

TEST_F(ApiKeysTest, LastUsedIsPersistedButNeverOverAnotherWritersChange) {
  ApiKeyStoreOptions options = Creating();
  options.last_used_interval = std::chrono::seconds(60);
  ApiKeyStore server(path_, options);
  const std::string a = server.Create(Key("a"));
  const std::string b = server.Create(Key("b"));
  const auto now = Clock::now();
  ASSERT_TRUE(server.Authenticate(a, now).ok());  // within the interval: memory only
  EXPECT_FALSE(ApiKeyStore(path_).List()[0].last_used);
  ASSERT_TRUE(server.Authenticate(a, now + std::chrono::seconds(61)).ok());  // flushed
  EXPECT_TRUE(ApiKeyStore(path_).List()[0].last_used);
  ASSERT_TRUE(server.Authenticate(b, now + std::chrono::seconds(62)).ok());  // dirty again
  { ApiKeyStore(path_).Revoke("a"); }  // another writer changes the file
  // The server has not reread the file yet: the flush must not write its stale copy.
  EXPECT_FALSE(server.FlushLastUsed());
  EXPECT_TRUE(ApiKeyStore(path_).List()[0].revoked);
  EXPECT_EQ(server.Authenticate(a, now + std::chrono::seconds(200)).reason, "revoked");
}

TEST_F(ApiKeysTest, CacheIsBounded) {
  ApiKeyStoreOptions options = Creating();
  options.max_cache_entries = 2;
  ApiKeyStore store(path_, options);
  std::vector<std::string> keys;
  for (int i = 0; i < 4; ++i) keys.push_back(store.Create(Key("k" + std::to_string(i))));
  for (const auto& k : keys) {
    EXPECT_TRUE(store.Authenticate(k, Clock::now()).ok());
    EXPECT_LE(store.cache_entries(), 2u);
  }
}

TEST_F(ApiKeysTest, ConcurrentAuthenticateIsConsistent) {
  ApiKeyStore store(path_, Creating());
  const std::string key = store.Create(Key("a"));
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) ok += store.Authenticate(key, Clock::now()).ok() ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 80);
  EXPECT_LE(store.argon2_verifications(), 4u);
}

TEST(SecurityApiKeyTtl, ParsesUnitsAndRefusesTheRest) {
  EXPECT_EQ(ParseTtl("90d"), std::chrono::seconds(90 * 86400));
  EXPECT_EQ(ParseTtl("12h"), std::chrono::seconds(12 * 3600));
  EXPECT_EQ(ParseTtl("30m"), std::chrono::seconds(1800));
  EXPECT_EQ(ParseTtl("2w"), std::chrono::seconds(14 * 86400));
  EXPECT_EQ(ParseTtl("never"), std::nullopt);
  for (const char* bad : {"", "d", "0d", "-1d", "1.5h", "5y", "90", "Never", "99999999d"}) {
    EXPECT_THROW(ParseTtl(bad), Error) << bad;
  }
}

}  // namespace
}  // namespace cvdeploy::security
