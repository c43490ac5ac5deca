// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/crypto.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <sodium.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "cvdeploy/error.h"

namespace cvdeploy::security {
namespace {

void InitSodium() {
  static const int ok = sodium_init();
  if (ok < 0) throw RuntimeError("libsodium failed to initialise");
}

constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct KdfDeleter {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

void CheckGcmKeyAndNonce(std::string_view key, std::string_view nonce) {
  if (key.size() != kAesGcmKeyBytes) throw InvalidArgument("AES-256-GCM needs a 32-byte key");
  if (nonce.size() != kAesGcmNonceBytes) {
    throw InvalidArgument("AES-256-GCM needs a 12-byte nonce");
  }
}

// EVP_*Update take an int length: feeds `n` bytes in pieces below INT_MAX.
template <typename Update>
bool UpdateInChunks(const unsigned char* in, size_t n, unsigned char* out, Update update) {
  constexpr size_t kChunk = size_t{1} << 30;
  size_t done = 0;
  do {
    const size_t piece = std::min(kChunk, n - done);
    int written = 0;
    if (update(out ? out + done : nullptr, &written, in + done, static_cast<int>(piece)) != 1) {
      return false;
    }
    if (out && static_cast<size_t>(written) != piece) return false;  // GCM is a stream mode
    done += piece;
  } while (done < n);
  return true;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

std::string RandomBytes(size_t n) {
  InitSodium();
  std::string out(n, '\0');
  randombytes_buf(out.data(), n);
  return out;
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kBase64Url[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kBase64Url[(acc << (6 - bits)) & 63]);
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = Base64UrlValue(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Non-canonical trailing bits (set bits that encode nothing) are refused, so that one
  // byte string has one encoding.
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::optional<std::string> HexDecode(std::string_view text) {
  if (text.size() % 2) return std::nullopt;
  auto digit = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 2);  // no reallocation: a decoded key leaves no copy behind
  for (size_t i = 0; i < text.size(); i += 2) {
    const int hi = digit(text[i]), lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  InitSodium();
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string Sha256(std::string_view data) {
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(),
            reinterpret_cast<unsigned char*>(out.data()), &len)) {
    throw RuntimeError("HMAC-SHA-256 failed");
  }
  out.resize(len);
  return out;
}

std::string HkdfSha256(std::string_view ikm, std::string_view salt, std::string_view info,
                       size_t length) {
  if (length == 0 || length > 255 * 32) throw InvalidArgument("HKDF-SHA-256: bad output length");
  std::unique_ptr<EVP_KDF, KdfDeleter> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) throw RuntimeError("HKDF is not available in this OpenSSL");
  std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) throw RuntimeError("out of memory in HKDF");
  char digest[] = "SHA256";
  // OSSL_PARAM wants non-const pointers but does not write through them for input params.
  auto octets = [](const char* name, std::string_view v) {
    return OSSL_PARAM_construct_octet_string(name, const_cast<char*>(v.data()), v.size());
  };
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
                         octets(OSSL_KDF_PARAM_KEY, ikm), octets(OSSL_KDF_PARAM_SALT, salt),
                         octets(OSSL_KDF_PARAM_INFO, info), OSSL_PARAM_construct_end()};
  std::string out(length, '\0');
  if (EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), length, params) !=
      1) {
    throw RuntimeError("HKDF-SHA-256 failed");
  }
  return out;
}

std::string Aes256GcmEncrypt(std::string_view key, std::string_view nonce,
                             std::string_view plaintext, std::string_view aad) {
  CheckGcmKeyAndNonce(key, nonce);
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  std::string out(plaintext.size() + kAesGcmTagBytes, '\0');
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  auto update = [&](unsigned char* o, int* n, const unsigned char* i, int len) {
    return EVP_EncryptUpdate(ctx.get(), o, n, i, len);
  };
  int final_len = 0;
  const bool ok =
      ctx && EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), Bytes(key), Bytes(nonce), nullptr) &&
      (aad.empty() || UpdateInChunks(Bytes(aad), aad.size(), nullptr, update)) &&
      (plaintext.empty() || UpdateInChunks(Bytes(plaintext), plaintext.size(), dst, update)) &&
      EVP_EncryptFinal_ex(ctx.get(), dst + plaintext.size(), &final_len) && final_len == 0 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kAesGcmTagBytes,
                          dst + plaintext.size()) == 1;
  if (!ok) throw RuntimeError("AES-256-GCM encryption failed");
  return out;
}

