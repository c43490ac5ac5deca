// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/api_keys.h"

#include <nlohmann/json.hpp>

#include "cvdeploy/error.h"
#include "cvdeploy/security/crypto.h"
#include "cvdeploy/security/secret_file.h"

namespace cvdeploy::security {
namespace {

using Clock = std::chrono::system_clock;
using nlohmann::json;

constexpr std::string_view kPrefix = "cvd_";
constexpr size_t kIdHexChars = 16;
constexpr size_t kSecretBytes = 32;
constexpr size_t kSecretChars = 43;  // base64url of 32 bytes without padding
constexpr size_t kKeyChars = 4 + kIdHexChars + 1 + kSecretChars;

json RecordToJson(const ApiKeyRecord& r) {
  return json{{"name", r.name},
              {"id", r.id},
              {"hash", r.hash},
              {"roles", r.roles},
              {"models", r.models},
              {"created", FormatUtc(r.created)},
              {"expires", TimeJson(r.expires)},
              {"last_used", TimeJson(r.last_used)},
              {"revoked", r.revoked},
              {"revoked_at", TimeJson(r.revoked_at)}};
}

ApiKeyRecord RecordFromJson(const json& j, const std::string& at) {
  if (!j.is_object()) throw BadInput(at + ": not an object");
  ApiKeyRecord r;
  r.name = StringField(j, "name", at);
  if (!IsValidStoreName(r.name)) throw BadInput(at + ": invalid key name");
  r.id = StringField(j, "id", at);
  if (r.id.size() != kIdHexChars || !HexDecode(r.id)) throw BadInput(at + ": invalid key id");
  r.hash = StringField(j, "hash", at);
  if (r.hash.rfind("$argon2id$", 0) != 0) throw BadInput(at + ": 'hash' is not argon2id");
  r.roles = StringList(j, "roles", at);
  r.models = StringList(j, "models", at);
  auto created = TimeField(j, "created", at);
  if (!created) throw BadInput(at + ": 'created' is missing");
  r.created = *created;
  r.expires = TimeField(j, "expires", at);
  r.last_used = TimeField(j, "last_used", at);
  r.revoked_at = TimeField(j, "revoked_at", at);
  if (j.contains("revoked") && !j["revoked"].is_boolean()) {
    throw BadInput(at + ": 'revoked' is not true or false");
  }
  r.revoked = j.value("revoked", false);
  return r;
}

std::vector<ApiKeyRecord> ParseKeysFile(const std::string& path, const std::string& text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    throw BadInput(path + ": not a cvdeploy keys file (JSON object expected)");
  }
  if (doc.value("version", 0) != 1) throw BadInput(path + ": unsupported keys file version");
  if (!doc.contains("keys") || !doc["keys"].is_array()) {
    throw BadInput(path + ": 'keys' is missing or not a list");
  }
  std::vector<ApiKeyRecord> records;
  for (size_t i = 0; i < doc["keys"].size(); ++i) {
    const std::string at = path + ": keys[" + std::to_string(i) + "]";
    records.push_back(RecordFromJson(doc["keys"][i], at));
    for (size_t k = 0; k + 1 < records.size(); ++k) {
      if (records[k].name == records.back().name || records[k].id == records.back().id) {
        throw BadInput(at + ": duplicate key name or id");
      }
    }
  }
  return records;
}

}  // namespace

std::optional<std::string> ApiKeyId(std::string_view presented) {
  if (presented.size() != kKeyChars || presented.substr(0, kPrefix.size()) != kPrefix) {
    return std::nullopt;
  }
  const std::string_view id = presented.substr(kPrefix.size(), kIdHexChars);
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  if (presented[kPrefix.size() + kIdHexChars] != '_') return std::nullopt;
  const auto secret = Base64UrlDecode(presented.substr(kPrefix.size() + kIdHexChars + 1));
  if (!secret || secret->size() != kSecretBytes) return std::nullopt;
  return std::string(id);
}

std::optional<std::chrono::seconds> ParseTtl(std::string_view text) {
  if (text == "never") return std::nullopt;
  const std::string shown = "expiry '" + std::string(text.substr(0, 32)) + "'";
  if (text.size() < 2 || text.size() > 12) {
    throw InvalidArgument(shown + ": expected a number with a unit (s, m, h, d, w) or 'never'");
  }
  int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    case 'w':
      unit = 7 * 86400;
      break;
    default:
      throw InvalidArgument(shown + ": expected a number with a unit (s, m, h, d, w) or 'never'");
  }
  int64_t n = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') {
      throw InvalidArgument(shown + ": expected a number with a unit (s, m, h, d, w) or 'never'");
    }
    n = n * 10 + (c - '0');
  }
  const int64_t max_seconds = int64_t{100} * 366 * 86400;
  if (n == 0 || n > max_seconds / unit) {
    throw InvalidArgument(shown + ": must be more than 0 and at most 100 years");
  }
  return std::chrono::seconds(n * unit);
}

