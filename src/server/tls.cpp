// SPDX-License-Identifier: Apache-2.0
#include "server/tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <cerrno>
#include <cstring>

#include "cvdeploy/error.h"
#include "cvdeploy/security/secret_file.h"

namespace cvdeploy::server {
namespace {

namespace ssl = boost::asio::ssl;

// The most recent OpenSSL error as text; clears the queue.
std::string OpenSslError() {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// kNotFound for a missing file, kBadInput for anything but a regular file.
void CheckInputFile(const std::string& path, const char* what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) throw NotFound(path + ": no such file (" + what + ")");
    throw BadInput(path + ": cannot read the " + what + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) throw BadInput(path + ": the " + what + " is not a regular file");
}

std::string NameRfc2253(const X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "";
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, n > 0 ? static_cast<size_t>(n) : 0);
  BIO_free(bio);
  return out;
}

std::string SerialHex(const X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (bn == nullptr) return "";
  char* hex = BN_bn2hex(bn);
  std::string out = hex ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

std::time_t NotAfter(const X509* cert) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return 0;
  return timegm(&tm);
}

void Sans(const X509* cert, std::vector<std::string>* out) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    auto text = [](const ASN1_STRING* s) {
      return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<size_t>(ASN1_STRING_length(s)));
    };
    switch (name->type) {
      case GEN_DNS:
        out->push_back("DNS:" + text(name->d.dNSName));
        break;
      case GEN_EMAIL:
        out->push_back("email:" + text(name->d.rfc822Name));
        break;
      case GEN_URI:
        out->push_back("URI:" + text(name->d.uniformResourceIdentifier));
        break;
      case GEN_IPADD: {
        const std::string raw = text(name->d.iPAddress);
        char buf[INET6_ADDRSTRLEN] = {};
        const int family = raw.size() == 4 ? AF_INET : raw.size() == 16 ? AF_INET6 : 0;
        if (family != 0 && inet_ntop(family, raw.data(), buf, sizeof buf) != nullptr) {
          out->push_back(std::string("IP:") + buf);
        }
        break;
      }
      default:
        break;
    }
  }
  GENERAL_NAMES_free(names);
}

// Selects http/1.1 when the client offers it; a client that offers ALPN without it is served
// without ALPN (RFC 7301 allows the server to ignore the extension).
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

// Never prompts for a passphrase: an encrypted key is refused.
int NoPassword(char*, int, int, void*) { return 0; }

void ConfigureProtocol(SSL_CTX* c) {
  if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1) {
    throw RuntimeError("TLS: cannot restrict the protocol to TLS 1.2-1.3: " + OpenSslError());
  }
  // Compression: CRIME; renegotiation: a client-triggered CPU sink and the 2009 splice attack.
  // Session tickets off as Mozilla's intermediate profile advises (the ticket key is never
  // rotated here); resumption still works from the server's session cache.
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  // Intermediate profile: every offered suite is strong, so the client (which knows whether
  // it has AES hardware) chooses.
  SSL_CTX_clear_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1 ||
      SSL_CTX_set1_groups_list(c, "X25519:P-256:P-384") != 1) {
    throw RuntimeError("TLS: cannot set the cipher list: " + OpenSslError());
  }
  SSL_CTX_set_alpn_select_cb(c, SelectAlpn, nullptr);
  static const unsigned char kSessionContext[] = "cvdeploy";
  SSL_CTX_set_session_id_context(c, kSessionContext, sizeof kSessionContext - 1);
}

void LoadKey(SSL_CTX* c, const TlsOptions& o) {
  std::string pem = security::ReadSecretFile(o.key_file);  // permission and owner checks
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio, nullptr, NoPassword, nullptr) : nullptr;
  BIO_free(bio);
  OPENSSL_cleanse(pem.data(), pem.size());
  if (key == nullptr) {
    ERR_clear_error();  // the reason may quote the file's structure; say what matters
    throw BadInput(o.key_file + ": not a readable PEM private key (or it is encrypted)");
  }
  const int used = SSL_CTX_use_PrivateKey(c, key);
  EVP_PKEY_free(key);
  if (used != 1 || SSL_CTX_check_private_key(c) != 1) {
    ERR_clear_error();
    throw BadInput(o.key_file + ": the private key does not match the certificate " + o.cert_file);
  }
}

