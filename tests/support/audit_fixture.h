// SPDX-License-Identifier: Apache-2.0
// Test helpers for the audit log (security/audit_log.h): keys in a scratch directory, a log
// written with a known mix of events, and line-level editing of log files for tampering.
#pragma once

#include <string>
#include <vector>

#include "cvdeploy/security/audit_log.h"

namespace cvdeploy::testing {

struct AuditKeys {
  std::string dir, hmac_key_file, signing_key_file, public_key_file;
};

// A fresh directory with keys made by security::CreateAuditKeys.
AuditKeys MakeAuditKeys(const std::string& tag);

security::AuditOptions AuditTestOptions(const AuditKeys& keys, const std::string& path);

// The i-th test event (identities alice/bob/carol, actions infer/login/model_load, ...).
nlohmann::json AuditTestEvent(int i);

// Appends `count` test events through an AuditLog with `options`, then closes it (final
// checkpoint). Fails the test when an Append fails.
void WriteAuditTestLog(const security::AuditOptions& options, int count);

// The log's files in chain order: path.N ... path.1 path (those that exist).
std::vector<std::string> AuditFilesInOrder(const std::string& path);

std::vector<std::string> ReadLines(const std::string& path);                      // without '\n'
void WriteLines(const std::string& path, const std::vector<std::string>& lines);  // each + '\n'
void WriteText(const std::string& path, const std::string& text);

}  // namespace cvdeploy::testing
