// SPDX-License-Identifier: Apache-2.0
// Live sources: one reader thread per stream feeding a small buffer; workers take frames in
// claim order (tickets), so frames of one stream are delivered in the order they were read.
#include "cvdeploy/live_source.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <opencv2/videoio.hpp>
#include <thread>

#include "cvdeploy/error.h"

namespace cvdeploy::pipeline {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::milliseconds(100);

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

bool IsWebcamIndex(const std::string& s) {
  return !s.empty() && s.size() <= 3 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g s", s);
  return buf;
}

// Opens `source` into `cap` within the timeout; returns "" or the reason it failed.
std::string OpenCapture(const std::string& source, double timeout_s, cv::VideoCapture& cap) {
  if (IsWebcamIndex(source) || StartsWith(source, "/dev/")) {
    const std::string device = IsWebcamIndex(source) ? "/dev/video" + source : source;
    std::error_code ec;
    if (!std::filesystem::exists(device, ec)) return "no such webcam (" + device + " not found)";
    try {
      if (IsWebcamIndex(source) ? cap.open(std::stoi(source), cv::CAP_V4L2)
                                : cap.open(source, cv::CAP_V4L2)) {
        return "";
      }
    } catch (const cv::Exception&) {
    }
    return "cannot open webcam " + device + " (busy, no permission or not a capture device)";
  }
  const int ms = static_cast<int>(timeout_s * 1000);
  const auto t0 = Clock::now();
  try {
    if (cap.open(source, cv::CAP_FFMPEG,
                 {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv::CAP_PROP_READ_TIMEOUT_MSEC, ms})) {
      return "";
    }
  } catch (const cv::Exception&) {
  }
  const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  if (waited >= 0.9 * timeout_s) return "no answer within " + Seconds(timeout_s);
  return "connection refused, not found or not a readable video stream";
}

struct Stream {
  std::string source;
  cv::VideoCapture cap;
  std::deque<Frame> frames;  // guarded by Live::mutex_
  StreamStats stats;         // guarded by Live::mutex_
  std::thread reader;
};

class Live : public LiveSource {
 public:
  Live(const std::vector<std::string>& sources, const LiveOptions& options) : options_(options) {
    options_.vid_stride = std::max(1, options_.vid_stride);
    options_.reconnect = std::max(0, options_.reconnect);
    for (const std::string& s : sources) {
      streams_.push_back(std::make_unique<Stream>());
      streams_.back()->source = s;
      streams_.back()->stats.source = s;
    }
    // Opened in parallel, so N streams that do not answer cost one timeout, not N.
    std::vector<std::string> errors(streams_.size());
    std::vector<std::thread> openers;
    for (size_t i = 0; i < streams_.size(); ++i) {
      openers.emplace_back([this, i, &errors] {
        Stream& s = *streams_[i];
        errors[i] = OpenCapture(s.source, options_.timeout_s, s.cap);
        if (errors[i].empty()) {
          s.stats.fps = s.cap.get(cv::CAP_PROP_FPS);
          s.stats.width = static_cast<int>(s.cap.get(cv::CAP_PROP_FRAME_WIDTH));
          s.stats.height = static_cast<int>(s.cap.get(cv::CAP_PROP_FRAME_HEIGHT));
        }
      });
    }
    for (auto& t : openers) t.join();
    for (size_t i = 0; i < streams_.size(); ++i) {
      if (!errors[i].empty()) {
        throw BadInput(streams_[i]->source + ": cannot open stream: " + errors[i]);
      }
    }
    running_ = streams_.size();
    for (size_t i = 0; i < streams_.size(); ++i) {
      streams_[i]->reader = std::thread([this, i] { Read(i); });
    }
  }

  ~Live() override { Stop(); }

  void Stop() override {
    Cancel();
    for (auto& s : streams_) {
      if (s->reader.joinable()) s->reader.join();
    }
  }

  std::optional<Loader> Claim() override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (Finished()) return std::nullopt;
    const uint64_t ticket = next_ticket_++;
    return Loader([this, ticket] { return Next(ticket); });
  }

