// SPDX-License-Identifier: Apache-2.0
// The server's TLS context and TlsManager in process, with certificates from
// security::MakeSelfSignedSet: a handshake over an in-memory BIO pair checks the protocol
// floor, ALPN, compression and the verified peer certificate (subject, issuer, SANs,
// fingerprint) that handlers see; TlsManager keeps its context on a failed reload, tells the
// hook, and reloads only changed files.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <boost/beast/core/error.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cvdeploy/error.h"
#include "cvdeploy/security/x509_selfsigned.h"
#include "server/metrics.h"
#include "server/tls.h"
#include "support/assets.h"

namespace cvdeploy::server {
namespace {

using testing::MakeTempDir;

std::string WriteSet(const std::string& tag) {
  const std::string dir = MakeTempDir("tls-unit-" + tag);
  security::WriteSelfSignedSet(dir, security::MakeSelfSignedSet({}), /*force=*/true);
  return dir;
}

TlsOptions Options(const std::string& dir, ClientAuth auth = ClientAuth::kRequired) {
  TlsOptions o;
  o.cert_file = dir + "/server.pem";
  o.key_file = dir + "/server.key";
  o.client_ca_file = dir + "/ca.pem";
  o.client_auth = auth;
  return o;
}

// A client and a server SSL joined by an in-memory BIO pair.
struct Handshake {
  SSL* server = nullptr;
  SSL* client = nullptr;
  SSL_CTX* client_ctx = nullptr;
  bool ok = false;
  ~Handshake() {
    SSL_free(server);
    SSL_free(client);
    SSL_CTX_free(client_ctx);
  }
};

// `client_dir`: whose client certificate to present ("" for none); the client trusts
// `ca_dir`'s CA.
void Connect(Handshake& h, boost::asio::ssl::context& server_ctx, const std::string& ca_dir,
             const std::string& client_dir, int max_version = TLS1_3_VERSION) {
  h.client_ctx = SSL_CTX_new(TLS_client_method());
  ASSERT_EQ(SSL_CTX_load_verify_locations(h.client_ctx, (ca_dir + "/ca.pem").c_str(), nullptr), 1);
  SSL_CTX_set_verify(h.client_ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_max_proto_version(h.client_ctx, max_version);
  if (!client_dir.empty()) {
    ASSERT_EQ(SSL_CTX_use_certificate_file(h.client_ctx, (client_dir + "/client.pem").c_str(),
                                           SSL_FILETYPE_PEM),
              1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey_file(h.client_ctx, (client_dir + "/client.key").c_str(),
                                          SSL_FILETYPE_PEM),
              1);
  }
  h.server = SSL_new(server_ctx.native_handle());
  h.client = SSL_new(h.client_ctx);
  static const unsigned char kAlpn[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_set_alpn_protos(h.client, kAlpn, sizeof kAlpn);
  BIO *server_bio = nullptr, *client_bio = nullptr;
  ASSERT_EQ(BIO_new_bio_pair(&server_bio, 0, &client_bio, 0), 1);
  SSL_set_bio(h.server, server_bio, server_bio);
  SSL_set_bio(h.client, client_bio, client_bio);
  SSL_set_accept_state(h.server);
  SSL_set_connect_state(h.client);
  bool client_done = false, server_done = false;
  for (int round = 0; round < 50 && !(client_done && server_done); ++round) {
    for (auto [ssl, done] :
         {std::pair{h.client, &client_done}, std::pair{h.server, &server_done}}) {
      if (*done) continue;
      const int rc = SSL_do_handshake(ssl);
      if (rc == 1) {
        *done = true;
        continue;
      }
      const int err = SSL_get_error(ssl, rc);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return;
      }
    }
  }
  // TLS 1.3: the client is done first; the server verifies the client's certificate in its
  // last step, so a refused certificate leaves only the server unfinished.
  h.ok = client_done && server_done;
}

TEST(TlsContext, HandshakeExposesTheVerifiedClientCertificateAndSelectsHttp11) {
  const std::string dir = WriteSet("peer");
  CertificateSummary summary;
  auto ctx = MakeServerContext(Options(dir), &summary);
  EXPECT_EQ(summary.subject, "CN=localhost,O=cvdeploy");
  EXPECT_FALSE(summary.serial_hex.empty());
  EXPECT_GT(summary.not_after, std::time(nullptr) + 300 * 86400);
  SSL_CTX* c = ctx->native_handle();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(c), TLS1_2_VERSION);
  EXPECT_NE(SSL_CTX_get_options(c) & SSL_OP_NO_COMPRESSION, 0u);
  EXPECT_NE(SSL_CTX_get_options(c) & SSL_OP_NO_RENEGOTIATION, 0u);
  EXPECT_EQ(SSL_CTX_get_options(c) & SSL_OP_CIPHER_SERVER_PREFERENCE, 0u);
  Handshake h;
  Connect(h, *ctx, dir, dir);
  ASSERT_TRUE(h.ok);
  EXPECT_GE(SSL_version(h.server), TLS1_2_VERSION);
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(h.server, &alpn, &alpn_len);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(alpn), alpn_len), "http/1.1");
  EXPECT_EQ(SSL_get_current_compression(h.server), nullptr);

