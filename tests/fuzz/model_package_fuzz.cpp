// SPDX-License-Identifier: Apache-2.0
// Model packages (security::ParsePackage, VerifyPackageSignature, OpenPackagePayload) on
// untrusted bytes, with a fixed data key and a fixed trusted Ed25519 key, so that the
// signature and decryption paths run to the end on packages made with them
// (tests/fuzz/seeds/model_package holds such packages). Two modes, by the first byte:
//  - 'W': the rest is "MANIFEST_JSON\0PART\0PART..." with a flags byte first (bit0 encrypt,
//    bit1 sign): the harness writes a package with WritePackage and the fixed keys and
//    checks that it reads back exactly (writer and reader agree on every input);
//  - anything else: the whole input is a package file.
// Checks: only cvdeploy::Error escapes, with code kBadInput (kInvalidArgument only for a
// missing key, which the harness never causes); messages start with the package's name and
// a known check and never contain the data key; an opened payload's parts match the
// manifest's entries.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "cvdeploy/error.h"
#include "cvdeploy/json.h"
#include "cvdeploy/security/crypto.h"
#include "cvdeploy/security/model_package.h"
#include "fuzz_util.h"

namespace {

namespace sec = cvdeploy::security;

// Made for this harness only.
constexpr char kDataKeyHex[] = "ec0ff18de76bb5e970496b871588bb5448119e8d99c47c365897a854f31669bc";
constexpr char kSigningPem[] = R"pem(-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIEKbiOLGbwzKx6uKveAKDAuE20D1RrfyTbH4Cd+3yPgu
-----END PRIVATE KEY-----
)pem";

const sec::DataKey& DataKey() {
  static const sec::DataKey key = sec::DataKey::FromText(kDataKeyHex, "fuzz key");
  return key;
}
const sec::Ed25519Key& SigningKey() {
  static const sec::Ed25519Key key = sec::Ed25519Key::FromPem(kSigningPem);
  return key;
}
const sec::TrustedKeys& Trusted() {
  static const sec::TrustedKeys keys = [] {
    sec::TrustedKeys t;
    t.Add(sec::Ed25519Key::FromPem(SigningKey().PublicPem()));
    return t;
  }();
  return keys;
}

void CheckError(const cvdeploy::Error& e) {
  if (e.code() != cvdeploy::ErrorCode::kBadInput) std::abort();
  const std::string what = e.what();
  static const std::set<std::string> kChecks = {"format", "manifest", "signature", "decryption",
                                                "integrity"};
  if (what.rfind("pkg: ", 0) != 0) std::abort();
  const size_t colon = what.find(':', 5);
  if (colon == std::string::npos || !kChecks.count(what.substr(5, colon - 5))) std::abort();
  if (what.find(kDataKeyHex) != std::string::npos) std::abort();
}

// Parse, verify when signed, open: returns the parts, or nothing after a checked error.
std::optional<std::vector<sec::PackagePart>> Read(std::string_view bytes, bool* is_signed) {
  try {
    const sec::ParsedPackage p = sec::ParsePackage(bytes, "pkg");
    if (p.signed_bytes.size() + 2 + p.signature.size() != bytes.size()) std::abort();
    *is_signed = p.is_signed;
    if (p.is_signed) sec::VerifyPackageSignature(p, Trusted(), "pkg");
    auto parts = sec::OpenPackagePayload(p, &DataKey(), "pkg");
    const nlohmann::json& entries = p.manifest["entries"];
    if (parts.size() != entries.size()) std::abort();
    for (size_t i = 0; i < parts.size(); ++i) {
      if (parts[i].name != entries[i]["name"] ||
          parts[i].bytes.size() != entries[i]["size"].get<uint64_t>()) {
        std::abort();
      }
    }
    return parts;
  } catch (const cvdeploy::Error& e) {
    CheckError(e);
  }
  return std::nullopt;
}

void WriteMode(std::string_view input) {
  if (input.empty()) return;
  const uint8_t flags = static_cast<uint8_t>(input[0]);
  input.remove_prefix(1);
  sec::PackageInput in;
  const size_t nul = input.find('\0');
  try {
    in.manifest = cvdeploy::ParseJsonBounded(input.substr(0, nul), "manifest");
  } catch (const cvdeploy::Error&) {
    return;
  }
  if (!in.manifest.is_object()) return;
  std::string_view rest = nul == std::string_view::npos ? "" : input.substr(nul + 1);
  int index = 0;
  do {
    const size_t end = rest.find('\0');
    const std::string_view part = rest.substr(0, end);
    in.parts.emplace_back(
        index == 0 ? std::string("model.onnx") : "golden/part" + std::to_string(index),
        std::vector<uint8_t>(part.begin(), part.end()));
    ++index;
    rest = end == std::string_view::npos ? "" : rest.substr(end + 1);
  } while (!rest.empty() && in.parts.size() < sec::kMaxPackageEntries);
  const std::string bytes = sec::WritePackage(in, (flags & 1) ? &DataKey() : nullptr,
                                              (flags & 2) ? &SigningKey() : nullptr);
  bool is_signed = false;
  const auto parts = Read(bytes, &is_signed);
  if (!parts || parts->size() != in.parts.size() || is_signed != ((flags & 2) != 0)) std::abort();
  for (size_t i = 0; i < parts->size(); ++i) {
    if ((*parts)[i].bytes != in.parts[i].bytes) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input = cvdeploy::fuzz::AsText(data, size);
  if (!input.empty() && input[0] == 'W') {
    WriteMode(input.substr(1));
    return 0;
  }
  bool is_signed = false;
  Read(input, &is_signed);
  return 0;
}