  void Cancel() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    ready_.notify_all();
    space_.notify_all();
  }

  std::vector<StreamStats> Stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<StreamStats> out;
    for (const auto& s : streams_) out.push_back(s->stats);
    return out;
  }

 private:
  bool StopRequested() const { return options_.stop && options_.stop->load(); }
  // Under mutex_: nothing more will be delivered.
  bool Finished() const {
    if (StopRequested() || closing_) return true;
    if (running_ > 0) return false;
    for (const auto& s : streams_) {
      if (!s->frames.empty()) return false;
    }
    return true;
  }

  // The frame for the loader holding `ticket`: loaders are served in ticket order.
  Frame Next(uint64_t ticket) {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      // A stop ends every waiting loader, whatever its turn (a ticket whose loader never ran
      // cannot hold the others).
      if (closing_ || StopRequested()) {
        Frame end;
        end.end = true;
        return end;
      }
      if (serving_ == ticket) {
        for (size_t k = 0; k < streams_.size(); ++k) {
          const size_t i = (round_robin_ + k) % streams_.size();
          auto& frames = streams_[i]->frames;
          if (frames.empty()) continue;
          Frame f = std::move(frames.front());
          frames.pop_front();
          round_robin_ = i + 1;
          ++serving_;
          ready_.notify_all();
          space_.notify_all();
          return f;
        }
        if (Finished()) {
          ++serving_;
          ready_.notify_all();
          Frame end;
          end.end = true;
          return end;
        }
      }
      ready_.wait_for(lock, kPoll);
    }
  }

  // Sleeps up to `d`, returning early (false) when the run is stopping.
  bool Backoff(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto until = Clock::now() + d;
    while (Clock::now() < until) {
      if (closing_ || StopRequested()) return false;
      space_.wait_for(lock, std::min<Clock::duration>(kPoll, until - Clock::now()));
    }
    return !(closing_ || StopRequested());
  }

  // Reopens a stream that stopped: up to options_.reconnect attempts with doubling backoff.
  bool Reconnect(Stream& s, std::string* reason) {
    auto delay = std::chrono::milliseconds(500);
    for (int attempt = 1; attempt <= options_.reconnect; ++attempt) {
      if (!Backoff(delay)) return false;
      delay = std::min(delay * 2, std::chrono::milliseconds(5000));
      s.cap.release();
      *reason = OpenCapture(s.source, options_.timeout_s, s.cap);
      if (reason->empty()) {
        std::lock_guard<std::mutex> lock(mutex_);
        ++s.stats.reconnects;
        return true;
      }
    }
    return false;
  }

  void Read(size_t index) {
    Stream& s = *streams_[index];
    long count = 0;
    std::string end = "ended";
    while (!StopRequested()) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_) break;
      }
      cv::Mat image;
      bool ok = false;
      try {
        ok = s.cap.grab() && (count % options_.vid_stride != 0 || s.cap.retrieve(image));
        ok = ok && (count % options_.vid_stride != 0 || !image.empty());
      } catch (const cv::Exception&) {
        ok = false;
      }
      if (!ok) {
        if (StopRequested()) break;
        std::string reason = "stream stopped";
        if (options_.reconnect > 0 && Reconnect(s, &reason)) continue;
        if (StopRequested()) break;
        if (options_.reconnect > 0) {
          end = "lost: " + reason + " (after " + std::to_string(options_.reconnect) +
                " reconnect attempts)";
        }
        break;
      }
      if (count++ % options_.vid_stride != 0) continue;
      Frame f;
      f.name = s.source;
      f.stream = static_cast<int>(index);
      f.captured = Clock::now();
      f.original = image.size();
      f.image = std::move(image);
      std::unique_lock<std::mutex> lock(mutex_);
      f.frame = count - 1;  // the stream's frame number, as a video's (strided frames skipped)
      ++s.stats.frames_read;
      s.stats.width = f.original.width;
      s.stats.height = f.original.height;
      if (options_.buffer) {
        // Back-pressure: the reader waits for room (the stream's own buffers absorb it).
        while (s.frames.size() >= kBufferFrames && !closing_ && !StopRequested()) {
          space_.wait_for(lock, kPoll);
        }
      } else if (!s.frames.empty()) {
        s.stats.dropped += static_cast<long>(s.frames.size());
        s.frames.clear();
      }
      s.frames.push_back(std::move(f));
      ready_.notify_all();
    }
    s.cap.release();
    std::lock_guard<std::mutex> lock(mutex_);
    if (StopRequested() || closing_) {
      // Never delivered after a stop: counted as dropped, so read = processed + dropped.
      s.stats.dropped += static_cast<long>(s.frames.size());
      s.frames.clear();
    }
    s.stats.end = StopRequested() ? "interrupted" : closing_ ? "stopped" : end;
    --running_;
    ready_.notify_all();
  }

  LiveOptions options_;
  std::vector<std::unique_ptr<Stream>> streams_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;  // a frame arrived, a ticket was served, a stream ended
  std::condition_variable space_;  // room in a --buffer queue; closing
  size_t running_ = 0;             // readers still reading
  bool closing_ = false;
  uint64_t next_ticket_ = 0, serving_ = 0;
  size_t round_robin_ = 0;
};

}  // namespace

bool IsLiveSource(const std::string& source) {
  const std::string s = Lower(source);
  if (IsWebcamIndex(s) || StartsWith(s, "/dev/video")) return true;
  for (const char* scheme : {"rtsp://", "rtsps://", "rtmp://", "http://", "https://"}) {
    if (StartsWith(s, scheme)) return true;
  }
  return false;
}

bool IsStreamsFile(const std::string& source) {
  const std::string s = Lower(source);
  return s.size() > 8 && s.compare(s.size() - 8, 8, ".streams") == 0;
}

std::vector<std::string> ReadStreamsFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw BadInput(path + ": No such file (a .streams file lists one source per line)");
  }
  std::ifstream in(path);
  if (!in) throw BadInput(path + ": cannot read");
  std::vector<std::string> sources;
  std::string line;
  while (std::getline(in, line)) {
    const size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    const size_t e = line.find_last_not_of(" \t\r");
    sources.push_back(line.substr(b, e - b + 1));
    if (sources.size() > 256) throw BadInput(path + ": more than 256 sources");
  }
  if (sources.empty()) throw BadInput(path + ": lists no sources");
  return sources;
}

std::unique_ptr<LiveSource> LiveSource::Open(const std::vector<std::string>& sources,
                                             const LiveOptions& options) {
  if (sources.empty()) throw InvalidArgument("no live sources given");
  if (options.timeout_s <= 0) throw InvalidArgument("stream timeout must be > 0");
  return std::make_unique<Live>(sources, options);
}

}  // namespace cvdeploy::pipeline
