// SPDX-License-Identifier: Apache-2.0
// A throw-away PKI for trying TLS and mTLS (`cvdeploy tls selfsigned`) and for tests: a CA,
// a server certificate it signs (SAN = the hosts, serverAuth) and a client certificate
// (clientAuth), all ECDSA P-256 with SHA-256 signatures, made with OpenSSL 3's EVP/X509 APIs.
// Not for production PKI: no revocation, no key protection beyond file permissions.
// Thread-safe (no shared state); failures throw cvdeploy::Error.
#pragma once

#include <string>
#include <vector>

namespace cvdeploy::security {

struct SelfSignedOptions {
  // Server SAN entries: IPv4/IPv6 literals become IP entries, anything else DNS; the first is
  // also the server certificate's CN.
  std::vector<std::string> hosts = {"localhost", "127.0.0.1", "::1"};
  int days = 365;  // validity of every certificate, from one hour ago
  std::string ca_name = "cvdeploy self-signed CA";  // CN of the CA
  std::string client_name = "cvdeploy-client";      // CN of the client certificate
  std::string organization = "cvdeploy";            // O of every certificate
};

struct PemCertificate {
  std::string cert_pem;  // the certificate
  std::string key_pem;   // its unencrypted PKCS#8 private key: a secret
};

struct SelfSignedSet {
  PemCertificate ca, server, client;
};

// Throws kInvalidArgument for an empty host list, a host with characters outside a DNS name
// or IP literal, or days outside 1..3650.
SelfSignedSet MakeSelfSignedSet(const SelfSignedOptions& options);

// The file names WriteSelfSignedSet uses, in order: ca.pem ca.key server.pem server.key
// client.pem client.key.
std::vector<std::string> SelfSignedFileNames();

// Writes the set into `dir` (created if missing): certificates mode 0644, keys 0600 (written
// atomically). Refuses (kInvalidArgument naming the file) when any of the files exists and
// `force` is false; nothing is written then. Returns the paths written.
std::vector<std::string> WriteSelfSignedSet(const std::string& dir, const SelfSignedSet& set,
                                            bool force);

}  // namespace cvdeploy::security
