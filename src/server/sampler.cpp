// SPDX-License-Identifier: Apache-2.0
#include "server/sampler.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cvdeploy/error.h"
#include "server/log.h"

namespace cvdeploy::server {
namespace fs = std::filesystem;
namespace {

constexpr size_t kRecent = 100;  // metadata kept for GET /v1/models/{m}/samples

// "DAY/NAME": a sample's "sample" key in the listing.
std::string SampleKey(const samples::SampleDir& d) {
  return fs::path(d.path).parent_path().filename().string() + "/" + d.name;
}

const char* kHelp =
    "Sampled requests: written to the sample store, dropped because the writer's queue was "
    "full, or failed (disk error, larger than the store)";

// Writes `size` bytes to a new file `path` (mode 0600, must not exist). Returns errno or 0.
int WriteNewFile(const std::string& path, const void* data, size_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errno;
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return e;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return ::close(fd) == 0 ? 0 : errno;
}

// mkdir with mode 0700; an existing directory is fine. Returns errno or 0.
int MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) == 0) return 0;
  if (errno == EEXIST) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    return ENOTDIR;
  }
  return errno;
}

// The request id as a directory-name part: [A-Za-z0-9._-], at most 64 characters.
std::string SafeId(const std::string& id) {
  std::string out;
  for (char c : id.substr(0, 64)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    out.push_back(ok ? c : '_');
  }
  return out.empty() ? "request" : out;
}

// Blurs each box of `image` beyond recognition: pixelated to at most 8 cells on its long side,
// then smoothed. Returns the number of boxes blurred (non-empty after clipping).
int BlurBoxes(cv::Mat& image, const std::vector<BoxXYXY>& boxes) {
  int blurred = 0;
  const cv::Rect whole(0, 0, image.cols, image.rows);
  for (const BoxXYXY& b : boxes) {
    const cv::Rect r =
        cv::Rect(cv::Point(static_cast<int>(std::floor(b.x1)), static_cast<int>(std::floor(b.y1))),
                 cv::Point(static_cast<int>(std::ceil(b.x2)), static_cast<int>(std::ceil(b.y2)))) &
        whole;
    if (r.empty()) continue;
    cv::Mat roi = image(r);
    const double scale = 8.0 / std::max(r.width, r.height);
    cv::Mat small;
    cv::resize(roi, small,
               cv::Size(std::max(1, static_cast<int>(r.width * scale)),
                        std::max(1, static_cast<int>(r.height * scale))),
               0, 0, cv::INTER_AREA);
    cv::resize(small, roi, r.size(), 0, 0, cv::INTER_LINEAR);
    ++blurred;
  }
  return blurred;
}

}  // namespace

samples::SampleMeta NewSampleMeta(const std::string& request_id, const std::string& trace_id,
                                  const std::string& model, const std::string& version,
                                  const std::string& kind, const PredictOptions* options) {
  samples::SampleMeta m;
  m.request_id = request_id.substr(0, samples::kMaxIdLength);
  for (char& c : m.request_id) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  m.trace_id = trace_id;
  m.model = model;
  m.version = version;
  m.kind = kind;
  if (options) {
    m.conf = options->conf;
    m.iou = options->iou;
    m.max_det = options->max_det;
    m.imgsz = options->imgsz;
  }
  return m;
}

std::map<std::string, double> TimingsMap(const StageTimings& t) {
  std::map<std::string, double> out;
  const std::pair<const char*, double> stages[] = {{"queue", t.queue_ms},
                                                   {"decode", t.decode_ms},
                                                   {"preprocess", t.preprocess_ms},
                                                   {"inference", t.inference_ms},
                                                   {"postprocess", t.postprocess_ms},
                                                   {"encode", t.encode_ms}};
  for (const auto& [name, ms] : stages) {
    if (ms >= 0) out[name] = ms;
  }
  return out;
}

std::vector<BoxXYXY> PersonBoxes(const Result& result) {
  std::vector<BoxXYXY> boxes;
  for (const Detection& d : result.detections) {
    if (d.class_name == "person") boxes.push_back(d.box);
  }
  return boxes;
}

