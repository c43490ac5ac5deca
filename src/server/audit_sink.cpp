// SPDX-License-Identifier: Apache-2.0
#include "server/audit_sink.h"

#include <memory>
#include <string>

#include "server/log.h"

namespace cvdeploy::server {

AuditSink::AuditSink(AuditSubmit submit, Registry& registry, bool fail_open)
    : submit_(std::move(submit)),
      fail_open_(fail_open),
      entries_(
          registry.GetCounter("cvdeploy_audit_entries_total", "Audit log entries written", {})),
      failures_(registry.GetCounter("cvdeploy_audit_write_failures_total",
                                    "Audit log entries that could not be written", {})) {}

void AuditSink::Record(nlohmann::json event, std::function<void(bool proceed)> done) {
  if (!submit_) return done(true);
  auto finish = [this, done = std::move(done)](const Status& status) {
    if (status.ok()) {
      entries_.Inc();
      return done(true);
    }
    failures_.Inc();
    done(fail_open_);
  };
  try {
    submit_(std::move(event), finish);
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("audit entry not written: ") + e.what());
    finish(Status(ErrorCode::kUnavailable, e.what()));
  }
}

void AuditSink::Record(nlohmann::json event) {
  Record(std::move(event), [](bool) {});
}

}  // namespace cvdeploy::server
