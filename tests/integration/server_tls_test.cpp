// SPDX-License-Identifier: Apache-2.0
// HTTPS and mTLS of `cvdeploy serve` end to end, with certificates from `cvdeploy tls
// selfsigned`: the protocol matrix with `openssl s_client` (TLS 1.0/1.1 refused by the server,
// 1.2/1.3 accepted, ALPN http/1.1, no compression, no weak TLS 1.2 suite), curl with and
// without the CA, the metrics listener (HTTPS, or plain with --metrics-tls off), mTLS required
// (no certificate, another CA's, the right one), certificate reload while a connection stays
// open (SIGHUP and polling; a broken certificate keeps the last good one), and refused
// startups (key mismatch, missing file, key file 0644).
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/assets.h"
#include "support/process.h"
#include "support/server_process.h"

namespace cvdeploy::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const char* kCurl = "/usr/bin/curl";
const char* kOpenSsl = "/usr/bin/openssl";

// ---------------------------------------------------------------------------------------
// Helpers.

// A certificate set made by `cvdeploy tls selfsigned` in a fresh directory.
std::string MakeCerts(const std::string& tag, const std::vector<std::string>& extra = {}) {
  const std::string dir = MakeTempDir("tls-" + tag) + "/certs";
  std::vector<std::string> args = {"tls", "selfsigned", "--out", dir};
  args.insert(args.end(), extra.begin(), extra.end());
  const ProcessResult run = RunCli(args);
  EXPECT_EQ(run.exit_code, 0) << DescribeRun(args, run);
  return dir;
}

