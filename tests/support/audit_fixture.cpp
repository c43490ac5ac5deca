// SPDX-License-Identifier: Apache-2.0
#include "support/audit_fixture.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/assets.h"

namespace cvdeploy::testing {

AuditKeys MakeAuditKeys(const std::string& tag) {
  AuditKeys keys;
  keys.dir = MakeTempDir(tag);
  keys.hmac_key_file = keys.dir + "/audit.key";
  keys.signing_key_file = keys.dir + "/audit-signing.pem";
  keys.public_key_file = keys.signing_key_file + ".pub";
  security::CreateAuditKeys(keys.hmac_key_file, keys.signing_key_file, false);
  return keys;
}

security::AuditOptions AuditTestOptions(const AuditKeys& keys, const std::string& path) {
  security::AuditOptions options;
  options.path = path;
  options.hmac_key_file = keys.hmac_key_file;
  options.signing_key_file = keys.signing_key_file;
  return options;
}

nlohmann::json AuditTestEvent(int i) {
  static const char* const kIdentities[] = {"alice", "bob", "carol"};
  static const char* const kActions[] = {"infer", "login", "model_load", "infer"};
  nlohmann::json e;
  e["action"] = kActions[i % 4];
  e["identity"] = kIdentities[i % 3];
  e["method"] = "POST";
  e["route"] = "/v2/models/yolo/infer";
  e["model"] = "yolo11n";
  e["version"] = "1";
  e["status"] = i % 5 == 0 ? 403 : 200;
  e["bytes_in"] = 1000 + i;
  e["bytes_out"] = 200 + i;
  e["request_id"] = "req-" + std::to_string(i);
  e["client"] = "127.0.0.1";
  if (i % 7 == 0) e["reason"] = "unicode \xc3\xa9 and invalid \xff byte";
  return e;
}

void WriteAuditTestLog(const security::AuditOptions& options, int count) {
  security::AuditLog log(options);
  for (int i = 0; i < count; ++i) {
    const Status status = log.Append(AuditTestEvent(i));
    ASSERT_TRUE(status.ok()) << status.message();
  }
  const Status closed = log.Close();
  ASSERT_TRUE(closed.ok()) << closed.message();
}

std::vector<std::string> AuditFilesInOrder(const std::string& path) {
  std::vector<std::string> files;
  for (int k = 1; std::filesystem::exists(path + "." + std::to_string(k)); ++k) {
    files.insert(files.begin(), path + "." + std::to_string(k));
  }
  if (std::filesystem::exists(path)) files.push_back(path);
  return files;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  WriteText(path, text);
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace cvdeploy::testing
