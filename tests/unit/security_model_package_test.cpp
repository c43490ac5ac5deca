// SPDX-License-Identifier: Apache-2.0
// Model packages (security/model_package.h): round trips in every mode, and every way a
// package can be broken (a flipped byte in each section, truncation at each boundary, trailing
// bytes, wrong or untrusted keys, flags that disagree with the manifest, huge lengths, unsafe
// or duplicate entry names), each refused with the check it failed and no key bytes in the
// message. Packages with hand-made manifests are assembled by Assemble() below.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "cvdeploy/error.h"
#include "cvdeploy/security/model_package.h"
#include "cvdeploy/security/secret_file.h"

namespace cvdeploy::security {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string Text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

const std::string kModel = std::string("fake onnx model bytes ") + std::string(300, 'W');
const std::string kGolden = "golden image bytes";

PackageInput Input() {
  PackageInput in;
  in.manifest = {{"name", "yolo"}, {"version", 3}, {"model", {{"task", "detect"}}}};
  in.parts.emplace_back("model.onnx", Bytes(kModel));
  in.parts.emplace_back("golden/bus.jpg", Bytes(kGolden));
  return in;
}

void Le(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The layout of docs/security.md, from its sections, so tests can write what WritePackage
// never would.
std::string Assemble(uint16_t flags, const std::string& manifest, const std::string& payload,
                     const std::string& signature = "", uint16_t version = 1) {
  std::string out = "CVDMPKG1";
  Le(out, version, 2);
  Le(out, flags, 2);
  Le(out, manifest.size(), 4);
  out += manifest;
  Le(out, payload.size(), 8);
  out += payload;
  Le(out, signature.size(), 2);
  return out + signature;
}

// A valid manifest for an unsigned, unencrypted payload `payload`, with `edit` applied.
std::string PlainManifest(const std::string& payload,
                          const std::function<void(nlohmann::json&)>& edit = {}) {
  nlohmann::json m = {{"format_version", 1},
                      {"created", "2026-12-03T17:00:00Z"},
                      {"encryption", nullptr},
                      {"signer", nullptr},
                      {"entries",
                       {{{"name", "model.onnx"},
                         {"size", payload.size()},
                         {"sha256", HexEncode(Sha256(payload))}}}}};
  if (edit) edit(m);
  return m.dump();
}

// The check named in a kBadInput error, e.g. "signature" for "pkg: signature: ...".
std::string CheckOf(const std::function<void()>& f, ErrorCode expect = ErrorCode::kBadInput) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), expect) << e.what();
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("pkg: ", 0), 0u) << what;
    const size_t colon = what.find(':', 5);
    return colon == std::string::npos ? what : what.substr(5, colon - 5);
  }
  return "no error";
}

std::string MessageOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

class ModelPackageTest : public ::testing::Test {
 protected:
  DataKey data_ = DataKey::Generate();
  Ed25519Key signer_ = Ed25519Key::Generate();
  TrustedKeys trusted_ = [this] {
    TrustedKeys t;
    t.Add(Ed25519Key::FromPem(signer_.PublicPem()));
    return t;
  }();

  // Parse, verify (when signed), open: the whole reader's path.
  std::vector<PackagePart> Open(const std::string& bytes, const DataKey* key) {
    const ParsedPackage p = ParsePackage(bytes, "pkg");
    if (p.is_signed) VerifyPackageSignature(p, trusted_, "pkg");
    return OpenPackagePayload(p, key, "pkg");
  }
  void ExpectRoundTrip(const DataKey* enc, const Ed25519Key* sign) {
    const std::string bytes = WritePackage(Input(), enc, sign);
    const ParsedPackage p = ParsePackage(bytes, "pkg");
    EXPECT_EQ(p.format_version, 1);
    EXPECT_EQ(p.encrypted, enc != nullptr);
    EXPECT_EQ(p.is_signed, sign != nullptr);
    EXPECT_EQ(p.signer_fingerprint, sign ? SignerFingerprint(*sign) : "");
    EXPECT_EQ(p.data_key_id, enc ? enc->KeyId() : "");
    EXPECT_EQ(p.manifest["name"], "yolo");
    EXPECT_EQ(p.manifest["version"], 3);
    EXPECT_EQ(p.manifest["entries"].size(), 2u);
    EXPECT_EQ(p.manifest["entries"][0]["sha256"], HexEncode(Sha256(kModel)));
    EXPECT_EQ(p.manifest["encryption"].is_null(), enc == nullptr);
    // The model's bytes are in the file exactly when it is not encrypted.
    EXPECT_EQ(bytes.find(kModel) != std::string::npos, enc == nullptr);
    const auto parts = Open(bytes, enc);
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(parts[0].name, "model.onnx");
    EXPECT_EQ(Text(parts[0].bytes), kModel);
    EXPECT_EQ(parts[1].name, "golden/bus.jpg");
    EXPECT_EQ(Text(parts[1].bytes), kGolden);
    EXPECT_EQ(p.signed_bytes.size() + 2 + (sign ? 64 : 0), bytes.size());
  }
};

