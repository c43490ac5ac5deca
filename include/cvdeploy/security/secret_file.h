// SPDX-License-Identifier: Apache-2.0
// Files that hold secrets (API key hashes, users, policies, signing and HMAC keys) are
// refused when other users could read or change them, as ssh refuses a private key: the
// mode must grant nothing to group or others (at most 0600) and the owner must be the
// process's effective user. Written files are created 0600 and replaced atomically.
#pragma once

#include <string>
#include <string_view>

namespace cvdeploy::security {

// Throws cvdeploy::Error naming the file: kNotFound when it does not exist, kPermissionDenied
// when its mode is wider than 0600 or it belongs to another user, kBadInput when it is not a
// regular file.
void CheckSecretFile(const std::string& path);
// CheckSecretFile, then the whole content (kBadInput when unreadable).
std::string ReadSecretFile(const std::string& path);
// Writes `content` to a temporary file (mode 0600) in the same directory, fsyncs it and
// renames it over `path`. Throws kBadInput naming the file when it cannot.
void WriteSecretFile(const std::string& path, std::string_view content);

}  // namespace cvdeploy::security
