// SPDX-License-Identifier: Apache-2.0
// Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP) with the parameters every
// authenticator app understands: HMAC-SHA-1 (OpenSSL), 30 s steps, 6 digits, a 20-byte secret
// shown as RFC 4648 base32 without padding. Pure functions, thread-safe; nothing throws
// except TotpCode's precondition on `digits`.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cvdeploy::security {

constexpr int kTotpPeriodSeconds = 30;
constexpr int kTotpDigits = 6;
constexpr size_t kTotpSecretBytes = 20;

// RFC 4648 section 6 base32, upper case, without '=' padding.
std::string Base32Encode(std::string_view bytes);
// Accepts upper or lower case and optional trailing '=' padding; nullopt for any other
// character, an impossible length or non-zero trailing bits.
std::optional<std::string> Base32Decode(std::string_view text);

// The HOTP value for counter `step` (RFC 4226 dynamic truncation), zero-padded to `digits`
// (6 to 8; kInvalidArgument otherwise). `secret` is raw bytes.
std::string TotpCode(std::string_view secret, int64_t step, int digits = kTotpDigits);
// floor(unix seconds / 30); negative times give step 0.
int64_t TotpStep(std::chrono::system_clock::time_point t);
// True when `code` is exactly kTotpDigits ASCII digits.
bool IsWellFormedTotpCode(std::string_view code);

// "otpauth://totp/cvdeploy:NAME?secret=BASE32&issuer=cvdeploy&algorithm=SHA1&digits=6&period=30"
// (Key Uri Format). `account` must be a valid store name (no escaping needed).
std::string TotpUri(std::string_view account, std::string_view base32_secret);

}  // namespace cvdeploy::security