ApiKeyStore::ApiKeyStore(std::string path, ApiKeyStoreOptions options)
    : path_(std::move(path)),
      options_(options),
      cache_key_(RandomBytes(32)),
      last_flush_(Clock::now()) {
  std::lock_guard<std::mutex> lock(mu_);
  if (options_.create_if_missing && !StampOf(path_).exists) return;
  LoadLocked();
}

void ApiKeyStore::IndexLocked() {
  by_id_.clear();
  for (size_t i = 0; i < records_.size(); ++i) by_id_[records_[i].id] = i;
}

void ApiKeyStore::LoadLocked() {
  const FileStamp before = StampOf(path_);
  std::vector<ApiKeyRecord> fresh = ParseKeysFile(path_, ReadSecretFile(path_));
  // last_used times not yet written survive a reload of the same keys.
  for (auto& r : fresh) {
    auto it = by_id_.find(r.id);
    if (it == by_id_.end()) continue;
    const auto& mem = records_[it->second].last_used;
    if (mem && (!r.last_used || *r.last_used < *mem)) r.last_used = mem;
  }
  records_ = std::move(fresh);
  IndexLocked();
  cache_.clear();
  ++generation_;
  stamp_ = before;
  reload_error_.clear();
}

void ApiKeyStore::SaveLocked() {
  json keys = json::array();
  for (const auto& r : records_) keys.push_back(RecordToJson(r));
  const json doc{{"version", 1}, {"keys", keys}};
  WriteSecretFile(path_, doc.dump(2) + "\n");
  stamp_ = StampOf(path_);
  last_used_dirty_ = false;
}

// A writer holds the file lock and rereads the file first (another writer may have changed
// it), strictly: an unusable file is an error, never overwritten.
void ApiKeyStore::RefreshForWriteLocked() {
  if (StampOf(path_).exists) {
    LoadLocked();
    return;
  }
  if (!options_.create_if_missing) throw NotFound(path_ + ": no such file");
  records_.clear();  // removed meanwhile: start afresh, never resurrect what it held
  IndexLocked();
  cache_.clear();
  ++generation_;
  stamp_ = FileStamp{};
}

std::string ApiKeyStore::Create(const NewKey& key, Clock::time_point now) {
  CheckStoreName("key", key.name);
  if (key.name.rfind(kPrefix, 0) == 0) {
    throw InvalidArgument("key name: must not start with 'cvd_' (keys do)");
  }
  if (key.roles.empty()) throw InvalidArgument("key '" + key.name + "': at least one role");
  // The id and the hash are made before taking the locks: argon2id is slow and Authenticate
  // must not wait for it.
  const std::string id = HexEncode(RandomBytes(kIdHexChars / 2));
  const std::string presented =
      std::string(kPrefix) + id + "_" + Base64UrlEncode(RandomBytes(kSecretBytes));
  const std::string hash = HashPassword(presented);
  StoreLock file_lock(path_);
  std::lock_guard<std::mutex> lock(mu_);
  RefreshForWriteLocked();
  for (const auto& r : records_) {
    if (r.name == key.name) {
      throw InvalidArgument("key '" + key.name + "' already exists in " + path_);
    }
  }
  if (by_id_.count(id)) throw RuntimeError("key id collision (64 random bits); try again");
  ApiKeyRecord r;
  r.name = key.name;
  r.id = id;
  r.hash = hash;
  r.roles = key.roles;
  r.models = key.models;
  r.created = std::chrono::time_point_cast<std::chrono::seconds>(now);
  if (key.ttl) r.expires = r.created + *key.ttl;
  records_.push_back(std::move(r));
  IndexLocked();
  SaveLocked();
  return presented;
}

void ApiKeyStore::Revoke(const std::string& name, Clock::time_point now) {
  StoreLock file_lock(path_);
  std::lock_guard<std::mutex> lock(mu_);
  RefreshForWriteLocked();
  for (auto& r : records_) {
    if (r.name != name) continue;
    if (!r.revoked) {
      r.revoked = true;
      r.revoked_at = std::chrono::time_point_cast<std::chrono::seconds>(now);
    }
    SaveLocked();
    return;
  }
  // A pasted key is never echoed: names cannot start with "cvd_".
  if (name.rfind(kPrefix, 0) == 0) throw NotFound("no such key name in " + path_);
  throw NotFound("no key named '" + name + "' in " + path_);
}

std::vector<ApiKeyRecord> ApiKeyStore::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_;
}

size_t ApiKeyStore::cache_entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_.size();
}

std::string ApiKeyStore::last_reload_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reload_error_;
}

