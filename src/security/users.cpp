// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/users.h"

#include <algorithm>

#include "cvdeploy/error.h"
#include "cvdeploy/security/crypto.h"
#include "cvdeploy/security/secret_file.h"
#include "security/totp.h"

namespace cvdeploy::security {
namespace {

using Clock = std::chrono::system_clock;
using nlohmann::json;

const char kBadCredentials[] = "invalid user name, password or one-time code";

size_t CodePoints(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

bool EqualIgnoringAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

TotpEnrollment NewTotp(const std::string& name, std::string* stored) {
  *stored = Base32Encode(RandomBytes(kTotpSecretBytes));
  return {*stored, TotpUri(name, *stored)};
}

json UserToJson(const UserRecord& u) {
  return json{{"name", u.name},
              {"roles", u.roles},
              {"password_hash", u.password_hash},
              {"totp_secret", u.totp_secret},
              {"created", FormatUtc(u.created)}};
}

UserRecord UserFromJson(const json& j, const std::string& at) {
  if (!j.is_object()) throw BadInput(at + ": not an object");
  UserRecord u;
  u.name = StringField(j, "name", at);
  if (!IsValidStoreName(u.name)) throw BadInput(at + ": invalid user name");
  u.roles = StringList(j, "roles", at);
  u.password_hash = StringField(j, "password_hash", at);
  if (u.password_hash.rfind("$argon2id$", 0) != 0) {
    throw BadInput(at + ": 'password_hash' is not argon2id");
  }
  u.totp_secret = StringField(j, "totp_secret", at);
  const auto secret = Base32Decode(u.totp_secret);
  if (!secret || secret->size() < 10) {
    throw BadInput(at + ": 'totp_secret' is not base32 of at least 10 bytes");
  }
  auto created = TimeField(j, "created", at);
  if (!created) throw BadInput(at + ": 'created' is missing");
  u.created = *created;
  return u;
}

std::vector<UserRecord> ParseUsersFile(const std::string& path, const std::string& text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    throw BadInput(path + ": not a cvdeploy users file (JSON object expected)");
  }
  if (doc.value("version", 0) != 1) throw BadInput(path + ": unsupported users file version");
  if (!doc.contains("users") || !doc["users"].is_array()) {
    throw BadInput(path + ": 'users' is missing or not a list");
  }
  std::vector<UserRecord> users;
  for (size_t i = 0; i < doc["users"].size(); ++i) {
    const std::string at = path + ": users[" + std::to_string(i) + "]";
    users.push_back(UserFromJson(doc["users"][i], at));
    for (size_t k = 0; k + 1 < users.size(); ++k) {
      if (users[k].name == users.back().name) throw BadInput(at + ": duplicate user name");
    }
  }
  return users;
}

// Removes a user name from the in-flight set when a login attempt ends.
class InFlight {
 public:
  InFlight(std::mutex& mu, std::set<std::string, std::less<>>& set, std::string name)
      : mu_(mu), set_(set), name_(std::move(name)) {}
  ~InFlight() {
    std::lock_guard<std::mutex> lock(mu_);
    set_.erase(name_);
  }

