// SPDX-License-Identifier: Apache-2.0
// The router (Api::Handle) against failures inside a handler, in process, with a real model
// repository serving a small synthetic model: an out-of-memory while parsing the body (forced
// by this binary's operator new), JSON numbers out of range. Each request gets exactly one
// answer with a 4xx/503 status, Handle never throws, and the API serves normally afterwards.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/api.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/model_repository.h"
#include "support/assets.h"
#include "support/onnx_builder.h"

// ---------------------------------------------------------------------------------------
// Allocation fault injection: while g_fail_above is set on a thread (g_fail_above_anywhere:
// on any thread), an allocation of more than that many bytes throws std::bad_alloc, as a real
// out-of-memory would.

namespace {
thread_local size_t g_fail_above = 0;          // 0: never fail
std::atomic<size_t> g_fail_above_anywhere{0};  // 0: never fail
std::atomic<size_t> g_allocated_bytes{0};      // every operator new, all threads
}  // namespace

void* operator new(std::size_t size) {
  g_allocated_bytes.fetch_add(size, std::memory_order_relaxed);
  if (g_fail_above != 0 && size > g_fail_above) throw std::bad_alloc();
  const size_t anywhere = g_fail_above_anywhere.load(std::memory_order_relaxed);
  if (anywhere != 0 && size > anywhere) throw std::bad_alloc();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
// Deletes are replaced too, so that allocation and release pair as malloc/free even where a
// sanitizer replaces the library's operators (AddressSanitizer checks the pairing).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace cvdeploy::server {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int64_t kBigAnchors = 60000;

// Collects the answers of one request; Wait blocks until one arrived (answers from a
// scheduler thread) or the timeout passed.
struct Answers {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<HttpResponse> got;
  Respond Make() {
    return Respond([this](HttpResponse r) {
      std::lock_guard<std::mutex> lock(mu);
      got.push_back(std::move(r));
      cv.notify_all();
    });
  }
  size_t Wait(double seconds) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return !got.empty(); });
    return got.size();
  }
};

std::string InferBody(const std::string& element) {
  std::string body =
      R"({"inputs":[{"name":"images","datatype":"FP32","shape":[1,3,64,64],"data":[)";
  for (int i = 0; i < 3 * 64 * 64; ++i) body += i == 0 ? element : ",0.5";
  return body + "]}]}";
}

class ApiFaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::MakeTempDir("api_fault"));
    testing::SyntheticModel m;
    m.input_shape = {1, 3, 64, 64};
    std::vector<float> values(6 * 8, 0.0f);
    m.outputs.push_back({"output0", {1, 6, 8}, values});
    m.metadata = testing::UltralyticsMetadata("detect", {"a", "b"});
    const std::string path = *dir_ + "/m.onnx";
    testing::WriteModel(m, path);
    // "big": a 1.4 MB output, copied out of the engine with operator new on a worker thread.
    m.outputs[0] = {"output0", {1, 6, kBigAnchors}, std::vector<float>(6 * kBigAnchors, 0.0f)};
    const std::string big = *dir_ + "/big.onnx";
    testing::WriteModel(m, big);
    RepositoryOptions options;
    options.files.push_back({"m", path});
    options.files.push_back({"big", big});
    options.instances = 1;
    options.threads = 1;
    registry_ = new Registry();
    repository_ =
        new ModelRepository(options, *registry_, [](const std::string&, const std::string&) {});
    repository_->Start();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!repository_->AllReady() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    api_ = new Api(*repository_, *registry_, ApiOptions{});
  }
  static void TearDownTestSuite() {
    delete api_;
    delete repository_;
    delete registry_;
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
  }
  void SetUp() override { ASSERT_TRUE(repository_->AllReady()) << "the model did not load"; }

  // One POST to the model's infer route; returns the answers seen within `wait_s`.
  static std::vector<HttpResponse> Infer(std::string body, size_t fail_above = 0,
                                         double wait_s = 0.2, const std::string& model = "m") {
    HttpRequest request;
    request.method = "POST";
    request.path = "/v2/models/" + model + "/infer";
    request.target = request.path;
    request.body = std::move(body);
    Answers answers;
    {
      Respond respond = answers.Make();
      g_fail_above = fail_above;
      EXPECT_NO_THROW(api_->Handle(request, respond)) << "Handle threw into the transport";
      g_fail_above = 0;
    }
    answers.Wait(30);
    // Give a second (wrong) answer the chance to show up.
    std::this_thread::sleep_for(std::chrono::duration<double>(wait_s));
    std::lock_guard<std::mutex> lock(answers.mu);
    return answers.got;
  }

  static std::string* dir_;
  static Registry* registry_;
  static ModelRepository* repository_;
  static Api* api_;
};

