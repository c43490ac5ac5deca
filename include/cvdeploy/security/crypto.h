// SPDX-License-Identifier: Apache-2.0
// The cryptographic primitives the security module builds on, as thin wrappers over the
// established libraries (no home-made primitive): random bytes, constant-time comparison and
// argon2id from libsodium; SHA-256, HMAC-SHA-256, HKDF-SHA-256, AES-256-GCM and Ed25519 from
// OpenSSL 3 EVP (Ed25519 keys are PEM files that `openssl pkey` reads). Byte strings are
// std::string holding raw bytes. All functions are thread-safe; those that can fail throw
// cvdeploy::Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace cvdeploy::security {

// `n` bytes from the operating system's CSPRNG (libsodium randombytes_buf).
std::string RandomBytes(size_t n);

// RFC 4648 section 5 base64url without padding (JWT, API keys). Decode accepts input with
// or without '=' padding; nullopt for any character outside the alphabet or a bad length.
std::string Base64UrlEncode(std::string_view bytes);
std::optional<std::string> Base64UrlDecode(std::string_view text);
std::string HexEncode(std::string_view bytes);  // lower case
std::optional<std::string> HexDecode(std::string_view text);

// Compares in time that depends only on the lengths (libsodium sodium_memcmp); different
// lengths are unequal.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

std::string Sha256(std::string_view data);                            // 32 raw bytes
std::string HmacSha256(std::string_view key, std::string_view data);  // 32 raw bytes

// argon2id (libsodium crypto_pwhash_str, "moderate" limits: 256 MiB is too much for a small
// edge box, so the interactive ones: 64 MiB, 2 passes). The result is the self-describing
// "$argon2id$v=19$m=...,t=...,p=...$salt$hash" string.
std::string HashPassword(std::string_view password);
// True when `password` matches `hash` (a string made by HashPassword); false for a mismatch or
// a malformed hash.
bool VerifyPassword(const std::string& hash, std::string_view password);
// An argon2id hash (HashPassword) of a random password, made once per process on first use:
// verifying against it costs what a real check costs, so that an unknown user or key id
// cannot be told from a wrong secret by timing.
const std::string& DummyPasswordHash();

// HKDF-SHA-256 (RFC 5869, extract then expand; OpenSSL EVP_KDF "HKDF"): `length` bytes
// (at most 255 * 32) derived from the input key material, salt and context info.
std::string HkdfSha256(std::string_view ikm, std::string_view salt, std::string_view info,
                       size_t length);

// AES-256-GCM (OpenSSL EVP) with a 32-byte key, a 12-byte nonce (never reuse one under a key:
// callers draw it with RandomBytes) and a 16-byte tag over ciphertext and `aad`.
inline constexpr size_t kAesGcmKeyBytes = 32, kAesGcmNonceBytes = 12, kAesGcmTagBytes = 16;
// ciphertext || tag (plaintext.size() + 16 bytes). Throws kInvalidArgument for a key or nonce
// of the wrong size.
std::string Aes256GcmEncrypt(std::string_view key, std::string_view nonce,
                             std::string_view plaintext, std::string_view aad);
// Decrypts `ciphertext_and_tag` into out[0, size - 16) and checks the tag. False when it does
// not verify (wrong key, nonce or aad, tampered bytes, input shorter than the tag); `out` is
// then wiped, so no unauthenticated plaintext is ever left for the caller to use.
bool Aes256GcmDecryptInto(std::string_view key, std::string_view nonce,
                          std::string_view ciphertext_and_tag, std::string_view aad, uint8_t* out);
// The same into a new string; nullopt on failure.
std::optional<std::string> Aes256GcmDecrypt(std::string_view key, std::string_view nonce,
                                            std::string_view ciphertext_and_tag,
                                            std::string_view aad);

// An Ed25519 key pair or public key held by OpenSSL. Copyable (shares the key).
class Ed25519Key {
 public:
  static Ed25519Key Generate();
  // PEM text ("PRIVATE KEY" or "PUBLIC KEY"); throws kInvalidArgument when it is not an
  // Ed25519 key.
  static Ed25519Key FromPem(const std::string& pem);
  // The 32-byte raw public key (as in a JWK's "x").
  static Ed25519Key FromRawPublic(std::string_view raw);
  bool has_private() const { return has_private_; }
  std::string PrivatePem() const;  // precondition: has_private()
  std::string PublicPem() const;
  std::string RawPublic() const;                     // 32 bytes
  std::string Sign(std::string_view message) const;  // 64 bytes; precondition: has_private()
  bool Verify(std::string_view message, std::string_view signature) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
  bool has_private_ = false;
};

}  // namespace cvdeploy::security