// `cvdeploy serve` over TLS on 127.0.0.1: like ServerProcess, but it reads the https:// line.
class TlsServer {
 public:
  explicit TlsServer(const std::vector<std::string>& args) {
    dir_ = MakeTempDir("tls-server");
    std::vector<std::string> argv_s = {
        CliBinary(),    "serve", "--host",  "127.0.0.1",
        "--port",       "0",     "--model", Asset("models/yolov8n-dq.onnx"),
        "--access-log", ""};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    const std::string err = dir_ + "/stderr.log";
    pid_ = fork();
    if (pid_ == 0) {
      const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int devnull = open("/dev/null", O_RDWR);
      dup2(devnull, STDIN_FILENO);
      dup2(devnull, STDOUT_FILENO);
      dup2(e, STDERR_FILENO);
      std::vector<char*> argv;
      for (auto& a : argv_s) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    const std::regex listening(
        R"(listening on (https?)://127\.0\.0\.1:(\d+)( \(metrics on (https?) port (\d+)\))?)");
    std::smatch m;
    const bool up = WaitFor(
        [&] {
          const std::string text = Stderr();
          return std::regex_search(text, m, listening) || Exited();
        },
        60);
    if (!up || exit_code_ >= 0) {
      throw std::runtime_error("server did not start (exit " + std::to_string(exit_code_) +
                               "): " + Stderr());
    }
    scheme_ = m[1];
    port_ = std::stoi(m[2]);
    if (m[5].matched) {
      metrics_scheme_ = m[4];
      metrics_port_ = std::stoi(m[5]);
    }
  }
  ~TlsServer() {
    if (exit_code_ < 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  TlsServer(const TlsServer&) = delete;
  TlsServer& operator=(const TlsServer&) = delete;

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  const std::string& scheme() const { return scheme_; }
  const std::string& metrics_scheme() const { return metrics_scheme_; }
  std::string Stderr() const { return ReadFileText(dir_ + "/stderr.log"); }
  void Signal(int sig) const { kill(pid_, sig); }
  std::string Url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  bool Exited() {
    int status = 0;
    if (exit_code_ < 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return exit_code_ >= 0;
  }

  std::string dir_, scheme_, metrics_scheme_;
  pid_t pid_ = -1;
  int port_ = 0, metrics_port_ = 0, exit_code_ = -1;
};

std::vector<std::string> ServeTls(const std::string& certs) {
  return {"--tls-cert", certs + "/server.pem", "--tls-key", certs + "/server.key"};
}

// curl's exit code and the HTTP status it printed ("000" when there was no answer).
struct CurlResult {
  int exit_code = -1;
  std::string status, err;
};
CurlResult Curl(const std::vector<std::string>& extra, const std::string& url) {
  std::vector<std::string> args = {"-sS",          "-o",         "/dev/null", "-w",
                                   "%{http_code}", "--max-time", "20"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(url);
  const ProcessResult run = RunProcess(kCurl, args, "", 30);
  return {run.exit_code, run.out, run.err};
}

// `openssl s_client` against the server; stdout and stderr together.
std::string SClient(int port, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"s_client", "-connect", "127.0.0.1:" + std::to_string(port)};
  args.insert(args.end(), extra.begin(), extra.end());
  const ProcessResult run = RunProcess(kOpenSsl, args, "", 30);
  return run.out + run.err;
}

// The certificate's serial number in hex ("" for none).
std::string SerialHex(const X509* cert) {
  if (cert == nullptr) return "";
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string out = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

std::string SerialOfPem(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  std::string out = SerialHex(cert);
  X509_free(cert);
  return out;
}

// A keep-alive HTTPS connection that trusts `ca_file`.
class TlsClient {
 public:
  TlsClient(int port, const std::string& ca_file)
      : context_(ssl::context::tls_client), stream_(io_, context_) {
    context_.load_verify_file(ca_file);
    stream_.set_verify_mode(ssl::verify_peer);
    asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"),
                                     static_cast<unsigned short>(port));
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(20));
    beast::get_lowest_layer(stream_).connect(endpoint);
    stream_.handshake(ssl::stream_base::client);
  }
  // The status of GET `target` on this connection.
  int Get(const std::string& target) {
    http::request<http::empty_body> req(http::verb::get, target, 11);
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(true);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(20));
    http::write(stream_, req);
    http::response<http::string_body> res;
    http::read(stream_, buffer_, res);
    return static_cast<int>(res.result_int());
  }
  std::string PeerSerial() { return SerialHex(SSL_get0_peer_certificate(stream_.native_handle())); }

 private:
  asio::io_context io_;
  ssl::context context_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
};

// Copies a certificate set's server files over `dest`'s (the key kept 0600).
void InstallServerFiles(const std::string& from, const std::string& dest) {
  fs::copy_file(from + "/server.pem", dest + "/server.pem", fs::copy_options::overwrite_existing);
  fs::copy_file(from + "/server.key", dest + "/server.key", fs::copy_options::overwrite_existing);
  ASSERT_EQ(chmod((dest + "/server.key").c_str(), 0600), 0);
}

int CountOf(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// ---------------------------------------------------------------------------------------
// cvdeploy tls selfsigned.

TEST(TlsSelfSigned, WritesCaServerAndClientWithPrivateKeysAndRefusesToOverwrite) {
  const std::string dir = MakeCerts("files", {"--hosts", "example.test,10.1.2.3"});
  for (const char* name : {"ca.pem", "server.pem", "client.pem"}) {
    struct stat st {};
    ASSERT_EQ(stat((dir + "/" + name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 0777, 0644u) << name;
  }
  for (const char* name : {"ca.key", "server.key", "client.key"}) {
    struct stat st {};
    ASSERT_EQ(stat((dir + "/" + name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << name;
  }
  const ProcessResult verify = RunProcess(kOpenSsl, {"verify", "-CAfile", dir + "/ca.pem",
                                                     "-purpose", "sslserver", dir + "/server.pem"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  const ProcessResult client = RunProcess(kOpenSsl, {"verify", "-CAfile", dir + "/ca.pem",
                                                     "-purpose", "sslclient", dir + "/client.pem"});
  EXPECT_EQ(client.exit_code, 0) << client.out << client.err;
  // The server certificate is not a client certificate, and the other way round.
  const ProcessResult wrong = RunProcess(kOpenSsl, {"verify", "-CAfile", dir + "/ca.pem",
                                                    "-purpose", "sslclient", dir + "/server.pem"});
  EXPECT_NE(wrong.exit_code, 0);
  const ProcessResult text =
      RunProcess(kOpenSsl, {"x509", "-in", dir + "/server.pem", "-noout", "-text"});
  EXPECT_NE(text.out.find("DNS:example.test, IP Address:10.1.2.3"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("ASN1 OID: prime256v1"), std::string::npos) << text.out;
  const ProcessResult ca =
      RunProcess(kOpenSsl, {"x509", "-in", dir + "/ca.pem", "-noout", "-text"});
  EXPECT_NE(ca.out.find("CA:TRUE"), std::string::npos) << ca.out;

  const std::string before = ReadFileText(dir + "/server.key");
  ExpectCliError({"tls", "selfsigned", "--out", dir}, 2, "already exists");
  EXPECT_EQ(ReadFileText(dir + "/server.key"), before);
  const ProcessResult forced = RunCli({"tls", "selfsigned", "--out", dir, "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(ReadFileText(dir + "/server.key"), before);
  EXPECT_NE(forced.out.find("--tls-cert " + dir + "/server.pem"), std::string::npos) << forced.out;
  EXPECT_NE(forced.out.find("curl --cacert " + dir + "/ca.pem"), std::string::npos) << forced.out;
  ExpectCliError({"tls", "selfsigned", "--out", dir + "2", "--hosts", "bad host"}, 2, "bad host");
}

// ---------------------------------------------------------------------------------------
// Protocol matrix, curl, metrics.

class TlsServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(MakeCerts("suite"));
    auto args = ServeTls(*certs_);
    args.insert(args.end(), {"--metrics-port", "0"});
    server_ = new TlsServer(args);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete certs_;
  }
  static std::string* certs_;
  static TlsServer* server_;
};
std::string* TlsServerTest::certs_ = nullptr;
TlsServer* TlsServerTest::server_ = nullptr;

TEST_F(TlsServerTest, ListensOnHttpsForBothListeners) {
  EXPECT_EQ(server_->scheme(), "https");
  EXPECT_EQ(server_->metrics_scheme(), "https");
  EXPECT_NE(server_->Stderr().find("TLS: certificate CN=localhost,O=cvdeploy"), std::string::npos)
      << server_->Stderr();
}

TEST_F(TlsServerTest, RefusesTls10And11ItselfAndAcceptsTls12And13) {
  for (const char* version : {"-tls1", "-tls1_1"}) {
    // SECLEVEL=0 lets the client offer the old protocol, so the refusal is the server's.
    const std::string out = SClient(server_->port(), {version, "-cipher", "DEFAULT@SECLEVEL=0"});
    EXPECT_NE(out.find("alert protocol version"), std::string::npos) << version << "\n" << out;
    EXPECT_NE(out.find("Cipher is (NONE)"), std::string::npos) << version << "\n" << out;
  }
  for (const auto& [flag, name] : std::vector<std::pair<std::string, std::string>>{
           {"-tls1_2", "TLSv1.2"}, {"-tls1_3", "TLSv1.3"}}) {
    const std::string out =
        SClient(server_->port(), {flag, "-alpn", "http/1.1", "-CAfile", *certs_ + "/ca.pem"});
    EXPECT_NE(out.find("New, " + name + ", Cipher is"), std::string::npos) << flag << "\n" << out;
    EXPECT_NE(out.find("ALPN protocol: http/1.1"), std::string::npos) << flag << "\n" << out;
    EXPECT_NE(out.find("Compression: NONE"), std::string::npos) << flag << "\n" << out;
    EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << flag << "\n" << out;
  }
  // No ALPN offered: served anyway.
  const std::string plain = SClient(server_->port(), {"-tls1_3"});
  EXPECT_NE(plain.find("No ALPN negotiated"), std::string::npos) << plain;
  EXPECT_NE(plain.find("New, TLSv1.3, Cipher is"), std::string::npos) << plain;
}

TEST_F(TlsServerTest, OffersOnlyForwardSecretAeadSuitesOnTls12) {
  for (const char* weak : {"AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA", "AES256-SHA256"}) {
    const std::string out = SClient(server_->port(), {"-tls1_2", "-cipher", weak});
    EXPECT_NE(out.find("Cipher is (NONE)"), std::string::npos) << weak << "\n" << out;
  }
  const std::string ok =
      SClient(server_->port(), {"-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"});
  EXPECT_NE(ok.find("Cipher is ECDHE-ECDSA-CHACHA20-POLY1305"), std::string::npos) << ok;
}

TEST_F(TlsServerTest, RefusesRenegotiation) {
  // "R" asks s_client to renegotiate; stdin stays open long enough for the answer.
  const std::string command = "(printf 'R\\n'; sleep 2) | " + std::string(kOpenSsl) +
                              " s_client -connect 127.0.0.1:" + std::to_string(server_->port()) +
                              " -tls1_2 -CAfile " + *certs_ + "/ca.pem 2>&1";
  const ProcessResult run = RunProcess("/bin/sh", {"-c", command}, "", 30);
  EXPECT_NE(run.out.find("RENEGOTIATING"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("no renegotiation"), std::string::npos) << run.out;
}

TEST_F(TlsServerTest, CurlWithTheCaGets200AndWithoutItFailsVerification) {
  const CurlResult ok = Curl({"--cacert", *certs_ + "/ca.pem"}, server_->Url("/v2/health/live"));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.status, "200");
  // By name too: the certificate's SAN has localhost.
  const CurlResult by_name =
      Curl({"--cacert", *certs_ + "/ca.pem", "--resolve",
            "localhost:" + std::to_string(server_->port()) + ":127.0.0.1"},
           "https://localhost:" + std::to_string(server_->port()) + "/v2/health/live");
  EXPECT_EQ(by_name.status, "200") << by_name.err;
  const CurlResult untrusted = Curl({}, server_->Url("/v2/health/live"));
  EXPECT_EQ(untrusted.exit_code, 60) << untrusted.err;  // peer certificate cannot be verified
  EXPECT_EQ(untrusted.status, "000");
  // Plain HTTP on the HTTPS port gets no HTTP answer.
  const CurlResult plain =
      Curl({}, "http://127.0.0.1:" + std::to_string(server_->port()) + "/v2/health/live");
  EXPECT_NE(plain.status, "200");
}

TEST_F(TlsServerTest, MetricsListenerIsHttpsAndCountsHandshakeFailures) {
  const std::string metrics_url = "https://127.0.0.1:" + std::to_string(server_->metrics_port());
  // A handshake the server refuses, counted under "protocol".
  SClient(server_->port(), {"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"});
  // The client may read the server's alert before the server has counted the failure.
  const std::regex protocol(R"(cvdeploy_tls_handshake_failures_total\{reason="protocol"\} (\d+))");
  ProcessResult run;
  EXPECT_TRUE(WaitFor(
      [&] {
        run = RunProcess(kCurl, {"-sS", "--cacert", *certs_ + "/ca.pem", metrics_url + "/metrics"});
        std::smatch m;
        return run.exit_code == 0 && std::regex_search(run.out, m, protocol) &&
               std::stoi(m[1]) >= 1;
      },
      10))
      << run.err << run.out;
  EXPECT_NE(run.out.find("cvdeploy_tls_certificate_expiry_timestamp_seconds 1"), std::string::npos)
      << run.out;
  const CurlResult plain =
      Curl({}, "http://127.0.0.1:" + std::to_string(server_->metrics_port()) + "/metrics");
  EXPECT_NE(plain.status, "200");
}

TEST(TlsServer, MetricsTlsOffLeavesTheMetricsListenerPlainAndAStalledHandshakeTimesOut) {
  const std::string certs = MakeCerts("metrics-off");
  auto args = ServeTls(certs);
  args.insert(args.end(), {"--metrics-port", "0", "--metrics-tls", "off", "--read-timeout", "0.5"});
  TlsServer server(args);
  EXPECT_EQ(server.scheme(), "https");
  ASSERT_EQ(server.metrics_scheme(), "http");
  // A client that connects and never starts the handshake is dropped after --read-timeout.
  const int fd = ConnectRaw(server.port());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(WaitClosed(fd, 10));
  close(fd);
  // The timer closes the socket first and the handshake's completion handler counts the
  // failure after it, so the client may see the close before the counter moves.
  HttpReply metrics;
  EXPECT_TRUE(WaitFor(
      [&] {
        metrics = Http(server.metrics_port(), "GET", "/metrics");
        return metrics.status == 200 &&
               metrics.body.find("cvdeploy_tls_handshake_failures_total{reason=\"timeout\"} 1") !=
                   std::string::npos;
      },
      10))
      << metrics.status << " " << metrics.body;
  EXPECT_EQ(Curl({"--cacert", certs + "/ca.pem"}, server.Url("/v2/health/live")).status, "200");
}

// ---------------------------------------------------------------------------------------
// mTLS.

TEST(TlsServer, RequiredClientCertificateRefusesNoneAndAnotherCasAndAcceptsTheRightOne) {
  const std::string certs = MakeCerts("mtls"), other = MakeCerts("mtls-other");
  auto args = ServeTls(certs);
  args.insert(args.end(), {"--tls-client-ca", certs + "/ca.pem", "--tls-client-auth", "required"});
  TlsServer server(args);
  const std::string url = server.Url("/v2/health/live");
  const CurlResult none = Curl({"--cacert", certs + "/ca.pem"}, url);
  EXPECT_NE(none.exit_code, 0);
  EXPECT_EQ(none.status, "000") << none.err;
  const CurlResult foreign = Curl({"--cacert", certs + "/ca.pem", "--cert", other + "/client.pem",
                                   "--key", other + "/client.key"},
                                  url);
  EXPECT_NE(foreign.exit_code, 0);
  EXPECT_EQ(foreign.status, "000") << foreign.err;
  const CurlResult right = Curl({"--cacert", certs + "/ca.pem", "--cert", certs + "/client.pem",
                                 "--key", certs + "/client.key"},
                                url);
  EXPECT_EQ(right.exit_code, 0) << right.err;
  EXPECT_EQ(right.status, "200");
  // s_client sees the refusal as the server's alert (TLS 1.3: certificate required).
  const std::string out =
      SClient(server.port(), {"-tls1_3", "-CAfile", certs + "/ca.pem", "-ign_eof"});
  EXPECT_NE(out.find("alert certificate required"), std::string::npos) << out;
}

TEST(TlsServer, OptionalClientCertificateAcceptsClientsWithoutOne) {
  const std::string certs = MakeCerts("optional"), other = MakeCerts("optional-other");
  auto args = ServeTls(certs);
  args.insert(args.end(), {"--tls-client-ca", certs + "/ca.pem", "--tls-client-auth", "optional"});
  TlsServer server(args);
  const std::string url = server.Url("/v2/health/live");
  EXPECT_EQ(Curl({"--cacert", certs + "/ca.pem"}, url).status, "200");
  EXPECT_EQ(Curl({"--cacert", certs + "/ca.pem", "--cert", certs + "/client.pem", "--key",
                  certs + "/client.key"},
                 url)
                .status,
            "200");
  // A certificate the CA did not sign is still refused.
  EXPECT_EQ(Curl({"--cacert", certs + "/ca.pem", "--cert", other + "/client.pem", "--key",
                  other + "/client.key"},
                 url)
                .status,
            "000");
}

// ---------------------------------------------------------------------------------------
// Reload.

TEST(TlsServer, SighupReloadsForNewConnectionsWhileOpenOnesContinue) {
  const std::string certs = MakeCerts("reload"), next = MakeCerts("reload-next");
  auto args = ServeTls(certs);
  args.insert(args.end(), {"--tls-reload-interval", "0"});
  TlsServer server(args);
  const std::string first_serial = SerialOfPem(ReadFileText(certs + "/server.pem"));
  const std::string next_serial = SerialOfPem(ReadFileText(next + "/server.pem"));
  ASSERT_FALSE(first_serial.empty());
  ASSERT_NE(first_serial, next_serial);

  TlsClient old_connection(server.port(), certs + "/ca.pem");
  EXPECT_EQ(old_connection.Get("/v2/health/live"), 200);
  EXPECT_EQ(old_connection.PeerSerial(), first_serial);

  InstallServerFiles(next, certs);
  server.Signal(SIGHUP);
  ASSERT_TRUE(WaitFor(
      [&] { return server.Stderr().find("TLS certificate reloaded") != std::string::npos; }, 20))
      << server.Stderr();
  EXPECT_NE(server.Stderr().find("serial " + next_serial), std::string::npos) << server.Stderr();
  TlsClient new_connection(server.port(), next + "/ca.pem");
  EXPECT_EQ(new_connection.Get("/v2/health/live"), 200);
  EXPECT_EQ(new_connection.PeerSerial(), next_serial);
  // The open connection still works, on the certificate it started with.
  EXPECT_EQ(old_connection.Get("/v2/health/live"), 200);
  EXPECT_EQ(old_connection.PeerSerial(), first_serial);
  // The old CA no longer verifies new connections.
  EXPECT_THROW(TlsClient(server.port(), certs + "/ca.pem"), boost::system::system_error);

  // A broken certificate: logged, and the last good one kept.
  {
    std::ofstream broken(certs + "/server.pem", std::ios::trunc);
    broken << "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  }
  server.Signal(SIGHUP);
  ASSERT_TRUE(WaitFor(
      [&] { return server.Stderr().find("TLS certificate reload failed") != std::string::npos; },
      20))
      << server.Stderr();
  EXPECT_NE(server.Stderr().find(certs + "/server.pem"), std::string::npos) << server.Stderr();
  TlsClient after_failure(server.port(), next + "/ca.pem");
  EXPECT_EQ(after_failure.Get("/v2/health/live"), 200);
  EXPECT_EQ(after_failure.PeerSerial(), next_serial);
  EXPECT_EQ(old_connection.Get("/v2/health/live"), 200);
  // Shutdown with an idle keep-alive TLS connection open drains and stops.
  server.Signal(SIGTERM);
  EXPECT_TRUE(
      WaitFor([&] { return server.Stderr().find("info: stopped") != std::string::npos; }, 30))
      << server.Stderr();
}

TEST(TlsServer, PollingReloadsChangedFilesAndRetriesOnlyAfterTheNextChange) {
  const std::string certs = MakeCerts("poll"), next = MakeCerts("poll-next");
  auto args = ServeTls(certs);
  args.insert(args.end(), {"--tls-reload-interval", "0.2"});
  TlsServer server(args);
  // Only the certificate: the key no longer matches, the reload fails once (not every poll).
  fs::copy_file(next + "/server.pem", certs + "/server.pem", fs::copy_options::overwrite_existing);
  ASSERT_TRUE(
      WaitFor([&] { return server.Stderr().find("does not match") != std::string::npos; }, 20))
      << server.Stderr();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(CountOf(server.Stderr(), "TLS certificate reload failed"), 1) << server.Stderr();
  EXPECT_EQ(Curl({"--cacert", certs + "/ca.pem"}, server.Url("/v2/health/live")).status, "200");
  // Then the key: the pair matches and the new certificate is served.
  fs::copy_file(next + "/server.key", certs + "/server.key", fs::copy_options::overwrite_existing);
  ASSERT_TRUE(WaitFor(
      [&] { return server.Stderr().find("TLS certificate reloaded") != std::string::npos; }, 20))
      << server.Stderr();
  TlsClient client(server.port(), next + "/ca.pem");
  EXPECT_EQ(client.PeerSerial(), SerialOfPem(ReadFileText(next + "/server.pem")));
}

// ---------------------------------------------------------------------------------------
// Refused startups: one line naming the file and the reason, a non-zero exit.

std::vector<std::string> Serve(const std::vector<std::string>& tls) {
  std::vector<std::string> args = {
      "serve", "--host", "127.0.0.1", "--port", "0", "--model", Asset("models/yolov8n-dq.onnx")};
  args.insert(args.end(), tls.begin(), tls.end());
  return args;
}

TEST(TlsServerStartup, RefusesAKeyThatDoesNotMatchTheCertificate) {
  const std::string certs = MakeCerts("mismatch"), other = MakeCerts("mismatch-other");
  ExpectCliError(Serve({"--tls-cert", certs + "/server.pem", "--tls-key", other + "/server.key"}),
                 3, "does not match the certificate");
}

TEST(TlsServerStartup, RefusesMissingFiles) {
  const std::string certs = MakeCerts("missing");
  ExpectCliError(Serve({"--tls-cert", certs + "/nope.pem", "--tls-key", certs + "/server.key"}), 3,
                 certs + "/nope.pem: no such file");
  ExpectCliError(Serve({"--tls-cert", certs + "/server.pem", "--tls-key", certs + "/nope.key"}), 3,
                 certs + "/nope.key: no such file");
  ExpectCliError(Serve({"--tls-cert", certs + "/server.pem", "--tls-key", certs + "/server.key",
                        "--tls-client-ca", certs + "/nope-ca.pem"}),
                 3, certs + "/nope-ca.pem: no such file");
}

TEST(TlsServerStartup, RefusesAKeyFileOthersCanRead) {
  const std::string certs = MakeCerts("mode");
  ASSERT_EQ(chmod((certs + "/server.key").c_str(), 0644), 0);
  ExpectCliError(Serve(ServeTls(certs)), 2, "permissions 0644 are too open");
}

TEST(TlsServerStartup, RefusesAGarbageCertificateAndInconsistentFlags) {
  const std::string certs = MakeCerts("garbage");
  {
    std::ofstream out(certs + "/server.pem", std::ios::trunc);
    out << "not a certificate\n";
  }
  ExpectCliError(Serve(ServeTls(certs)), 3, "not a readable PEM certificate");
  ExpectCliError(Serve({"--tls-cert", certs + "/server.pem"}), 2, "--tls-key");
  ExpectCliError(Serve({"--tls-client-ca", certs + "/ca.pem"}), 2, "need --tls-cert");
  const std::string good = MakeCerts("flags");
  auto args = ServeTls(good);
  args.insert(args.end(), {"--tls-client-auth", "required"});
  ExpectCliError(Serve(args), 2, "needs --tls-client-ca");
}

}  // namespace
}  // namespace cvdeploy::testing