void ConfigureClientAuth(SSL_CTX* c, const TlsOptions& o) {
  if (o.client_auth == ClientAuth::kNone) return;
  if (o.client_ca_file.empty()) {
    throw InvalidArgument("TLS: client certificate verification needs a client CA file",
                          "tls_client_ca");
  }
  CheckInputFile(o.client_ca_file, "client CA");
  if (SSL_CTX_load_verify_locations(c, o.client_ca_file.c_str(), nullptr) != 1) {
    throw BadInput(o.client_ca_file + ": not a readable PEM CA certificate (" + OpenSslError() +
                   ")");
  }
  // The CA names sent in the CertificateRequest, so clients pick the right certificate.
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.client_ca_file.c_str())) {
    SSL_CTX_set_client_CA_list(c, names);
  }
  ERR_clear_error();
  int mode = SSL_VERIFY_PEER;
  if (o.client_auth == ClientAuth::kRequired) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(c, mode, nullptr);
  SSL_CTX_set_verify_depth(c, 8);
}

}  // namespace

std::string FormatUtc(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::shared_ptr<ssl::context> MakeServerContext(const TlsOptions& o, CertificateSummary* summary) {
  if (o.cert_file.empty() || o.key_file.empty()) {
    throw InvalidArgument("TLS needs both a certificate and a key file", "tls_cert");
  }
  CheckInputFile(o.cert_file, "certificate");
  CheckInputFile(o.key_file, "private key");
  ERR_clear_error();
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* c = context->native_handle();
  ConfigureProtocol(c);
  if (SSL_CTX_use_certificate_chain_file(c, o.cert_file.c_str()) != 1) {
    throw BadInput(o.cert_file + ": not a readable PEM certificate chain (" + OpenSslError() + ")");
  }
  LoadKey(c, o);
  ConfigureClientAuth(c, o);
  if (summary != nullptr) {
    const X509* leaf = SSL_CTX_get0_certificate(c);
    *summary = CertificateSummary{};
    if (leaf != nullptr) {
      summary->subject = NameRfc2253(X509_get_subject_name(leaf));
      summary->serial_hex = SerialHex(leaf);
      summary->not_after = NotAfter(leaf);
    }
  }
  return context;
}

std::optional<PeerCertificate> VerifiedPeerCertificate(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return std::nullopt;
  PeerCertificate peer;
  peer.subject = NameRfc2253(X509_get_subject_name(cert));
  peer.issuer = NameRfc2253(X509_get_issuer_name(cert));
  Sans(cert, &peer.sans);
  peer.serial_hex = SerialHex(cert);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, EVP_sha256(), md, &n) == 1) {
    static const char* kHex = "0123456789abcdef";
    for (unsigned int i = 0; i < n; ++i) {
      peer.sha256_fingerprint += kHex[md[i] >> 4];
      peer.sha256_fingerprint += kHex[md[i] & 15];
    }
  }
  return peer;
}

std::string HandshakeFailureReason(const boost::system::error_code& ec) {
  if (ec == boost::beast::error::timeout) return "timeout";
  if (ec.category() != boost::asio::error::get_ssl_category()) return "other";
  switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
      return "protocol";
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return "certificate";
    default:
      return "other";
  }
}