TEST_F(ModelPackageTest, RoundTripsInEveryMode) {
  ExpectRoundTrip(nullptr, nullptr);
  ExpectRoundTrip(nullptr, &signer_);
  ExpectRoundTrip(&data_, &signer_);
  ExpectRoundTrip(&data_, nullptr);
}

TEST_F(ModelPackageTest, EncryptionIsFreshPerPackage) {
  const std::string a = WritePackage(Input(), &data_, nullptr);
  const std::string b = WritePackage(Input(), &data_, nullptr);
  const ParsedPackage pa = ParsePackage(a, "pkg"), pb = ParsePackage(b, "pkg");
  EXPECT_NE(pa.manifest["encryption"]["salt"], pb.manifest["encryption"]["salt"]);
  EXPECT_NE(pa.manifest["encryption"]["nonce"], pb.manifest["encryption"]["nonce"]);
  EXPECT_NE(pa.payload, pb.payload);
  EXPECT_EQ(pa.manifest["encryption"]["alg"], "AES-256-GCM");
  EXPECT_EQ(pa.manifest["encryption"]["kdf"], "HKDF-SHA256");
}

TEST_F(ModelPackageTest, FlippedByteInEachSectionIsRefusedByTheRightCheck) {
  const std::string good = WritePackage(Input(), &data_, &signer_);
  const ParsedPackage p = ParsePackage(good, "pkg");
  const size_t manifest_at = 16, payload_at = p.header_and_manifest.size() + 8;
  const size_t tag_at = payload_at + p.payload.size() - 16;
  const size_t sig_at = good.size() - 64;
  auto flipped = [&](size_t at, char mask = 0x01) {
    std::string bad = good;
    bad[at] ^= mask;
    return bad;
  };
  // Header: the magic, the version, a flag bit beyond the known ones.
  EXPECT_EQ(CheckOf([&] { Open(flipped(0), &data_); }), "format");
  EXPECT_EQ(CheckOf([&] { Open(flipped(8), &data_); }), "format");
  EXPECT_EQ(CheckOf([&] { Open(flipped(10, 0x10), &data_); }), "format");
  // Clearing the signed flag: the signature length and the manifest's signer disagree.
  EXPECT_EQ(CheckOf([&] { Open(flipped(10, 0x02), &data_); }), "format");
  // Manifest: a byte inside the "yolo" name keeps the JSON valid; the signature catches it.
  const size_t name_at = good.find("yolo");
  ASSERT_LT(name_at, payload_at);
  ASSERT_GT(name_at, manifest_at);
  EXPECT_EQ(CheckOf([&] { Open(flipped(name_at), &data_); }), "signature");
  // Ciphertext, tag, signature.
  EXPECT_EQ(CheckOf([&] { Open(flipped(payload_at + 5), &data_); }), "signature");
  EXPECT_EQ(CheckOf([&] { Open(flipped(tag_at + 3), &data_); }), "signature");
  EXPECT_EQ(CheckOf([&] { Open(flipped(sig_at + 10), &data_); }), "signature");
  EXPECT_EQ(CheckOf([&] { Open(flipped(good.size() - 1), &data_); }), "signature");
  EXPECT_NO_THROW(Open(good, &data_));
}

TEST_F(ModelPackageTest, UnsignedEncryptedTamperIsADecryptionFailure) {
  const std::string good = WritePackage(Input(), &data_, nullptr);
  const ParsedPackage p = ParsePackage(good, "pkg");
  const size_t payload_at = p.header_and_manifest.size() + 8;
  // The manifest is the AES-GCM associated data: changing it fails decryption.
  for (size_t at : {good.find("yolo"), payload_at, payload_at + p.payload.size() - 1}) {
    std::string bad = good;
    bad[at] ^= 0x01;
    const std::string message = MessageOf([&] { Open(bad, &data_); });
    EXPECT_EQ(message,
              "pkg: decryption: authentication failed (wrong data key or tampered "
              "package)")
        << "byte " << at;
    EXPECT_EQ(message.find(HexEncode(data_.raw())), std::string::npos);
  }
}