 private:
  std::mutex& mu_;
  std::set<std::string, std::less<>>& set_;
  std::string name_;
};

}  // namespace

void CheckPasswordRules(std::string_view user, std::string_view password) {
  if (password.size() > kMaxPasswordBytes) {
    throw InvalidArgument("password: longer than " + std::to_string(kMaxPasswordBytes) + " bytes");
  }
  if (CodePoints(password) < kMinPasswordChars) {
    throw InvalidArgument("password: shorter than " + std::to_string(kMinPasswordChars) +
                          " characters");
  }
  if (EqualIgnoringAsciiCase(password, user)) {
    throw InvalidArgument("password: must not be the user name");
  }
}

UserStore::UserStore(std::string path, UserStoreOptions options)
    : path_(std::move(path)), options_(options), throttle_(options.throttle) {
  std::lock_guard<std::mutex> lock(mu_);
  if (options_.create_if_missing && !StampOf(path_).exists) return;
  LoadLocked();
}

void UserStore::LoadLocked() {
  const FileStamp before = StampOf(path_);
  users_ = ParseUsersFile(path_, ReadSecretFile(path_));
  stamp_ = before;
  reload_error_.clear();
}

void UserStore::SaveLocked() {
  json users = json::array();
  for (const auto& u : users_) users.push_back(UserToJson(u));
  WriteSecretFile(path_, json{{"version", 1}, {"users", users}}.dump(2) + "\n");
  stamp_ = StampOf(path_);
}

// Writers reread the file under its lock (another writer may have changed it), strictly: an
// unusable file is an error, never overwritten.
void UserStore::RefreshForWriteLocked() {
  if (StampOf(path_).exists) {
    LoadLocked();
    return;
  }
  if (!options_.create_if_missing) throw NotFound(path_ + ": no such file");
  users_.clear();
  stamp_ = FileStamp{};
}

UserRecord* UserStore::FindLocked(std::string_view name) {
  for (auto& u : users_) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

void UserStore::ReloadIfChanged() {
  const FileStamp now = StampOf(path_);
  std::lock_guard<std::mutex> lock(mu_);
  if (now == stamp_) return;
  try {
    LoadLocked();
  } catch (const std::exception& e) {
    users_.clear();  // fail closed: an unusable users file lets nobody in
    stamp_ = now;
    reload_error_ = e.what();
  }
}

std::string UserStore::last_reload_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reload_error_;
}

TotpEnrollment UserStore::Add(const std::string& name, const std::vector<std::string>& roles,
                              std::string_view password, Clock::time_point now) {
  CheckStoreName("user", name);
  if (roles.empty()) throw InvalidArgument("user '" + name + "': at least one role");
  CheckPasswordRules(name, password);
  UserRecord u;
  u.name = name;
  u.roles = roles;
  u.password_hash = HashPassword(password);
  u.created = std::chrono::time_point_cast<std::chrono::seconds>(now);
  TotpEnrollment enrollment = NewTotp(name, &u.totp_secret);
  StoreLock file_lock(path_);
  std::lock_guard<std::mutex> lock(mu_);
  RefreshForWriteLocked();
  if (FindLocked(name)) throw InvalidArgument("user '" + name + "' already exists in " + path_);
  users_.push_back(std::move(u));
  SaveLocked();
  return enrollment;
}

void UserStore::Remove(const std::string& name) {
  StoreLock file_lock(path_);
  std::lock_guard<std::mutex> lock(mu_);
  RefreshForWriteLocked();
  auto it = std::find_if(users_.begin(), users_.end(),
                         [&](const UserRecord& u) { return u.name == name; });
  if (it == users_.end()) throw NotFound("no user named '" + name + "' in " + path_);
  users_.erase(it);
  SaveLocked();
}

TotpEnrollment UserStore::ResetTotp(const std::string& name) {
  StoreLock file_lock(path_);
  std::lock_guard<std::mutex> lock(mu_);
  RefreshForWriteLocked();
  UserRecord* u = FindLocked(name);
  if (!u) throw NotFound("no user named '" + name + "' in " + path_);
  TotpEnrollment enrollment = NewTotp(name, &u->totp_secret);
  SaveLocked();
  return enrollment;
}

void UserStore::SetPassword(const std::string& name, std::string_view password) {
  CheckPasswordRules(name, password);
  const std::string hash = HashPassword(password);
  StoreLock file_lock(path_);
  std::lock_guard<std::mutex> lock(mu_);
  RefreshForWriteLocked();
  UserRecord* u = FindLocked(name);
  if (!u) throw NotFound("no user named '" + name + "' in " + path_);
  u->password_hash = hash;
  SaveLocked();
}

std::vector<UserSummary> UserStore::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<UserSummary> out;
  for (const auto& u : users_) out.push_back({u.name, u.roles, u.created});
  return out;
}

AuthResult UserStore::CheckTotpLocked(const UserRecord& user, std::string_view totp,
                                      Clock::time_point now) {
  const auto secret = Base32Decode(user.totp_secret);
  const int64_t step = TotpStep(now);
  int64_t matched = -1;
  // All three candidates are compared (no early exit) in constant time.
  for (int64_t s = step - 1; s <= step + 1; ++s) {
    if (s >= 0 && secret && ConstantTimeEqual(TotpCode(*secret, s), totp)) matched = s;
  }
  if (matched < 0) return AuthResult::Failure("bad_totp", kBadCredentials);
  auto it = last_step_.find(user.name);
  if (it != last_step_.end() && it->second.first == user.totp_secret &&
      matched <= it->second.second) {
    return AuthResult::Failure("replayed_totp", kBadCredentials);
  }
  last_step_[user.name] = {user.totp_secret, matched};
  Identity id;
  id.method = AuthMethod::kSession;
  id.name = user.name;
  id.roles = user.roles;
  id.mfa = true;
  return AuthResult::Success(std::move(id));
}

AuthResult UserStore::Login(std::string_view user, std::string_view password, std::string_view totp,
                            const std::string& client, Clock::time_point now) {
  if (!IsValidStoreName(user) || password.empty() || password.size() > kMaxPasswordBytes ||
      !IsWellFormedTotpCode(totp)) {
    return AuthResult::Failure("malformed",
                               "a login needs a user name, a password and a 6-digit code");
  }
  const std::string name(user);
  const int retry = throttle_.RetryAfter(name, client, now);
  if (retry > 0) {
    return AuthResult::Failure("locked_out", "too many failed logins; try again later", retry);
  }
  ReloadIfChanged();
  std::string hash;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // One attempt per user at a time: parallel guesses cannot outrun the throttle.
    if (!in_flight_.insert(name).second) {
      return AuthResult::Failure("locked_out", "a login for this user is in progress", 1);
    }
    if (const UserRecord* u = FindLocked(name)) hash = u->password_hash;
  }
  InFlight in_flight(mu_, in_flight_, name);
  const bool known = !hash.empty();
  const bool password_ok = VerifyPassword(known ? hash : DummyPasswordHash(), password) && known;
  ++argon2_verifications_;
  AuthResult result = AuthResult::Failure("bad_password", kBadCredentials);
  if (password_ok) {
    std::lock_guard<std::mutex> lock(mu_);
    const UserRecord* u = FindLocked(name);
    // The user may have been removed or given a new password meanwhile.
    if (u && u->password_hash == hash) result = CheckTotpLocked(*u, totp, now);
  }
  if (result.ok()) {
    throttle_.RecordSuccess(name);
  } else {
    throttle_.RecordFailure(name, client, now);
  }
  return result;
}

}  // namespace cvdeploy::security