void ApiKeyStore::ReloadIfChanged() {
  const FileStamp now = StampOf(path_);  // outside the lock: requests do not queue on a stat
  std::lock_guard<std::mutex> lock(mu_);
  if (now == stamp_) return;
  try {
    LoadLocked();
  } catch (const std::exception& e) {
    // Fail closed: a keys file that cannot be used accepts no key.
    records_.clear();
    IndexLocked();
    cache_.clear();
    ++generation_;
    stamp_ = now;
    reload_error_ = e.what();
  }
}

AuthResult ApiKeyStore::DecideLocked(size_t index, Clock::time_point now) {
  ApiKeyRecord& r = records_[index];
  if (r.revoked) return AuthResult::Failure("revoked", "the API key has been revoked");
  if (r.expires && now >= *r.expires) {
    return AuthResult::Failure("expired", "the API key has expired");
  }
  r.last_used = std::chrono::time_point_cast<std::chrono::seconds>(now);
  last_used_dirty_ = true;
  Identity id;
  id.method = AuthMethod::kApiKey;
  id.name = r.name;
  id.roles = r.roles;
  id.models = r.models;
  id.mfa = false;
  id.expires = r.expires;
  return AuthResult::Success(std::move(id));
}

std::optional<AuthResult> ApiKeyStore::AuthenticateWithoutHashing(std::string_view presented,
                                                                  Clock::time_point now) {
  std::string hash;
  uint64_t generation = 0;
  return Precheck(presented, now, &hash, &generation);
}

std::optional<AuthResult> ApiKeyStore::Precheck(std::string_view presented, Clock::time_point now,
                                                std::string* hash, uint64_t* generation) {
  const auto id = ApiKeyId(presented);
  if (!id) return AuthResult::Failure("malformed", "the API key is malformed");
  ReloadIfChanged();
  const std::string tag = HmacSha256(cache_key_, presented);
  std::lock_guard<std::mutex> lock(mu_);
  auto hit = cache_.find(tag);
  if (hit != cache_.end()) {
    AuthResult result = DecideLocked(hit->second, now);
    if (result.ok() && options_.persist_last_used &&
        now - last_flush_ >= options_.last_used_interval) {
      FlushLocked(now);
    }
    return result;
  }
  auto it = by_id_.find(*id);
  if (it == by_id_.end()) return AuthResult::Failure("unknown_key", "the API key is not known");
  auto failed = failed_ids_.find(*id);
  if (failed != failed_ids_.end()) {
    if (now < failed->second) return AuthResult::Failure("unknown_key", "the API key is not known");
    failed_ids_.erase(failed);
  }
  *hash = records_[it->second].hash;
  *generation = generation_;
  return std::nullopt;
}

AuthResult ApiKeyStore::Authenticate(std::string_view presented, Clock::time_point now) {
  std::string hash;
  uint64_t generation = 0;
  if (auto decided = Precheck(presented, now, &hash, &generation)) return std::move(*decided);
  const auto id = ApiKeyId(presented);
  const std::string tag = HmacSha256(cache_key_, presented);
  // argon2id outside the lock: other requests go on meanwhile.
  const bool verified = VerifyPassword(hash, presented);
  ++argon2_verifications_;
  std::lock_guard<std::mutex> lock(mu_);
  if (!verified) {
    if (failed_ids_.size() >= std::max<size_t>(options_.max_cache_entries, 1)) failed_ids_.clear();
    failed_ids_[*id] = now + options_.failed_id_backoff;
    return AuthResult::Failure("unknown_key", "the API key is not known");
  }
  auto it = by_id_.find(*id);
  // The file may have been reloaded meanwhile: the verified hash must still be there.
  if (it == by_id_.end() || (generation != generation_ && records_[it->second].hash != hash)) {
    return AuthResult::Failure("unknown_key", "the API key is not known");
  }
  if (cache_.size() >= options_.max_cache_entries) cache_.clear();
  if (options_.max_cache_entries > 0) cache_[tag] = it->second;
  AuthResult result = DecideLocked(it->second, now);
  if (result.ok() && options_.persist_last_used &&
      now - last_flush_ >= options_.last_used_interval) {
    FlushLocked(now);
  }
  return result;
}

bool ApiKeyStore::FlushLocked(Clock::time_point now) {
  last_flush_ = now;
  if (!last_used_dirty_) return false;
  try {
    StoreLock file_lock(path_, /*wait=*/false);
    if (!file_lock.locked() || StampOf(path_) != stamp_ || !stamp_.exists) return false;
    SaveLocked();
    return true;
  } catch (const std::exception&) {
    return false;  // last_used is best effort; it stays in memory
  }
}

bool ApiKeyStore::FlushLastUsed() {
  std::lock_guard<std::mutex> lock(mu_);
  return FlushLocked(Clock::now());
}

}  // namespace cvdeploy::security