TEST_F(ModelPackageTest, UnsignedPlainTamperIsAnIntegrityFailure) {
  std::string bad = WritePackage(Input(), nullptr, nullptr);
  bad[bad.find("golden image")] ^= 0x01;
  EXPECT_EQ(CheckOf([&] { Open(bad, nullptr); }), "integrity");
  const std::string message = MessageOf([&] { Open(bad, nullptr); });
  EXPECT_NE(message.find("golden/bus.jpg"), std::string::npos) << message;
}

TEST_F(ModelPackageTest, TruncationAtEveryBoundaryAndRandomLengths) {
  const std::string good = WritePackage(Input(), &data_, &signer_);
  const ParsedPackage p = ParsePackage(good, "pkg");
  const size_t manifest_end = p.header_and_manifest.size();
  const size_t payload_end = manifest_end + 8 + p.payload.size();
  std::vector<size_t> cuts = {0,
                              1,
                              7,
                              8,
                              10,
                              12,
                              15,
                              16,
                              manifest_end - 1,
                              manifest_end,
                              manifest_end + 4,
                              manifest_end + 8,
                              payload_end - 16,
                              payload_end - 1,
                              payload_end,
                              payload_end + 1,
                              payload_end + 2,
                              good.size() - 1};
  std::mt19937 rng(15);
  for (int i = 0; i < 40; ++i) cuts.push_back(rng() % good.size());
  for (size_t cut : cuts) {
    const std::string message = MessageOf([&] { ParsePackage(good.substr(0, cut), "pkg"); });
    EXPECT_EQ(message.rfind("pkg: format: ", 0), 0u) << cut << ": " << message;
  }
  EXPECT_EQ(MessageOf([&] { ParsePackage(good.substr(0, manifest_end + 8), "pkg"); }),
            "pkg: format: truncated: payload needs " + std::to_string(p.payload.size()) +
                " bytes, 0 left");
}

TEST_F(ModelPackageTest, TrailingBytesAreRefused) {
  for (const std::string& good :
       {WritePackage(Input(), &data_, &signer_), WritePackage(Input(), nullptr, nullptr)}) {
    const std::string message = MessageOf([&] { ParsePackage(good + "x", "pkg"); });
    EXPECT_EQ(message, "pkg: format: 1 bytes of trailing data after the signature");
  }
}

TEST_F(ModelPackageTest, WrongOrMissingDataKey) {
  const std::string bytes = WritePackage(Input(), &data_, &signer_);
  const DataKey other = DataKey::Generate();
  const std::string message = MessageOf([&] { Open(bytes, &other); });
  EXPECT_EQ(message.rfind("pkg: decryption: wrong data key", 0), 0u) << message;
  EXPECT_NE(message.find(data_.KeyId()), std::string::npos);
  EXPECT_EQ(message.find(HexEncode(other.raw())), std::string::npos);
  EXPECT_EQ(message.find(HexEncode(data_.raw())), std::string::npos);
  EXPECT_EQ(CheckOf([&] { Open(bytes, nullptr); }, ErrorCode::kInvalidArgument), "decryption");
  // A plain package ignores a key it does not need.
  EXPECT_NO_THROW(Open(WritePackage(Input(), nullptr, &signer_), &other));
}

TEST_F(ModelPackageTest, UntrustedSignerAndUnsignedPackage) {
  const Ed25519Key stranger = Ed25519Key::Generate();
  const std::string bytes = WritePackage(Input(), nullptr, &stranger);
  const std::string message = MessageOf([&] { Open(bytes, nullptr); });
  EXPECT_EQ(message, "pkg: signature: signed by " + SignerFingerprint(stranger) +
                         " which is not in the trusted keys (1 key)");
  const ParsedPackage unsigned_package =
      ParsePackage(WritePackage(Input(), nullptr, nullptr), "pkg");
  EXPECT_EQ(CheckOf([&] { VerifyPackageSignature(unsigned_package, trusted_, "pkg"); }),
            "signature");
  // A signature by the trusted key over different bytes, with the fingerprint kept.
  std::string spliced = WritePackage(Input(), nullptr, &signer_);
  const std::string other = WritePackage(Input(), nullptr, &signer_);
  spliced.replace(spliced.size() - 64, 64, other.substr(other.size() - 64));
  if (spliced != other) {
    EXPECT_EQ(CheckOf([&] { Open(spliced, nullptr); }), "signature");
  }
}

