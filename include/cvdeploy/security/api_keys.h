// SPDX-License-Identifier: Apache-2.0
// API keys for machines: the keys file and the check of a presented Bearer key.
//
// Key format (documented in docs/security.md): "cvd_" + 16 lower-case hex characters (a key
// id of 8 random bytes, not secret, used to find the record in O(1)) + "_" + base64url
// without padding of 32 random bytes (the secret): 64 characters in all, URL-safe, with a
// prefix secret scanners recognise. The keys file (JSON, mode 0600, see secret_file.h) holds
// per key: name, id, argon2id hash of the whole key, roles, models, created, expires,
// last_used, revoked, revoked_at; never the key or its secret part.
//
// Verification: argon2id runs once per key and process. A verified key is cached in memory
// under HMAC-SHA-256(random per-process key, presented key) -> record; only keys that
// verified are cached (at most one entry per record, and max_cache_entries in all), so
// unknown keys cannot fill memory. An unknown id is checked against a dummy hash, so ids
// cannot be probed by timing. Revocation and expiry are read from the record on every call.
//
// ApiKeyStore is thread-safe. Authenticate never throws for a bad key (it returns a
// failure); file problems throw cvdeploy::Error naming the file.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cvdeploy/security/identity.h"
#include "cvdeploy/security/store_file.h"

namespace cvdeploy::security {

struct ApiKeyRecord {
  std::string name;
  std::string id;    // 16 hex characters, the public part of the key
  std::string hash;  // argon2id of the whole key (crypto.h HashPassword)
  std::vector<std::string> roles, models;
  std::chrono::system_clock::time_point created;
  std::optional<std::chrono::system_clock::time_point> expires, last_used, revoked_at;
  bool revoked = false;
};

struct ApiKeyStoreOptions {
  // Start with no keys when the file does not exist (it is written on the first change);
  // otherwise a missing file is kNotFound.
  bool create_if_missing = false;
  // last_used is kept in memory and written back to the file at most once per this interval,
  // from Authenticate, and only when the file did not change since it was read and no other
  // writer holds its lock (a concurrent `keys revoke` is never overwritten).
  bool persist_last_used = true;
  std::chrono::seconds last_used_interval{60};
  size_t max_cache_entries = 10000;
  // After a wrong secret for a known key id, further uncached attempts for that id are refused
  // for this long without running argon2id (see Authenticate).
  std::chrono::milliseconds failed_id_backoff{1000};
};

// The key id of a well-formed key ("cvd_<16 hex>_<43 base64url>", the secret decoding to 32
// bytes); nullopt for anything else. Parses untrusted bytes (fuzzed).
std::optional<std::string> ApiKeyId(std::string_view presented);

// "90d", "12h", "30m", "3600s", "2w" -> duration; "never" -> nullopt. Throws
// kInvalidArgument (naming the value, which is not a secret) for anything else, zero, or more
// than 100 years.
std::optional<std::chrono::seconds> ParseTtl(std::string_view text);

class ApiKeyStore {
 public:
  using Clock = std::chrono::system_clock;

  // Loads the file now. Throws cvdeploy::Error naming the file: kNotFound when missing (unless
  // options.create_if_missing), kPermissionDenied when its mode is wider than 0600 or another
  // user owns it, kBadInput when it is not a valid keys file.
  explicit ApiKeyStore(std::string path, ApiKeyStoreOptions options = {});
  ApiKeyStore(const ApiKeyStore&) = delete;
  ApiKeyStore& operator=(const ApiKeyStore&) = delete;

  struct NewKey {
    std::string name;
    std::vector<std::string> roles, models;
    std::optional<std::chrono::seconds> ttl;  // nullopt: never expires
  };
  // Returns the new key (the only time it exists outside the caller); saves the file.
  // kInvalidArgument for a bad or duplicate name (names must not start with "cvd_", so that
  // a key pasted as a name is never echoed) or no role.
  std::string Create(const NewKey& key, Clock::time_point now = Clock::now());
  // Marks the key revoked and saves; kNotFound for an unknown name. Takes effect at once for
  // this object and, through ReloadIfChanged, for every other store reading the file.
  void Revoke(const std::string& name, Clock::time_point now = Clock::now());
  std::vector<ApiKeyRecord> List() const;

  // The Bearer value -> Identity{kApiKey, name, roles, models, mfa=false, expires}. Failure
  // reasons: "malformed", "unknown_key", "revoked", "expired". Calls ReloadIfChanged first (a
  // stat per call).
  // Cost: a key verified before is a cache hit (an HMAC, no argon2id). A key whose id is not in
  // the file fails at once without argon2id: ids carry no authority (the 256-bit secret does),
  // so telling by timing that an id exists gains an attacker nothing, while a dummy argon2id
  // per unknown key would let any client spend 64 MiB and tens of milliseconds of an I/O
  // thread per request. A wrong secret for a known id runs argon2id once, then the id refuses
  // further uncached attempts for options.failed_id_backoff (its legitimate, cached key keeps
  // working), so one id cannot be used to make the server hash continuously.
  AuthResult Authenticate(std::string_view presented, Clock::time_point now);
  // Authenticate without argon2id: the answer for a malformed key, a cached key, an unknown id
  // or an id in back-off; nullopt when deciding needs the argon2id check (a key not verified
  // before). Cheap (an HMAC and a lookup): the server calls it on its I/O threads and moves
  // only the nullopt cases to a worker.
  std::optional<AuthResult> AuthenticateWithoutHashing(std::string_view presented,
                                                       Clock::time_point now);

  // Rereads the file when its stamp (inode, size, mtime) changed. If the new file cannot be
  // used (missing, too open, invalid), no key is accepted until it can (fail closed) and
  // last_reload_error() says why. Never throws.
  void ReloadIfChanged();
  std::string last_reload_error() const;

  // Writes in-memory last_used times now if there are any and the file is unchanged.
  // Returns whether it wrote.
  bool FlushLastUsed();

  // argon2id verifications run so far (tests: a cached key costs none).
  uint64_t argon2_verifications() const { return argon2_verifications_.load(); }
  size_t cache_entries() const;
  const std::string& path() const { return path_; }

 private:
  void LoadLocked();
  void SaveLocked();
  void RefreshForWriteLocked();
  void IndexLocked();
  AuthResult DecideLocked(size_t index, Clock::time_point now);
  // Everything of Authenticate before argon2id; nullopt with the record's hash and the
  // generation it was read at when the check is needed.
  std::optional<AuthResult> Precheck(std::string_view presented, Clock::time_point now,
                                     std::string* hash, uint64_t* generation);
  bool FlushLocked(Clock::time_point now);

  const std::string path_;
  const ApiKeyStoreOptions options_;
  const std::string cache_key_;  // per-process random HMAC key of the cache
  mutable std::mutex mu_;
  std::vector<ApiKeyRecord> records_;
  std::unordered_map<std::string, size_t> by_id_;
  std::unordered_map<std::string, size_t> cache_;  // HMAC tag -> index in records_
  uint64_t generation_ = 0;                        // bumped when records_ is replaced
  FileStamp stamp_;
  std::string reload_error_;
  bool last_used_dirty_ = false;
  Clock::time_point last_flush_;
  std::atomic<uint64_t> argon2_verifications_{0};
  // Key id -> time until which uncached attempts for it are refused without argon2id (bounded
  // by max_cache_entries; cleared when full).
  std::unordered_map<std::string, Clock::time_point> failed_ids_;
};

}  // namespace cvdeploy::security
