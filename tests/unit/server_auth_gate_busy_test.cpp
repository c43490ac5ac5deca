// SPDX-License-Identifier: Apache-2.0
// The auth gate when its authentication queue is full: the 503 (Retry-After: 1) for a login or
// an API key that needs a worker is audited like any other refusal, with reason "busy", so a
// flood of logins or first key uses cannot pass without a trace.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "server/auth_gate.h"

namespace cvdeploy::server {
namespace {

using security::AuthResult;

class AuthGateBusyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    audit_ = std::make_unique<AuditSink>(
        [this](nlohmann::json event, std::function<void(const Status&)> done) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            events_.push_back(event);
          }
          done(Status());
        },
        registry_, false);
    Authenticators a;
    // Every check and login waits until the test opens the gate: the one worker stays busy
    // and the queue fills.
    auto wait = [this] {
      ++started_;
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return open_; });
    };
    a.api_key = [wait](std::string_view, auto) {
      wait();
      return AuthResult::Failure("unknown_key", "the API key is not known");
    };
    a.login = [wait](const std::string&, const std::string&, const std::string&, const std::string&,
                     auto) {
      wait();
      return AuthResult::Failure("bad_password", "invalid user name, password or one-time code");
    };
    a.issue = [](const security::Identity&, auto) { return Authenticators::Issued{"t", 1}; };
    gate_ = std::make_unique<AuthGate>(
        std::make_shared<security::PolicyStore>(security::Policy::Default()), a, *audit_, registry_,
        1);
  }
  void TearDown() override {
    Open();
    gate_->Stop();
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

  // Sends a request; the answer, when it comes, is stored in `answers_[index]`.
  void Send(size_t index, const std::string& path, const std::string& bearer,
            const std::string& id) {
    auto request = std::make_shared<HttpRequest>();
    request->method = "POST";
    request->path = path;
    request->body = R"({"username":"alice","password":"pw","totp":"123456"})";
    request->client = "127.0.0.1:5000";
    request->request_id = id;
    if (!bearer.empty()) request->headers["authorization"] = std::string("Bearer ").append(bearer);
    requests_.push_back(request);
    Respond respond([this, index](HttpResponse r) {
      std::lock_guard<std::mutex> lock(mu_);
      answers_[index] = r.status;
    });
    gate_->Handle(*request, respond, [](HttpRequest&, Respond next) { next(HttpResponse{}); });
  }

  int Answer(size_t index) {
    std::lock_guard<std::mutex> lock(mu_);
    return answers_[index];
  }

  std::vector<nlohmann::json> EventsFor(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<nlohmann::json> out;
    for (const auto& e : events_) {
      if (e.value("request_id", "") == id) out.push_back(e);
    }
    return out;
  }

  Registry registry_;
  std::unique_ptr<AuditSink> audit_;
  std::unique_ptr<AuthGate> gate_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  std::atomic<int> started_{0};
  std::vector<nlohmann::json> events_;
  std::vector<std::shared_ptr<HttpRequest>> requests_;
  std::vector<int> answers_ = std::vector<int>(kMaxQueuedAuthentications + 8, 0);
};

TEST_F(AuthGateBusyTest, FullQueueAnswers503AndAuditsIt) {
  // One running on the worker plus a full queue; a key and a login beyond that are refused.
  const size_t fill = kMaxQueuedAuthentications + 1;
  Send(0, "/v1/auth/login", "", "fill");
  for (int i = 0; i < 3000 && started_ == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(started_, 1);  // the worker is busy with the first
  for (size_t i = 1; i < fill; ++i) Send(i, "/v1/auth/login", "", "fill");
  EXPECT_EQ(Answer(fill - 1), 0);  // queued, not refused
  Send(fill, "/v1/auth/login", "", "login-busy");
  Send(fill + 1, "/v2/models/m/infer", "cvd_0123456789abcdef_key", "key-busy");
  EXPECT_EQ(Answer(fill), 503);
  EXPECT_EQ(Answer(fill + 1), 503);

  const auto login = EventsFor("login-busy");
  ASSERT_EQ(login.size(), 1u);
  EXPECT_EQ(login[0]["action"], "login.failure");
  EXPECT_EQ(login[0]["reason"], "busy");
  EXPECT_EQ(login[0]["status"], 503);
  EXPECT_EQ(login[0].dump().find("123456"), std::string::npos);

  const auto key = EventsFor("key-busy");
  ASSERT_EQ(key.size(), 1u);
  EXPECT_EQ(key[0]["action"], "auth.failure");
  EXPECT_EQ(key[0]["reason"], "busy");
  EXPECT_EQ(key[0]["status"], 503);
  EXPECT_EQ(key[0]["group"], "infer");
  EXPECT_EQ(key[0]["model"], "m");
  EXPECT_EQ(key[0].dump().find("cvd_0123456789abcdef_key"), std::string::npos);

  // Once the worker is free the queued ones are answered (and audited) normally.
  Open();
  for (int i = 0; i < 3000 && Answer(fill - 1) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(Answer(0), 401);
  EXPECT_EQ(Answer(fill - 1), 401);
  EXPECT_EQ(EventsFor("fill").size(), fill);
}

}  // namespace
}  // namespace cvdeploy::server