TEST_F(ModelPackageTest, FlagsMustAgreeWithTheManifest) {
  const std::string payload = "payload";
  const std::string m = PlainManifest(payload);
  EXPECT_NO_THROW(OpenPackagePayload(ParsePackage(Assemble(0, m, payload), "pkg"), nullptr, "pkg"));
  // Flags say signed, the manifest's signer is null.
  EXPECT_EQ(CheckOf([&] { ParsePackage(Assemble(2, m, payload, std::string(64, 's')), "pkg"); }),
            "manifest");
  // Flags say encrypted, the manifest's encryption is null.
  EXPECT_EQ(CheckOf([&] { ParsePackage(Assemble(1, m, payload + std::string(16, 't')), "pkg"); }),
            "manifest");
  // The manifest names a signer, the flags say unsigned.
  const std::string with_signer = PlainManifest(payload, [&](nlohmann::json& j) {
    j["signer"] = {{"alg", "Ed25519"}, {"fingerprint", SignerFingerprint(signer_)}};
  });
  EXPECT_EQ(CheckOf([&] { ParsePackage(Assemble(0, with_signer, payload), "pkg"); }), "manifest");
  // Signature length that disagrees with the flag.
  EXPECT_EQ(CheckOf([&] { ParsePackage(Assemble(0, m, payload, std::string(64, 's')), "pkg"); }),
            "format");
  EXPECT_EQ(CheckOf([&] { ParsePackage(Assemble(0, m, payload, std::string(3, 's')), "pkg"); }),
            "format");
  // Missing required fields and wrong types.
  for (const char* field : {"format_version", "created", "entries", "encryption", "signer"}) {
    const std::string bad = PlainManifest(payload, [&](nlohmann::json& j) { j.erase(field); });
    EXPECT_EQ(CheckOf([&] { ParsePackage(Assemble(0, bad, payload), "pkg"); }), "manifest")
        << field;
  }
  const std::string v2 = PlainManifest(payload, [](nlohmann::json& j) { j["format_version"] = 2; });
  EXPECT_EQ(CheckOf([&] { ParsePackage(Assemble(0, v2, payload), "pkg"); }), "manifest");
  EXPECT_EQ(CheckOf([&] { ParsePackage(Assemble(0, m, payload, "", 2), "pkg"); }), "format");
  EXPECT_EQ(CheckOf([&] { ParsePackage(Assemble(0, "[1, 2]", payload), "pkg"); }), "manifest");
  EXPECT_EQ(CheckOf([&] { ParsePackage(Assemble(0, "{not json", payload), "pkg"); }), "manifest");
  const std::string deep = std::string(200, '[') + std::string(200, ']');
  EXPECT_NE(MessageOf([&] { ParsePackage(Assemble(0, deep, payload), "pkg"); }).find("deeper"),
            std::string::npos);
}

TEST_F(ModelPackageTest, HugeLengthsAreRefusedBeforeAnyAllocation) {
  std::string header = "CVDMPKG1";
  Le(header, 1, 2);
  Le(header, 0, 2);
  Le(header, 0xFFFFFFFFu, 4);
  EXPECT_EQ(MessageOf([&] { ParsePackage(header + "{}", "pkg"); }),
            "pkg: format: manifest of 4294967295 bytes is larger than the limit 16777216");
  std::string huge_payload = "CVDMPKG1";
  Le(huge_payload, 1, 2);
  Le(huge_payload, 0, 2);
  Le(huge_payload, 2, 4);
  huge_payload += "{}";
  Le(huge_payload, ~uint64_t{0}, 8);
  EXPECT_EQ(MessageOf([&] { ParsePackage(huge_payload + "abc", "pkg"); }),
            "pkg: format: truncated: payload needs 18446744073709551615 bytes, 3 left");
  // Entry sizes that would overflow when summed.
  const std::string payload = "abc";
  const std::string overflow = PlainManifest(payload, [](nlohmann::json& j) {
    j["entries"] = {
        {{"name", "model.onnx"}, {"size", ~uint64_t{0}}, {"sha256", std::string(64, '0')}},
        {{"name", "golden/b"}, {"size", 4}, {"sha256", std::string(64, '0')}}};
  });
  EXPECT_EQ(CheckOf([&] { ParsePackage(Assemble(0, overflow, payload), "pkg"); }), "manifest");
}

