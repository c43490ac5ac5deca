// SPDX-License-Identifier: Apache-2.0
// The server's door to the audit log: submits events (JSON objects) to the writer
// (security::AuditLog::Submit, or any function of that shape), counts them
// (cvdeploy_audit_entries_total, cvdeploy_audit_write_failures_total) and applies the
// fail-closed rule: when an entry could not be written and fail-open is off, the request that
// caused it must not be answered normally (the caller answers 503). The writer prints each
// entry it could not write to stderr (AuditLog does), so that the event is not lost. Without a
// writer (no --audit-log) every event is "written". Thread-safe (the writer's own guarantee plus
// atomic counters); callbacks run on the writer's thread or, without a writer, inline.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>

#include "cvdeploy/status.h"
#include "server/metrics.h"

namespace cvdeploy::server {

using AuditSubmit =
    std::function<void(nlohmann::json event, std::function<void(const Status&)> done)>;

class AuditSink {
 public:
  // `submit` empty: auditing is off.
  AuditSink(AuditSubmit submit, Registry& registry, bool fail_open);
  bool enabled() const { return static_cast<bool>(submit_); }
  // `done(proceed)`: true when the entry was written, or could not be and fail-open is on;
  // false when the caller must refuse (503). Never throws.
  void Record(nlohmann::json event, std::function<void(bool proceed)> done);
  // For events no request waits on (start/stop, reloads, model load): failures are counted
  // and printed to stderr.
  void Record(nlohmann::json event);

 private:
  AuditSubmit submit_;
  bool fail_open_;
  Counter& entries_;
  Counter& failures_;
};

}  // namespace cvdeploy::server
