// SPDX-License-Identifier: Apache-2.0
#include "cvdeploy/security/x509_selfsigned.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <utility>

#include "cvdeploy/error.h"
#include "cvdeploy/security/crypto.h"
#include "cvdeploy/security/secret_file.h"

namespace cvdeploy::security {
namespace {

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;
using Extensions = std::vector<std::pair<int, std::string>>;

[[noreturn]] void Fail(const std::string& what) {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  char buf[256] = "unknown OpenSSL error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  throw RuntimeError("tls selfsigned: " + what + ": " + buf);
}

KeyPtr NewP256Key() {
  KeyPtr key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!key) Fail("cannot generate a P-256 key");
  return key;
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

void CheckHost(const std::string& host) {
  if (host.empty() || host.size() > 253) {
    throw InvalidArgument("tls selfsigned: host '" + host + "' is empty or too long", "hosts");
  }
  if (IsIpLiteral(host)) return;
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '*';
    if (!ok) {
      throw InvalidArgument(
          "tls selfsigned: host '" + host + "' is neither a DNS name nor an IP address", "hosts");
    }
  }
}

void SetRandomSerial(X509* x) {
  std::string bytes = RandomBytes(16);
  bytes[0] = static_cast<char>(bytes[0] & 0x7f);  // positive, as RFC 5280 requires
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                         static_cast<int>(bytes.size()), nullptr);
  const bool ok = bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != nullptr;
  BN_free(bn);
  if (!ok) Fail("cannot set a serial number");
}

// A certificate for `key` named CN=`cn`,O=`org`, signed by `issuer_key` (`issuer` null:
// self-signed).
CertPtr MakeCertificate(EVP_PKEY* key, const std::string& cn, const std::string& org, X509* issuer,
                        EVP_PKEY* issuer_key, int days, const Extensions& exts) {
  CertPtr cert(X509_new(), X509_free);
  X509* x = cert.get();
  if (x == nullptr || X509_set_version(x, 2) != 1) Fail("cannot create a certificate");
  SetRandomSerial(x);
  // From an hour ago, so that a client whose clock is a little behind accepts it.
  if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(x), static_cast<long>(days) * 86400) == nullptr ||
      X509_set_pubkey(x, key) != 1) {
    Fail("cannot set validity or key");
  }
  X509_NAME* name = X509_get_subject_name(x);
  auto add = [&](const char* field, const std::string& value) {
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                   0) != 1) {
      Fail(std::string("cannot set ") + field);
    }
  };
  add("O", org);
  add("CN", cn);
  if (X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1) {
    Fail("cannot set the issuer");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : x, x, nullptr, nullptr, 0);
  for (const auto& [nid, value] : exts) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (ext == nullptr) Fail("cannot make extension " + value);
    const int added = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (added != 1) Fail("cannot add extension " + value);
  }
  if (X509_sign(x, issuer_key, EVP_sha256()) == 0) Fail("cannot sign the certificate");
  return cert;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, n > 0 ? static_cast<size_t>(n) : 0);
  BIO_free(bio);
  return out;
}

PemCertificate ToPem(X509* cert, EVP_PKEY* key) {
  BIO* c = BIO_new(BIO_s_mem());
  BIO* k = BIO_new(BIO_s_mem());
  if (c == nullptr || k == nullptr || PEM_write_bio_X509(c, cert) != 1 ||
      PEM_write_bio_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    BIO_free(c);
    BIO_free(k);
    Fail("cannot write PEM");
  }
  return PemCertificate{BioText(c), BioText(k)};
}

}  // namespace

SelfSignedSet MakeSelfSignedSet(const SelfSignedOptions& o) {
  if (o.hosts.empty()) throw InvalidArgument("tls selfsigned: no hosts given", "hosts");
  if (o.days < 1 || o.days > 3650) {
    throw InvalidArgument("tls selfsigned: days must be 1..3650, not " + std::to_string(o.days),
                          "days");
  }
  std::string san;
  for (const std::string& host : o.hosts) {
    CheckHost(host);
    if (!san.empty()) san += ',';
    san += IsIpLiteral(host) ? "IP:" : "DNS:";
    san += host;
  }
  KeyPtr ca_key = NewP256Key(), server_key = NewP256Key(), client_key = NewP256Key();
  CertPtr ca =
      MakeCertificate(ca_key.get(), o.ca_name, o.organization, nullptr, ca_key.get(), o.days,
                      {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                       {NID_key_usage, "critical,keyCertSign,cRLSign"},
                       {NID_subject_key_identifier, "hash"}});
  const Extensions leaf = {{NID_basic_constraints, "critical,CA:FALSE"},
                           {NID_key_usage, "critical,digitalSignature"},
                           {NID_subject_key_identifier, "hash"},
                           {NID_authority_key_identifier, "keyid:always"}};
  Extensions server_exts = leaf, client_exts = leaf;
  server_exts.emplace_back(NID_ext_key_usage, "serverAuth");
  server_exts.emplace_back(NID_subject_alt_name, san);
  client_exts.emplace_back(NID_ext_key_usage, "clientAuth");
  CertPtr server = MakeCertificate(server_key.get(), o.hosts.front(), o.organization, ca.get(),
                                   ca_key.get(), o.days, server_exts);
  CertPtr client = MakeCertificate(client_key.get(), o.client_name, o.organization, ca.get(),
                                   ca_key.get(), o.days, client_exts);
  return SelfSignedSet{ToPem(ca.get(), ca_key.get()), ToPem(server.get(), server_key.get()),
                       ToPem(client.get(), client_key.get())};
}

std::vector<std::string> SelfSignedFileNames() {
  return {"ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key"};
}

std::vector<std::string> WriteSelfSignedSet(const std::string& dir, const SelfSignedSet& set,
                                            bool force) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw BadInput(dir + ": cannot create the directory: " + ec.message());
  const std::vector<std::string> names = SelfSignedFileNames();
  std::vector<std::string> paths;
  for (const std::string& name : names) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    if (!force && std::filesystem::exists(std::filesystem::symlink_status(path))) {
      throw InvalidArgument(path + ": already exists; use --force to overwrite");
    }
    paths.push_back(path);
  }
  const std::string* contents[] = {&set.ca.cert_pem,    &set.ca.key_pem,      &set.server.cert_pem,
                                   &set.server.key_pem, &set.client.cert_pem, &set.client.key_pem};
  for (size_t i = 0; i < paths.size(); ++i) {
    WriteSecretFile(paths[i], *contents[i]);  // 0600, atomic
    const bool is_key = names[i].size() > 4 && names[i].substr(names[i].size() - 4) == ".key";
    if (!is_key && ::chmod(paths[i].c_str(), 0644) != 0) {
      throw BadInput(paths[i] + ": cannot set mode 0644");
    }
  }
  return paths;
}

}  // namespace cvdeploy::security
