// SPDX-License-Identifier: Apache-2.0
// Built-in users for standalone deployments: password (argon2id) plus TOTP (RFC 6238) login.
//
// The users file (JSON, mode 0600, see secret_file.h) holds per user: name, roles,
// password_hash (argon2id), totp_secret (base32: it must be recoverable to check codes, so
// the file itself is the secret), created. Passwords: at least 12 characters (Unicode code
// points), at most 4096 bytes, not the user name; no composition rules (NIST SP 800-63B).
//
// Login checks, in this order: well-formedness ("malformed"), the LoginThrottle for the user
// and the client address ("locked_out", retry_after_s), one attempt per user at a time
// ("locked_out", 1 s), the password ("bad_password", also for an unknown user, after the same
// argon2id work against a dummy hash), the TOTP code of the current 30 s step or one step
// either side ("bad_totp"), and that the step is later than the user's last accepted one
// ("replayed_totp"). Each bad_password, bad_totp and replayed_totp counts against the throttle.
// The last accepted step is kept in memory only (a restart forgets it; a code stays valid
// for 90 s at most).
//
// UserStore is thread-safe. Login never throws for bad credentials; file problems and
// invalid management requests throw cvdeploy::Error (messages never hold a password, secret
// or code).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cvdeploy/security/identity.h"
#include "cvdeploy/security/login_throttle.h"
#include "cvdeploy/security/store_file.h"

namespace cvdeploy::security {

constexpr size_t kMinPasswordChars = 12;
constexpr size_t kMaxPasswordBytes = 4096;

struct UserRecord {
  std::string name;
  std::vector<std::string> roles;
  std::string password_hash;  // argon2id
  std::string totp_secret;    // base32 of 20 bytes
  std::chrono::system_clock::time_point created;
};

struct UserSummary {  // what `users list` shows: no secret
  std::string name;
  std::vector<std::string> roles;
  std::chrono::system_clock::time_point created;
};

// A new TOTP secret, shown once: base32 and the otpauth:// URI for authenticator apps.
struct TotpEnrollment {
  std::string secret_base32, uri;
};

struct UserStoreOptions {
  bool create_if_missing = false;  // as ApiKeyStoreOptions
  LoginThrottleOptions throttle;
};

// Throws kInvalidArgument when `password` breaks the rules above (the message never holds it).
void CheckPasswordRules(std::string_view user, std::string_view password);

class UserStore {
 public:
  using Clock = std::chrono::system_clock;

  // Loads the file now; throws as ApiKeyStore's constructor (kNotFound, kPermissionDenied,
  // kBadInput), naming the file.
  explicit UserStore(std::string path, UserStoreOptions options = {});
  UserStore(const UserStore&) = delete;
  UserStore& operator=(const UserStore&) = delete;

  // Management (the CLI); each saves the file under its lock. kInvalidArgument for a bad or
  // duplicate name, no role or a password that breaks the rules; kNotFound for an unknown user.
  TotpEnrollment Add(const std::string& name, const std::vector<std::string>& roles,
                     std::string_view password, Clock::time_point now = Clock::now());
  void Remove(const std::string& name);
  TotpEnrollment ResetTotp(const std::string& name);
  void SetPassword(const std::string& name, std::string_view password);
  std::vector<UserSummary> List() const;

  // Success: Identity{kSession, name, roles, mfa=true}. Failure reasons: "malformed",
  // "locked_out", "bad_password", "bad_totp", "replayed_totp". `client` is the address the
  // throttle counts per.
  AuthResult Login(std::string_view user, std::string_view password, std::string_view totp,
                   const std::string& client, Clock::time_point now);

  // As ApiKeyStore::ReloadIfChanged (a stat; fail closed on an unusable file). Login calls it.
  void ReloadIfChanged();
  std::string last_reload_error() const;

  uint64_t argon2_verifications() const { return argon2_verifications_.load(); }
  LoginThrottle& throttle() { return throttle_; }
  const std::string& path() const { return path_; }

 private:
  void LoadLocked();
  void SaveLocked();
  void RefreshForWriteLocked();
  UserRecord* FindLocked(std::string_view name);
  AuthResult CheckTotpLocked(const UserRecord& user, std::string_view totp, Clock::time_point now);

  const std::string path_;
  const UserStoreOptions options_;
  LoginThrottle throttle_;
  mutable std::mutex mu_;
  std::vector<UserRecord> users_;
  FileStamp stamp_;
  std::string reload_error_;
  // name -> (secret, last accepted step): a code of a step at or before it is a replay.
  std::unordered_map<std::string, std::pair<std::string, int64_t>> last_step_;
  std::set<std::string, std::less<>> in_flight_;  // users with a login being checked
  std::atomic<uint64_t> argon2_verifications_{0};
};

}  // namespace cvdeploy::security