TlsManager::TlsManager(TlsOptions options, Registry* registry, LogFn log)
    : options_(std::move(options)), log_(std::move(log)) {
  if (registry != nullptr) {
    const std::string help =
        "TLS handshakes that failed, by reason: protocol (version, cipher, not TLS), "
        "certificate (client certificate missing or not verified, or the client refused "
        "ours), timeout, other";
    const std::string name = "cvdeploy_tls_handshake_failures_total";
    failures_protocol_ = &registry->GetCounter(name, help, {{"reason", "protocol"}});
    failures_certificate_ = &registry->GetCounter(name, help, {{"reason", "certificate"}});
    failures_timeout_ = &registry->GetCounter(name, help, {{"reason", "timeout"}});
    failures_other_ = &registry->GetCounter(name, help, {{"reason", "other"}});
    const std::string reload_help = "Certificate/key reloads by result (ok, failed)";
    reloads_ok_ =
        &registry->GetCounter("cvdeploy_tls_reloads_total", reload_help, {{"result", "ok"}});
    reloads_failed_ =
        &registry->GetCounter("cvdeploy_tls_reloads_total", reload_help, {{"result", "failed"}});
    expiry_ = &registry->GetGauge("cvdeploy_tls_certificate_expiry_timestamp_seconds",
                                  "Expiry (notAfter, Unix time) of the served certificate");
  }
  signature_ = FilesSignature();
  CertificateSummary summary;
  auto context = MakeServerContext(options_, &summary);
  Install(std::move(context), summary);
}

std::shared_ptr<ssl::context> TlsManager::Context() const {
  std::lock_guard<std::mutex> lock(mu_);
  return context_;
}

CertificateSummary TlsManager::Certificate() const {
  std::lock_guard<std::mutex> lock(mu_);
  return summary_;
}

void TlsManager::SetReloadHook(ReloadHook hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hook_ = std::move(hook);
}

void TlsManager::Install(std::shared_ptr<ssl::context> context, const CertificateSummary& summary) {
  std::lock_guard<std::mutex> lock(mu_);
  context_ = std::move(context);
  summary_ = summary;
  if (expiry_ != nullptr) expiry_->Set(static_cast<double>(summary.not_after));
}

std::string TlsManager::FilesSignature() const {
  std::string signature;
  for (const std::string* path :
       {&options_.cert_file, &options_.key_file, &options_.client_ca_file}) {
    if (path->empty()) continue;
    struct stat st {};
    if (::stat(path->c_str(), &st) != 0) {
      signature += "missing;";
      continue;
    }
    signature += std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
                 std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
                 ":" + std::to_string(st.st_mode) + ";";
  }
  return signature;
}

bool TlsManager::Reload() {
  std::lock_guard<std::mutex> reload_lock(reload_mu_);
  const std::string signature = FilesSignature();
  {
    std::lock_guard<std::mutex> lock(mu_);
    signature_ = signature;
  }
  std::string detail;
  bool ok = false;
  try {
    CertificateSummary summary;
    auto context = MakeServerContext(options_, &summary);
    Install(std::move(context), summary);
    ok = true;
    detail = "TLS certificate reloaded: subject " + summary.subject + ", serial " +
             summary.serial_hex + ", expires " + FormatUtc(summary.not_after);
  } catch (const std::exception& e) {
    detail =
        std::string("TLS certificate reload failed, keeping the previous certificate: ") + e.what();
  }
  if (Counter* c = ok ? reloads_ok_ : reloads_failed_) c->Inc();
  if (log_) log_(ok ? "info" : "error", detail);
  ReloadHook hook;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hook = hook_;
  }
  if (hook) {
    try {
      hook(ok, detail);
    } catch (...) {
      // An observer must not break reloading.
    }
  }
  return ok;
}

bool TlsManager::ReloadIfChanged() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (FilesSignature() == signature_) return false;
  }
  return Reload();
}

void TlsManager::CountHandshakeFailure(const boost::system::error_code& ec) {
  const std::string reason = HandshakeFailureReason(ec);
  Counter* c = reason == "protocol"      ? failures_protocol_
               : reason == "certificate" ? failures_certificate_
               : reason == "timeout"     ? failures_timeout_
                                         : failures_other_;
  if (c != nullptr) c->Inc();
}

}  // namespace cvdeploy::server