Sampler::Sampler(const SamplingOptions& options, Registry& registry,
                 std::function<void()> before_write)
    : options_(options), before_write_(std::move(before_write)) {
  written_ = &registry.GetCounter("cvdeploy_samples_total", kHelp, {{"result", "written"}});
  dropped_ = &registry.GetCounter("cvdeploy_samples_total", kHelp, {{"result", "dropped"}});
  failed_ = &registry.GetCounter("cvdeploy_samples_total", kHelp, {{"result", "failed"}});
  stored_bytes_ = &registry.GetGauge("cvdeploy_samples_stored_bytes",
                                     "Bytes in the sample store (--sample-max-bytes bounds it)");
  stored_count_ = &registry.GetGauge("cvdeploy_samples_stored", "Samples in the sample store");
  const std::string& dir = options_.dir;
  if (dir.empty()) throw InvalidArgument("sampling needs a sample directory");
  std::error_code ec;
  fs::create_directories(
      fs::path(dir).parent_path().empty() ? fs::path(".") : fs::path(dir).parent_path(), ec);
  if (const int e = MakeDir(dir)) {
    throw Error(ErrorCode::kPermissionDenied,
                "sample directory " + dir + ": cannot create it: " + std::strerror(e));
  }
  // A store readable by others would leak the requests: tighten a directory we own.
  ::chmod(dir.c_str(), 0700);
  const std::string probe = (fs::path(dir) / ".write-check").string();
  ::unlink(probe.c_str());
  if (const int e = WriteNewFile(probe, "ok", 2)) {
    throw Error(ErrorCode::kPermissionDenied,
                "sample directory " + dir + ": cannot write there: " + std::strerror(e));
  }
  ::unlink(probe.c_str());
  for (samples::SampleDir& d : samples::ScanSampleDirs(dir)) {
    store_bytes_ += d.bytes;
    store_.push_back(std::move(d));
  }
  Rotate();
  SeedRecent();
  writer_ = std::thread([this] { Run(); });
}

Sampler::~Sampler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

bool Sampler::Decide() {
  if (options_.rate >= 1) return true;
  if (options_.rate <= 0) return false;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0, 1)(rng) < options_.rate;
}

void Sampler::Offer(SampleRecord&& record) noexcept {
  try {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!stopping_ && queue_.size() < options_.queue) {
        queue_.push_back(std::move(record));
        cv_.notify_one();
        return;
      }
    }
    dropped_->Inc();
  } catch (...) {  // out of memory queueing: the sample is lost, the request is not
    dropped_->Inc();
  }
}

nlohmann::ordered_json Sampler::Recent(const std::string& model, size_t limit) const {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = recent_.rbegin(); it != recent_.rend() && list.size() < limit; ++it) {
    if (model.empty() || it->value("model", "") == model) list.insert(list.begin(), *it);
  }
  return {{"model", model},
          {"rate", options_.rate},
          {"redact", options_.redact},
          {"stored_bytes", stored_bytes_->Value()},
          {"max_bytes", options_.max_bytes},
          {"samples", std::move(list)}};
}

void Sampler::Run() {
  for (;;) {
    SampleRecord record;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, everything written
      record = std::move(queue_.front());
      queue_.pop_front();
    }
    RequestLogScope scope(record.meta.request_id, record.meta.trace_id);
    try {
      if (before_write_) before_write_();
      Write(record);
    } catch (const std::exception& e) {
      DiskError("write", std::string("sampling: ") + e.what());
    }
  }
}

void Sampler::DiskError(const std::string& kind, const std::string& message) {
  failed_->Inc();
  if (logged_kinds_.insert(kind).second) {
    Log(LogLevel::kWarning,
        message + " (logged once per kind; see cvdeploy_samples_total{result=\"failed\"})");
  }
}

