// SPDX-License-Identifier: Apache-2.0
// `cvdeploy audit keygen|verify|show` end to end: keys made by the CLI drive the library's
// writer; verify's exit codes and its "FILE:LINE seq S: reason" line for each kind of
// tampering; what is reported as not checked without keys; a live log with --allow-open;
// show's table, filters and JSON.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "cvdeploy/security/audit_log.h"
#include "support/assets.h"
#include "support/audit_fixture.h"
#include "support/process.h"

namespace cvdeploy::testing {
namespace {

struct CliLog {
  AuditKeys keys;
  std::string path;
};

// Keys from `audit keygen`, then a 34-line log (seq == line; checkpoints at 11, 22, 33, 34).
CliLog MakeLog(const std::string& tag) {
  CliLog log;
  log.keys.dir = MakeTempDir(tag);
  log.keys.hmac_key_file = log.keys.dir + "/audit.key";
  log.keys.signing_key_file = log.keys.dir + "/signing.pem";
  log.keys.public_key_file = log.keys.signing_key_file + ".pub";
  const auto run = RunCli({"audit", "keygen", "--hmac-key-file", log.keys.hmac_key_file,
                           "--signing-key", log.keys.signing_key_file});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("BEGIN PUBLIC KEY"), std::string::npos) << run.out;
  log.path = log.keys.dir + "/audit.log";
  security::AuditOptions options = AuditTestOptions(log.keys, log.path);
  options.checkpoint_every = 10;
  WriteAuditTestLog(options, 30);
  return log;
}

std::vector<std::string> Verify(const CliLog& log, const std::string& file) {
  return {"audit",
          "verify",
          file,
          "--hmac-key-file",
          log.keys.hmac_key_file,
          "--public-key",
          log.keys.public_key_file};
}

TEST(CliAudit, KeygenWritesPrivateKeysAndRefusesToOverwrite) {
  const CliLog log = MakeLog("cli_audit_keygen");
  struct stat st {};
  ASSERT_EQ(::stat(log.keys.hmac_key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(log.keys.signing_key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(std::filesystem::exists(log.keys.public_key_file));
  ExpectCliError({"audit", "keygen", "--hmac-key-file", log.keys.hmac_key_file, "--signing-key",
                  log.keys.signing_key_file},
                 2, "refusing to overwrite");
}

TEST(CliAudit, VerifyIntactLogAndSaysWhatWasChecked) {
  const CliLog log = MakeLog("cli_audit_ok");
  auto run = RunCli(Verify(log, log.path));
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(Verify(log, log.path), run);
  EXPECT_EQ(run.out, "ok: 34 entries, 4 checkpoints, last seq 34\n");
  run = RunCli({"audit", "verify", log.path});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("HMACs not checked"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("signatures not checked"), std::string::npos) << run.out;
}

TEST(CliAudit, VerifyNamesTheFirstBrokenEntry) {
  const CliLog log = MakeLog("cli_audit_tamper");
  const auto pristine = ReadLines(log.path);
  const std::string copy = log.keys.dir + "/copy.log";
  struct Case {
    const char* name;
    std::function<void(std::vector<std::string>&)> edit;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"edit", [](auto& l) { l[6].replace(l[6].find("req-6"), 5, "req-9"); },
       ":7 seq 7: HMAC mismatch (modified)"},
      {"delete", [](auto& l) { l.erase(l.begin() + 2); }, ":3 seq 4: seq gap (deleted)"},
      {"swap", [](auto& l) { std::swap(l[2], l[3]); }, ":3 seq 4: seq out of order"},
      {"insert_copy", [](auto& l) { l.insert(l.begin() + 12, l[1]); },
       ":13 seq 2: seq out of order"},
      {"truncate", [](auto& l) { l.resize(11); }, ":12 seq 12: truncated after checkpoint"},
      {"open", [](auto& l) { l.resize(15); }, ":16 seq 16: missing final checkpoint"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto lines = pristine;
    c.edit(lines);
    WriteLines(copy, lines);
    ExpectCliError(Verify(log, copy), 3, copy + c.expected);
  }
  // A live log is accepted only with --allow-open, and the output says it is open.
  auto args = Verify(log, copy);
  args.push_back("--allow-open");
  const auto run = RunCli(args);
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  EXPECT_NE(run.out.find("open: 4 entries after last checkpoint"), std::string::npos) << run.out;
}

TEST(CliAudit, VerifyRefusesAnOpenKeyFileAndMissingLog) {
  const CliLog log = MakeLog("cli_audit_perm");
  ::chmod(log.keys.hmac_key_file.c_str(), 0644);
  ExpectCliError(Verify(log, log.path), 2, "too open");
  ::chmod(log.keys.hmac_key_file.c_str(), 0600);
  ExpectCliError(Verify(log, log.keys.dir + "/none.log"), 3, "none.log");
}

TEST(CliAudit, ShowPrintsAFilteredTableAndJson) {
  const CliLog log = MakeLog("cli_audit_show");
  auto run = RunCli({"audit", "show", log.path});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("IDENTITY"), std::string::npos);
  EXPECT_NE(run.out.find("req-29"), std::string::npos);
  EXPECT_NE(run.out.find("checkpoint"), std::string::npos);
  run = RunCli({"audit", "show", log.path, "--identity", "bob", "--action", "login", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto rows = ParseJsonLines(run.out);
  ASSERT_FALSE(rows.empty());
  for (const auto& row : rows) {
    EXPECT_EQ(row["event"]["identity"], "bob");
    EXPECT_EQ(row["event"]["action"], "login");
    EXPECT_EQ(row["seq"], row["line"]);
  }
  // i % 3 == 1 and i % 4 == 1: i = 1, 13, 25 of 0..29.
  EXPECT_EQ(rows.size(), 3u);
  run = RunCli({"audit", "show", log.path, "--until", "2000-01-01", "--json"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_TRUE(run.out.empty()) << run.out;
  run = RunCli({"audit", "show", log.path, "--since", "2000-01-01T00:00Z", "--json"});
  EXPECT_EQ(ParseJsonLines(run.out).size(), 34u);
  ExpectCliError({"audit", "show", log.path, "--since", "yesterday"}, 2, "--since yesterday");
}

}  // namespace
}  // namespace cvdeploy::testing