std::string* ApiFaultTest::dir_ = nullptr;
Registry* ApiFaultTest::registry_ = nullptr;
ModelRepository* ApiFaultTest::repository_ = nullptr;
Api* ApiFaultTest::api_ = nullptr;

std::string Reason(const HttpResponse& r) {
  const json doc = json::parse(r.body, nullptr, false);
  return doc.is_object() && doc.contains("error") ? doc["error"].get<std::string>() : r.body;
}

TEST_F(ApiFaultTest, ValidRequestIsAnsweredOnce) {
  const auto answers = Infer(InferBody("0.5"));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 200) << answers[0].body;
}

TEST_F(ApiFaultTest, OutOfMemoryWhileParsingIs503AndTheApiServesOn) {
  // The body's JSON array needs more than 64 KiB while it is parsed.
  const auto answers = Infer(InferBody("0.5"), 64 * 1024);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 503) << answers[0].body;
  EXPECT_NE(Reason(answers[0]).find("out of memory"), std::string::npos) << answers[0].body;
  const auto after = Infer(InferBody("0.5"));
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].status, 200) << after[0].body;
}

TEST_F(ApiFaultTest, OutOfMemoryOnAWorkerIs503AndTheWorkerServesOn) {
  // Allocations above 1 MiB fail on every thread while the request runs: the response body
  // that the engine's 1.4 MB output is encoded into, on the model's worker.
  g_fail_above_anywhere = 1 << 20;
  const auto answers = Infer(InferBody("0.5"), 0, 0.2, "big");
  g_fail_above_anywhere = 0;
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status, 503) << answers[0].body;
  EXPECT_NE(Reason(answers[0]).find("out of memory"), std::string::npos) << answers[0].body;
  ASSERT_EQ(answers[0].headers.size(), 1u);
  EXPECT_EQ(answers[0].headers[0], std::make_pair(std::string("Retry-After"), std::string("1")));
  const auto after = Infer(InferBody("0.5"), 0, 0.2, "big");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].status, 200) << after[0].body.substr(0, 200);
}

// A binary KServe request with binary output, in steady state: the input is viewed in the body
// and copied once into the engine's (pooled) input; the output is written by the engine into
// its (pooled, IO-bound) buffer and copied once into the response body. So the bytes allocated
// for a whole request are about one output's size (the body), not two or three times the output
// plus copies of the input as when each stage held its own tensor.
TEST_F(ApiFaultTest, BinaryInferAllocatesAboutOneOutputPerRequest) {
  const size_t input_bytes = 3 * 64 * 64 * sizeof(float);
  const size_t output_bytes = 6 * kBigAnchors * sizeof(float);
  const std::string header = R"({"inputs":[{"name":"images","datatype":"FP32","shape":[1,3,64,64],)"
                             R"("parameters":{"binary_data_size":)" +
                             std::to_string(input_bytes) +
                             R"(}}],"parameters":{"binary_data_output":true}})";
  std::string body = header + std::string(input_bytes, '\0');
  auto send = [&] {
    HttpRequest request;
    request.method = "POST";
    request.path = "/v2/models/big/infer";
    request.target = request.path;
    request.headers["inference-header-content-length"] = std::to_string(header.size());
    request.body = body;
    Answers answers;
    const size_t before = g_allocated_bytes.load();
    api_->Handle(request, answers.Make());
    EXPECT_EQ(answers.Wait(30), 1u);
    const size_t allocated = g_allocated_bytes.load() - before;
    std::lock_guard<std::mutex> lock(answers.mu);
    EXPECT_EQ(answers.got.at(0).status, 200) << answers.got.at(0).body.substr(0, 200);
    EXPECT_GT(answers.got.at(0).body.size(), output_bytes);  // JSON header + binary output
    return allocated;
  };
  send();  // warm: the worker's workspace and output buffers exist from now on
  size_t allocated = send();
  for (int i = 0; i < 2; ++i) allocated = std::min(allocated, send());
  std::printf("bytes allocated per request: %zu (input %zu, output %zu)\n", allocated, input_bytes,
              output_bytes);
  EXPECT_GE(allocated, output_bytes);  // the response body holds the output once
  EXPECT_LT(allocated, output_bytes + input_bytes / 2 + 64 * 1024);
}

TEST_F(ApiFaultTest, NumbersOutOfRangeAre400) {
  for (const std::string number : {"1e400", "-1e400"}) {
    const auto answers = Infer(InferBody(number));
    ASSERT_EQ(answers.size(), 1u) << number;
    EXPECT_EQ(answers[0].status, 400) << number << ": " << answers[0].body;
    EXPECT_NE(Reason(answers[0]).find("invalid JSON"), std::string::npos) << answers[0].body;
  }
}

}  // namespace
}  // namespace cvdeploy::server
