// SPDX-License-Identifier: Apache-2.0
// TLS for the server: the OpenSSL server context (TLS 1.2/1.3, Mozilla "intermediate" ciphers,
// no compression, no renegotiation, ALPN http/1.1, optional mTLS) and TlsManager, which owns
// the current context and replaces it on reload.
//
// Contracts:
//  - MakeServerContext throws cvdeploy::Error naming the file and the reason: kNotFound
//    (missing file), kPermissionDenied (key file readable by group/others or owned by another
//    user), kBadInput (unreadable PEM, key that does not match the certificate).
//  - TlsManager is thread-safe. Context() hands out a shared_ptr: a connection keeps the
//    context it started with for its lifetime, so a reload never disturbs open connections.
//  - Reload() never throws: a failure is logged (one line, the reason) and the previous
//    context kept. No secret (key bytes) is ever logged.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cvdeploy/server.h"
#include "server/http.h"
#include "server/metrics.h"

namespace cvdeploy::server {

// What the logs and the expiry gauge say about a server certificate.
struct CertificateSummary {
  std::string subject;     // RFC 2253
  std::string serial_hex;  // upper-case hex
  std::time_t not_after = 0;
};

// "2027-12-03T14:21:00Z".
std::string FormatUtc(std::time_t t);

// The TLS 1.2 cipher list (TLS 1.3 suites are OpenSSL's defaults, all AEAD).
inline constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// A server context for `options` (see the file comment for errors). `summary`, when given,
// receives the leaf certificate's subject, serial and expiry.
std::shared_ptr<boost::asio::ssl::context> MakeServerContext(const TlsOptions& options,
                                                             CertificateSummary* summary = nullptr);

// The verified client certificate of an established connection; nullopt when the client sent
// none or it did not verify.
std::optional<PeerCertificate> VerifiedPeerCertificate(SSL* ssl);

// "protocol", "certificate", "timeout" or "other": the label of a failed handshake.
std::string HandshakeFailureReason(const boost::system::error_code& ec);

// Owns the server's current TLS context; see the file comment.
class TlsManager {
 public:
  using LogFn = std::function<void(const std::string& level, const std::string& message)>;
  // Told of every reload attempt: ok and the one-line detail that was logged. For the audit
  // log ("certificate reloaded" / "certificate reload failed"). Called on the reloading thread.
  using ReloadHook = std::function<void(bool ok, const std::string& detail)>;

  // Builds the first context (throws as MakeServerContext) and registers, when `registry` is
  // given, cvdeploy_tls_handshake_failures_total{reason}, cvdeploy_tls_reloads_total{result}
  // and cvdeploy_tls_certificate_expiry_timestamp_seconds. `registry` must outlive this.
  TlsManager(TlsOptions options, Registry* registry, LogFn log);

  std::shared_ptr<boost::asio::ssl::context> Context() const;
  CertificateSummary Certificate() const;
  const TlsOptions& options() const { return options_; }

  // Builds a new context from the files; true when it replaced the current one.
  bool Reload();
  // Reload() when a file's mtime, size or inode changed since the last attempt; false when
  // nothing changed or the reload failed. A failed set of files is not retried until it
  // changes again.
  bool ReloadIfChanged();
  void SetReloadHook(ReloadHook hook);

  // Counts a failed handshake under HandshakeFailureReason(ec). Thread-safe.
  void CountHandshakeFailure(const boost::system::error_code& ec);

 private:
  std::string FilesSignature() const;
  void Install(std::shared_ptr<boost::asio::ssl::context> context,
               const CertificateSummary& summary);

  const TlsOptions options_;
  LogFn log_;
  mutable std::mutex mu_;  // guards context_, summary_, hook_, signature_
  std::shared_ptr<boost::asio::ssl::context> context_;
  CertificateSummary summary_;
  ReloadHook hook_;
  std::string signature_;
  std::mutex reload_mu_;  // one reload at a time
  Counter *failures_protocol_ = nullptr, *failures_certificate_ = nullptr,
          *failures_timeout_ = nullptr, *failures_other_ = nullptr;
  Counter *reloads_ok_ = nullptr, *reloads_failed_ = nullptr;
  Gauge* expiry_ = nullptr;
};

}  // namespace cvdeploy::server