  const auto peer = VerifiedPeerCertificate(h.server);
  ASSERT_TRUE(peer.has_value());
  EXPECT_EQ(peer->subject, "CN=cvdeploy-client,O=cvdeploy");
  EXPECT_EQ(peer->issuer, "CN=cvdeploy self-signed CA,O=cvdeploy");
  EXPECT_TRUE(peer->sans.empty());
  EXPECT_EQ(peer->sha256_fingerprint.size(), 64u);
  EXPECT_FALSE(peer->serial_hex.empty());
  // The client's view of the server certificate: its SANs in the documented form.
  const auto server_cert = VerifiedPeerCertificate(h.client);
  ASSERT_TRUE(server_cert.has_value());
  EXPECT_EQ(server_cert->sans,
            (std::vector<std::string>{"DNS:localhost", "IP:127.0.0.1", "IP:::1"}));
  EXPECT_EQ(server_cert->serial_hex, summary.serial_hex);
}

TEST(TlsContext, ClientAuthModes) {
  const std::string dir = WriteSet("modes"), other = WriteSet("modes-other");
  auto required = MakeServerContext(Options(dir, ClientAuth::kRequired));
  {
    Handshake h;
    Connect(h, *required, dir, "");
    EXPECT_FALSE(h.ok) << "required: no certificate";
  }
  {
    Handshake h;
    Connect(h, *required, dir, other);
    EXPECT_FALSE(h.ok) << "required: another CA's certificate";
  }
  auto optional = MakeServerContext(Options(dir, ClientAuth::kOptional));
  {
    Handshake h;
    Connect(h, *optional, dir, "");
    ASSERT_TRUE(h.ok);
    EXPECT_FALSE(VerifiedPeerCertificate(h.server).has_value());
  }
  auto none = MakeServerContext(Options(dir, ClientAuth::kNone));
  {
    Handshake h;
    Connect(h, *none, dir, dir);
    ASSERT_TRUE(h.ok);
    EXPECT_FALSE(VerifiedPeerCertificate(h.server).has_value()) << "not requested, not exposed";
  }
  // TLS 1.1 and below are refused by the server.
  {
    Handshake h;
    Connect(h, *none, dir, "", TLS1_1_VERSION);
    EXPECT_FALSE(h.ok);
  }
}