void Sampler::Write(SampleRecord& record) {
  samples::SampleMeta& meta = record.meta;
  // The stored input: the image as received, or redacted and re-encoded as PNG (lossless, so
  // only the blurred boxes differ; no metadata such as EXIF GPS survives), or the tensor bytes.
  std::vector<uint8_t> encoded;
  const void* input = nullptr;
  size_t input_size = 0;
  if (meta.kind == "image") {
    if (options_.redact) {
      cv::Mat image = cv::imdecode(
          cv::Mat(1, static_cast<int>(record.image.size()), CV_8U, record.image.data()),
          cv::IMREAD_COLOR);
      if (!image.empty()) {
        meta.redacted_regions = BlurBoxes(image, record.persons);
        if (cv::imencode(".png", image, encoded)) {
          meta.redacted = true;
          meta.input = "input.png";
          input = encoded.data();
          input_size = encoded.size();
        }
      }
      // Undecodable here (it was decoded for inference): no input stored rather than an
      // un-redacted one.
    } else {
      meta.input = "input." + record.image_ext;
      input = record.image.data();
      input_size = record.image.size();
    }
  } else if (!options_.redact && record.tensor_data) {
    meta.input = "input.bin";
    input = record.tensor_data;
    input_size = record.tensor_size;
  }
  meta.input_bytes = input ? input_size : 0;
  const std::string meta_text = samples::SampleMetaToJson(meta);
  const uint64_t bytes = meta_text.size() + record.response.size() + meta.input_bytes;
  if (bytes > options_.max_bytes) {
    DiskError("size", "sampling: a sample of " + std::to_string(bytes) +
                          " bytes is larger than --sample-max-bytes " +
                          std::to_string(options_.max_bytes) + "; not stored");
    return;
  }

  // DIR/YYYYMMDD/HHMMSSmmm_NNNNNN_<request id>, written as .NAME and renamed into place.
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char day[16], stamp[32], iso[40];
  std::strftime(day, sizeof(day), "%Y%m%d", &utc);
  std::snprintf(stamp, sizeof(stamp), "%02d%02d%02d%03d_%06llu", utc.tm_hour, utc.tm_min,
                utc.tm_sec, static_cast<int>(ms.count() % 1000),
                static_cast<unsigned long long>(sequence_++ % 1000000));
  std::strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S", &utc);
  meta.time = std::string(iso) + "." + std::string(stamp + 6, 3) + "Z";
  meta.time_ms = ms.count();
  const std::string meta_final = samples::SampleMetaToJson(meta);

  const fs::path day_dir = fs::path(options_.dir) / day;
  const std::string name = std::string(stamp) + "_" + SafeId(meta.request_id);
  const fs::path tmp = day_dir / ("." + name);
  const fs::path final_dir = day_dir / name;
  if (int e = MakeDir(day_dir.string()); e != 0 || (e = MakeDir(tmp.string())) != 0) {
    DiskError("mkdir", "sampling: cannot create a directory under " + options_.dir + ": " +
                           std::strerror(e));
    return;
  }
  auto write = [&](const char* file, const void* data, size_t size) {
    const int e = WriteNewFile((tmp / file).string(), data, size);
    if (e) {
      DiskError("write",
                "sampling: cannot write " + (tmp / file).string() + ": " + std::strerror(e));
    }
    return e == 0;
  };
  bool ok = write("response.json", record.response.data(), record.response.size()) &&
            (!input || write(meta.input.c_str(), input, input_size)) &&
            write("meta.json", meta_final.data(), meta_final.size());
  if (ok && ::rename(tmp.c_str(), final_dir.c_str()) != 0) {
    DiskError("rename", "sampling: cannot rename " + tmp.string() + ": " + std::strerror(errno));
    ok = false;
  }
  if (!ok) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    return;
  }
  const uint64_t stored = meta_final.size() + record.response.size() + meta.input_bytes;
  store_.push_back({final_dir.string(), name, stored});
  store_bytes_ += stored;
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(meta_final);
  j["sample"] = std::string(day) + "/" + name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    recent_.push_back(std::move(j));
    if (recent_.size() > kRecent) recent_.pop_front();
  }
  Rotate();         // after the listing has it: a sample larger than the store leaves both at once
  written_->Inc();  // last: whoever sees the count sees the store and the listing settled
}

void Sampler::SeedRecent() {
  const size_t first = store_.size() > kRecent ? store_.size() - kRecent : 0;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = first; i < store_.size(); ++i) {
    // An earlier run's meta.json is read like `cvdeploy samples list` reads it (bounded,
    // validated); one that does not parse is left out of the listing, not fatal.
    try {
      std::ifstream in(store_[i].path + "/meta.json", std::ios::binary);
      std::string text;
      text.resize(samples::kMaxMetaBytes + 1);
      in.read(text.data(), static_cast<std::streamsize>(text.size()));
      text.resize(static_cast<size_t>(in.gcount()));
      const samples::SampleMeta meta = samples::SampleMetaFromJson(text, store_[i].path);
      nlohmann::ordered_json j = nlohmann::ordered_json::parse(samples::SampleMetaToJson(meta));
      j["sample"] = SampleKey(store_[i]);
      recent_.push_back(std::move(j));
    } catch (const std::exception&) {
    }
  }
}

void Sampler::Rotate() {
  while (store_bytes_ > options_.max_bytes && !store_.empty()) {
    const samples::SampleDir oldest = store_.front();
    std::error_code ec;
    fs::remove_all(oldest.path, ec);
    if (ec) {
      DiskError("delete", "sampling: cannot delete " + oldest.path + ": " + ec.message());
      break;  // retried after the next write
    }
    store_.pop_front();
    store_bytes_ -= std::min(store_bytes_, oldest.bytes);
    {  // a deleted sample leaves the listing too
      const std::string key = SampleKey(oldest);
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = recent_.begin(); it != recent_.end();) {
        it = it->value("sample", "") == key ? recent_.erase(it) : std::next(it);
      }
    }
    fs::remove(fs::path(oldest.path).parent_path(), ec);  // the day, once empty
  }
  stored_bytes_->Set(static_cast<double>(store_bytes_));
  stored_count_->Set(static_cast<double>(store_.size()));
}

}  // namespace cvdeploy::server