bool Aes256GcmDecryptInto(std::string_view key, std::string_view nonce,
                          std::string_view ciphertext_and_tag, std::string_view aad, uint8_t* out) {
  CheckGcmKeyAndNonce(key, nonce);
  if (ciphertext_and_tag.size() < kAesGcmTagBytes) return false;
  const size_t n = ciphertext_and_tag.size() - kAesGcmTagBytes;
  std::string tag(ciphertext_and_tag.substr(n));
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  auto update = [&](unsigned char* o, int* len_out, const unsigned char* i, int len) {
    return EVP_DecryptUpdate(ctx.get(), o, len_out, i, len);
  };
  int final_len = 0;
  const bool ok =
      ctx && EVP_DecryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), Bytes(key), Bytes(nonce), nullptr) &&
      (aad.empty() || UpdateInChunks(Bytes(aad), aad.size(), nullptr, update)) &&
      (n == 0 || UpdateInChunks(Bytes(ciphertext_and_tag), n, out, update)) &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kAesGcmTagBytes, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), out + n, &final_len) == 1 && final_len == 0;
  if (!ok && n > 0) sodium_memzero(out, n);
  return ok;
}

std::optional<std::string> Aes256GcmDecrypt(std::string_view key, std::string_view nonce,
                                            std::string_view ciphertext_and_tag,
                                            std::string_view aad) {
  CheckGcmKeyAndNonce(key, nonce);
  if (ciphertext_and_tag.size() < kAesGcmTagBytes) return std::nullopt;
  std::string out(ciphertext_and_tag.size() - kAesGcmTagBytes, '\0');
  if (!Aes256GcmDecryptInto(key, nonce, ciphertext_and_tag, aad,
                            reinterpret_cast<uint8_t*>(out.data()))) {
    return std::nullopt;
  }
  return out;
}

std::string HashPassword(std::string_view password) {
  InitSodium();
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(hash, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    throw Unavailable("argon2id: out of memory while hashing a password");
  }
  return hash;
}

bool VerifyPassword(const std::string& hash, std::string_view password) {
  InitSodium();
  if (hash.size() >= crypto_pwhash_STRBYTES || hash.rfind("$argon2id$", 0) != 0) return false;
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

const std::string& DummyPasswordHash() {
  static const std::string hash = HashPassword(HexEncode(RandomBytes(16)));
  return hash;
}

struct Ed25519Key::Impl {
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key;
};

Ed25519Key Ed25519Key::Generate() {
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!raw) throw RuntimeError("Ed25519 key generation failed");
  Ed25519Key k;
  k.impl_ = std::make_shared<Impl>();
  k.impl_->key.reset(raw);
  k.has_private_ = true;
  return k;
}

Ed25519Key Ed25519Key::FromPem(const std::string& pem) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw RuntimeError("out of memory reading a PEM key");
  Ed25519Key k;
  EVP_PKEY* raw = nullptr;
  if (pem.find("PRIVATE KEY") != std::string::npos) {
    raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    k.has_private_ = raw != nullptr;
  } else {
    raw = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  }
  if (!raw) throw InvalidArgument("not a PEM key");
  k.impl_ = std::make_shared<Impl>();
  k.impl_->key.reset(raw);
  if (EVP_PKEY_get_id(raw) != EVP_PKEY_ED25519) throw InvalidArgument("not an Ed25519 key");
  return k;
}

Ed25519Key Ed25519Key::FromRawPublic(std::string_view raw) {
  if (raw.size() != 32) throw InvalidArgument("an Ed25519 public key has 32 bytes");
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  if (!key) throw InvalidArgument("not an Ed25519 public key");
  Ed25519Key k;
  k.impl_ = std::make_shared<Impl>();
  k.impl_->key.reset(key);
  return k;
}

std::string Ed25519Key::PrivatePem() const {
  if (!has_private_) throw InvalidArgument("no private key");
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PrivateKey(bio.get(), impl_->key.get(), nullptr, nullptr, 0, nullptr,
                                        nullptr)) {
    throw RuntimeError("cannot write an Ed25519 private key");
  }
  return BioText(bio.get());
}

std::string Ed25519Key::PublicPem() const {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PUBKEY(bio.get(), impl_->key.get())) {
    throw RuntimeError("cannot write an Ed25519 public key");
  }
  return BioText(bio.get());
}

std::string Ed25519Key::RawPublic() const {
  std::string out(32, '\0');
  size_t len = out.size();
  if (!EVP_PKEY_get_raw_public_key(impl_->key.get(), reinterpret_cast<unsigned char*>(out.data()),
                                   &len) ||
      len != 32) {
    throw RuntimeError("cannot read an Ed25519 public key");
  }
  return out;
}

std::string Ed25519Key::Sign(std::string_view message) const {
  if (!has_private_) throw InvalidArgument("signing needs the private key");
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    throw RuntimeError("Ed25519 signing failed");
  }
  sig.resize(len);
  return sig;
}

bool Ed25519Key::Verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != 64) return false;
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

}  // namespace cvdeploy::security