TEST(TlsContext, StartupErrorsNameTheFileAndTheReason) {
  const std::string dir = WriteSet("errors"), other = WriteSet("errors-other");
  TlsOptions mismatch = Options(dir, ClientAuth::kNone);
  mismatch.key_file = other + "/server.key";
  try {
    MakeServerContext(mismatch);
    FAIL() << "a mismatched key was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("does not match"), std::string::npos) << e.what();
  }
  TlsOptions missing = Options(dir, ClientAuth::kNone);
  missing.cert_file = dir + "/absent.pem";
  try {
    MakeServerContext(missing);
    FAIL() << "a missing certificate was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  ASSERT_EQ(chmod((dir + "/server.key").c_str(), 0640), 0);
  try {
    MakeServerContext(Options(dir, ClientAuth::kNone));
    FAIL() << "a group-readable key was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
  }
  TlsOptions no_ca = Options(other, ClientAuth::kRequired);
  no_ca.client_ca_file.clear();
  EXPECT_THROW(MakeServerContext(no_ca), Error);
}

TEST(TlsManager, KeepsTheContextOnAFailedReloadAndTellsTheHook) {
  const std::string dir = WriteSet("manager"), next = WriteSet("manager-next");
  Registry registry;
  std::vector<std::string> logged;
  TlsManager manager(Options(dir), &registry,
                     [&](const std::string& level, const std::string& message) {
                       logged.push_back(level + ": " + message);
                     });
  std::vector<std::pair<bool, std::string>> hooked;
  manager.SetReloadHook(
      [&](bool ok, const std::string& detail) { hooked.emplace_back(ok, detail); });
  const auto first = manager.Context();
  const std::string first_serial = manager.Certificate().serial_hex;
  EXPECT_FALSE(manager.ReloadIfChanged()) << "nothing changed";
  EXPECT_TRUE(hooked.empty());

  {
    std::ofstream broken(dir + "/server.pem", std::ios::trunc);
    broken << "garbage\n";
  }
  EXPECT_FALSE(manager.ReloadIfChanged());
  EXPECT_EQ(manager.Context(), first);
  ASSERT_EQ(hooked.size(), 1u);
  EXPECT_FALSE(hooked[0].first);
  EXPECT_NE(hooked[0].second.find("server.pem"), std::string::npos) << hooked[0].second;
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_EQ(logged[0].rfind("error: TLS certificate reload failed", 0), 0u) << logged[0];
  EXPECT_FALSE(manager.ReloadIfChanged()) << "a failed set is retried only after a change";
  EXPECT_EQ(hooked.size(), 1u);

  std::filesystem::copy_file(next + "/server.pem", dir + "/server.pem",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(next + "/server.key", dir + "/server.key",
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_TRUE(manager.Reload());
  EXPECT_NE(manager.Context(), first);
  EXPECT_NE(manager.Certificate().serial_hex, first_serial);
  ASSERT_EQ(hooked.size(), 2u);
  EXPECT_TRUE(hooked[1].first);
  EXPECT_NE(hooked[1].second.find("serial " + manager.Certificate().serial_hex), std::string::npos);
  const std::string metrics = registry.Render();
  EXPECT_NE(metrics.find("cvdeploy_tls_reloads_total{result=\"ok\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("cvdeploy_tls_reloads_total{result=\"failed\"} 1"), std::string::npos);
  for (const std::string& line : logged) {
    EXPECT_EQ(line.find("PRIVATE KEY"), std::string::npos) << "a key in the log: " << line;
  }
}

TEST(TlsManager, CountsHandshakeFailuresByReason) {
  const std::string dir = WriteSet("count");
  Registry registry;
  TlsManager manager(Options(dir, ClientAuth::kNone), &registry, nullptr);
  manager.CountHandshakeFailure(boost::beast::error::timeout);
  manager.CountHandshakeFailure(boost::asio::error::connection_reset);
  EXPECT_EQ(HandshakeFailureReason(boost::beast::error::timeout), "timeout");
  EXPECT_EQ(HandshakeFailureReason(boost::asio::error::connection_reset), "other");
  const std::string metrics = registry.Render();
  EXPECT_NE(metrics.find("cvdeploy_tls_handshake_failures_total{reason=\"timeout\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("cvdeploy_tls_handshake_failures_total{reason=\"other\"} 1"),
            std::string::npos);
  EXPECT_EQ(FormatUtc(0), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace cvdeploy::server