TEST_F(ModelPackageTest, EntryNamesMustBeSafeAndUniqueAndSizesMustAddUp) {
  const std::string payload = "abcdef";
  const std::string sha = HexEncode(Sha256("abc"));
  auto entries = [&](const std::string& a, const std::string& b, uint64_t size_b = 3) {
    return PlainManifest(payload, [&](nlohmann::json& j) {
      j["entries"] = {{{"name", a}, {"size", 3}, {"sha256", sha}},
                      {{"name", b}, {"size", size_b}, {"sha256", HexEncode(Sha256("def"))}}};
    });
  };
  EXPECT_NO_THROW(ParsePackage(Assemble(0, entries("model.onnx", "golden/x.jpg"), payload), "pkg"));
  for (const std::string& bad :
       {std::string("../x"), std::string("golden/../../x"), std::string("/etc/passwd"),
        std::string("golden/a\0b", 10), std::string(""), std::string("golden//b"),
        std::string("golden/./a"), std::string("golden/a\\b"), std::string("golden/a/b"),
        std::string("golden/.hidden"), std::string("golden/golden.json"),
        std::string("golden/a\nchecks OK"), std::string("golden/\x1b[2K"), std::string("golden/"),
        std::string("other.bin"), std::string("golden/") + std::string(256, 'x')}) {
    EXPECT_EQ(
        CheckOf([&] { ParsePackage(Assemble(0, entries("model.onnx", bad), payload), "pkg"); }),
        "manifest")
        << bad;
  }
  const std::string dup = MessageOf(
      [&] { ParsePackage(Assemble(0, entries("model.onnx", "model.onnx"), payload), "pkg"); });
  EXPECT_NE(dup.find("not golden/NAME"), std::string::npos) << dup;
  const std::string three = "abcdefghi";
  const std::string twice_golden = PlainManifest(three, [&](nlohmann::json& j) {
    j["entries"] = {{{"name", "model.onnx"}, {"size", 3}, {"sha256", HexEncode(Sha256("abc"))}},
                    {{"name", "golden/x"}, {"size", 3}, {"sha256", HexEncode(Sha256("def"))}},
                    {{"name", "golden/x"}, {"size", 3}, {"sha256", HexEncode(Sha256("ghi"))}}};
  });
  const std::string dup_golden =
      MessageOf([&] { ParsePackage(Assemble(0, twice_golden, three), "pkg"); });
  EXPECT_NE(dup_golden.find("duplicate name"), std::string::npos) << dup_golden;
  EXPECT_EQ(CheckOf([&] {
              ParsePackage(Assemble(0, entries("model.onnx", "golden/b", 2), payload), "pkg");
            }),
            "manifest");
  EXPECT_EQ(CheckOf([&] {
              ParsePackage(Assemble(0, entries("model.onnx", "golden/b", 4), payload), "pkg");
            }),
            "manifest");
  // The model must come first.
  EXPECT_EQ(CheckOf([&] {
              ParsePackage(Assemble(0, entries("golden/x.jpg", "model.onnx"), payload), "pkg");
            }),
            "manifest");
  // The writer refuses the same names.
  PackageInput in = Input();
  in.parts.emplace_back("../evil", Bytes("x"));
  EXPECT_THROW(WritePackage(in, nullptr, nullptr), Error);
  PackageInput twice = Input();
  twice.parts.emplace_back("model.onnx", Bytes("x"));
  EXPECT_THROW(WritePackage(twice, nullptr, nullptr), Error);
}

TEST(DataKeyTest, TextFormAndKeyId) {
  const DataKey key = DataKey::Generate();
  const std::string text = key.Text();
  ASSERT_EQ(text.size(), 65u);
  EXPECT_EQ(text.back(), '\n');
  const DataKey again = DataKey::FromText("  " + text + "\n", "test");
  EXPECT_EQ(again.raw(), key.raw());
  EXPECT_EQ(again.KeyId(), key.KeyId());
  EXPECT_EQ(key.KeyId().size(), 16u);
  EXPECT_EQ(text.find(key.KeyId()), std::string::npos) << "the key id reveals key bytes";
  EXPECT_NE(DataKey::Generate().KeyId(), key.KeyId());
}

