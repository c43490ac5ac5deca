// SPDX-License-Identifier: Apache-2.0
#include "server/audit_sink.h"

#include <cstdio>
#include <memory>

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
  // Kept for stderr in case the entry cannot be written (Submit consumes the event).
  auto text = std::make_shared<std::string>(
      event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  auto finish = [this, text, done = std::move(done)](const Status& status) {
    if (status.ok()) {
      entries_.Inc();
      return done(true);
    }
    failures_.Inc();
    std::fprintf(stderr, "cvdeploy serve: error: audit log write failed (%s); event: %s\n",
                 status.message().c_str(), text->c_str());
    std::fflush(stderr);
    done(fail_open_);
  };
  try {
    submit_(std::move(event), finish);
  } catch (const std::exception& e) {
    finish(Status(ErrorCode::kUnavailable, e.what()));
  }
}

void AuditSink::Record(nlohmann::json event) {
  Record(std::move(event), [](bool) {});
}

}  // namespace cvdeploy::server