TEST(DataKeyTest, RejectedTextIsNotEchoed) {
  const std::string secretish = "s3cr3t-" + std::string(57, 'z');
  const std::string short_hex = std::string(62, 'a');
  for (const std::string& text : {secretish, short_hex, std::string(66, 'b'), std::string()}) {
    try {
      DataKey::FromText(text, "KEYSRC");
      FAIL() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      const std::string what = e.what();
      EXPECT_NE(what.find("KEYSRC"), std::string::npos);
      if (!text.empty()) {
        EXPECT_EQ(what.find(text.substr(0, 12)), std::string::npos) << what;
      }
    }
  }
}

class KeyFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cvdeploy_pkg_keys_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "trusted");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text, mode_t mode = 0644) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  fs::path dir_;
};

TEST_F(KeyFilesTest, DataKeyFromFileChecksModeAndContent) {
  const DataKey key = DataKey::Generate();
  EXPECT_EQ(DataKey::FromFile(Write("data.key", key.Text(), 0600)).raw(), key.raw());
  const std::string open = Write("open.key", key.Text(), 0644);
  try {
    DataKey::FromFile(open);
    FAIL() << "a 0644 key file was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).find(HexEncode(key.raw())), std::string::npos);
  }
  try {
    DataKey::FromFile((dir_ / "missing.key").string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
  const std::string garbage = Write("garbage.key", "password123 not a key\n", 0600);
  try {
    DataKey::FromFile(garbage);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).find("password123"), std::string::npos) << e.what();
  }
}

TEST_F(KeyFilesTest, TrustedKeysReadEveryPubFile) {
  const Ed25519Key a = Ed25519Key::Generate(), b = Ed25519Key::Generate();
  Write("trusted/a.pub", a.PublicPem());
  Write("trusted/b.pub", b.PublicPem());
  Write("trusted/notes.txt", "not a key");
  const TrustedKeys keys = TrustedKeys::FromDir((dir_ / "trusted").string());
  EXPECT_EQ(keys.size(), 2u);
  ASSERT_NE(keys.Find(SignerFingerprint(a)), nullptr);
  EXPECT_EQ(keys.Find(SignerFingerprint(a))->RawPublic(), a.RawPublic());
  EXPECT_NE(keys.Find(SignerFingerprint(b)), nullptr);
  EXPECT_EQ(keys.Find(SignerFingerprint(Ed25519Key::Generate())), nullptr);
  EXPECT_EQ(SignerFingerprint(a).size(), 8u + 32u);
  // The untrusted message names the directory and the count.
  const Ed25519Key stranger = Ed25519Key::Generate();
  const ParsedPackage p = ParsePackage(WritePackage(Input(), nullptr, &stranger), "pkg");
  EXPECT_EQ(MessageOf([&] { VerifyPackageSignature(p, keys, "pkg"); }),
            "pkg: signature: signed by " + SignerFingerprint(stranger) +
                " which is not in the trusted keys (2 keys in " + (dir_ / "trusted").string() +
                ")");
}

TEST_F(KeyFilesTest, ABadTrustStoreIsAnErrorNamingTheFile) {
  EXPECT_THROW(TrustedKeys::FromDir((dir_ / "trusted").string()), Error);  // empty
  EXPECT_THROW(TrustedKeys::FromDir((dir_ / "nope").string()), Error);
  Write("trusted/good.pub", Ed25519Key::Generate().PublicPem());
  Write("trusted/bad.pub", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
  const std::string message = MessageOf([&] { TrustedKeys::FromDir((dir_ / "trusted").string()); });
  EXPECT_NE(message.find("bad.pub"), std::string::npos) << message;
  fs::remove(dir_ / "trusted" / "bad.pub");
  Write("trusted/private.pub", Ed25519Key::Generate().PrivatePem());
  const std::string priv = MessageOf([&] { TrustedKeys::FromDir((dir_ / "trusted").string()); });
  EXPECT_NE(priv.find("private.pub: holds a private key"), std::string::npos) << priv;
  EXPECT_EQ(priv.find("BEGIN"), std::string::npos);
}

TEST(ModelPackagePathTest, IsPackagePath) {
  EXPECT_TRUE(IsPackagePath("m/1/model.cvdm"));
  EXPECT_FALSE(IsPackagePath("model.onnx"));
  EXPECT_FALSE(IsPackagePath("model.cvdm.onnx"));
}

}  // namespace
}  // namespace cvdeploy::security
