// SPDX-License-Identifier: Apache-2.0
#include "cli/predict_live.h"

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <opencv2/videoio.hpp>

#include "cli/plural.h"
#include "cli/progress.h"
#include "cvdeploy/annotate.h"
#include "cvdeploy/error.h"
#include "cvdeploy/live_source.h"
#include "cvdeploy/serialize.h"
#include "cvdeploy/stats.h"

namespace cvdeploy::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_interrupted{false};
extern "C" void OnInterrupt(int) { g_interrupted.store(true); }

// SIGINT ends the streams (the run then prints its summary); a second SIGINT kills as usual
// (SA_RESETHAND). The previous handler is restored when the run ends.
class InterruptScope {
 public:
  InterruptScope() {
    g_interrupted.store(false);
    struct sigaction action {};
    action.sa_handler = OnInterrupt;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &action, &previous_);
  }
  ~InterruptScope() { sigaction(SIGINT, &previous_, nullptr); }

 private:
  struct sigaction previous_ {};
};

// JSON Lines written in place, line by line, so a reader can follow the file while the
// streams run (an interrupted run keeps every line written). Every write is checked.
class LineWriter {
 public:
  explicit LineWriter(const std::string& path) : path_(path) {
    if (path == "-") {
      file_ = stdout;
      return;
    }
    file_ = std::fopen(path.c_str(), "w");
    if (!file_) throw BadInput(path + ": cannot open --json for writing: " + std::strerror(errno));
  }
  ~LineWriter() {
    if (file_ && file_ != stdout) std::fclose(file_);
  }
  void Write(const std::string& line) {
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_)) {
      throw RuntimeError((path_ == "-" ? std::string("stdout") : path_) +
                         ": cannot write: " + std::strerror(errno));
    }
  }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Per-stream counters of the frames that came out of the pipeline.
struct StreamReport {
  long processed = 0;
  size_t detections = 0;
  Clock::time_point first{}, last{};
  std::deque<double> latency_ms;  // the last kLatencyWindow frames (bounded for endless streams)
  double inference_ms = 0;
  cv::VideoWriter writer;
  std::string video_path;
};
constexpr size_t kLatencyWindow = 4096;

std::string FrameLine(const pipeline::Frame& f, const Result& r, double latency_ms) {
  std::map<int, std::pair<std::string, long>> counts;
  for (const auto& d : r.detections) {
    auto& [name, n] = counts[d.class_id];
    name = d.class_name;
    ++n;
  }
  std::string text = f.name;
  text.append(" frame ").append(std::to_string(f.frame)).append(" ");
  text.append(std::to_string(r.width)).append("x").append(std::to_string(r.height)).append(": ");
  if (counts.empty()) text.append("(no detections), ");
  for (const auto& [id, count] : counts)
    text.append(CountOf(count.second, count.first)).append(", ");
  char buf[96];
  std::snprintf(buf, sizeof(buf), "inference %.1f ms, latency %.1f ms", r.speed_ms.inference,
                latency_ms);
  return text.append(buf);
}

std::string SummaryLine(const pipeline::StreamStats& s, const StreamReport& r) {
  const double secs = std::chrono::duration<double>(r.last - r.first).count();
  const double fps = r.processed > 1 && secs > 0 ? (r.processed - 1) / secs : 0;
  std::vector<double> lat(r.latency_ms.begin(), r.latency_ms.end());
  std::sort(lat.begin(), lat.end());
  const double p50 = lat.empty() ? 0 : bench::Percentile(lat, 50);
  const double p95 = lat.empty() ? 0 : bench::Percentile(lat, 95);
  char buf[320];
  std::snprintf(buf, sizeof(buf),
                ": %ld frames read, %ld processed, %ld dropped, %d reconnect%s, %zu detections; "
                "%.1f FPS processed (stream %.1f FPS), latency p50 %.0f ms p95 %.0f ms; %s",
                s.frames_read, r.processed, s.dropped, s.reconnects, s.reconnects == 1 ? "" : "s",
                r.detections, fps, s.fps, p50, p95, s.end.empty() ? "running" : s.end.c_str());
  std::string line = s.source;
  line.append(buf);
  if (!r.video_path.empty()) line.append("; saved ").append(r.video_path);
  return line;
}

}  // namespace

void LiveArgs::Add(CLI::App& cmd) {
  cmd.add_flag("--buffer", buffer,
               "Live sources: keep every frame (up to 30, the reader waits) instead of only the "
               "newest");
  cmd.add_option("--reconnect", reconnect,
                 "Live sources: attempts to reopen a stream that stopped (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--stream-timeout", timeout_s,
                 "Live sources: seconds to wait for a stream to open or for its next frame")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
}

std::vector<std::string> LiveSources(const std::vector<std::string>& sources) {
  std::vector<std::string> live;
  bool files = false;
  for (const std::string& s : sources) {
    if (pipeline::IsStreamsFile(s)) {
      for (std::string& line : pipeline::ReadStreamsFile(s)) live.push_back(std::move(line));
    } else if (pipeline::IsLiveSource(s)) {
      live.push_back(s);
    } else {
      files = true;
    }
  }
  if (files && !live.empty()) {
    throw InvalidArgument(
        "--source: live sources (webcams, URLs, .streams files) cannot be mixed with files in "
        "one run");
  }
  return live;
}

int RunLive(const std::vector<std::string>& sources, const LiveArgs& live, const LiveRun& run) {
  InterruptScope interrupt;
  pipeline::LiveOptions options;
  options.buffer = live.buffer;
  options.reconnect = live.reconnect;
  options.timeout_s = live.timeout_s;
  options.vid_stride = run.vid_stride;
  options.stop = &g_interrupted;
  const auto start = Clock::now();
  auto source = pipeline::LiveSource::Open(sources, options);
  // Opened after the streams: a stream that cannot be opened leaves no empty --json file.
  std::unique_ptr<LineWriter> json;
  if (!run.json.empty()) json = std::make_unique<LineWriter>(run.json);
  // Human lines go to stdout unless it carries the JSON Lines; the summary then goes to stderr.
  std::FILE* human = run.json == "-" ? stderr : stdout;
  std::vector<StreamReport> reports(sources.size());
  Progress progress("predict", 0, !run.quiet);
  long dropped_shown = -1;

  pipeline::Run(*run.predictor, *source, run.options, run.pipeline, [&](pipeline::Item& item) {
    const pipeline::Frame& f = item.frame;
    if (item.error) {
      progress.Clear();
      std::fprintf(stderr, "cvdeploy: error: %s\n", item.error->what());
      return;
    }
    StreamReport& rep = reports.at(static_cast<size_t>(f.stream));
    const auto now = Clock::now();
    const double latency = std::chrono::duration<double, std::milli>(now - f.captured).count();
    if (rep.processed++ == 0) rep.first = now;
    rep.last = now;
    rep.detections += item.result.detections.size();
    rep.inference_ms += item.result.speed_ms.inference;
    rep.latency_ms.push_back(latency);
    if (rep.latency_ms.size() > kLatencyWindow) rep.latency_ms.pop_front();
    if (json) {
      nlohmann::ordered_json line = {{"source", f.name}, {"stream", f.stream}, {"frame", f.frame}};
      const nlohmann::ordered_json result = ResultToJson(item.result, run.all_contours);
      for (auto it = result.begin(); it != result.end(); ++it) line[it.key()] = it.value();
      line["latency_ms"] = bench::RoundTo(latency, 2);
      json->Write(line.dump() + "\n");
    }
    if (!run.quiet && run.json != "-") {
      progress.Clear();
      std::printf("%s\n", FrameLine(f, item.result, latency).c_str());
      std::fflush(stdout);
    }
    if (!run.save_dir.empty()) {
      if (!rep.writer.isOpened()) {
        const auto stats = source->Stats()[static_cast<size_t>(f.stream)];
        const double fps =
            (stats.fps > 0 && stats.fps < 1000 ? stats.fps : 25.0) / std::max(1, run.vid_stride);
        const std::string stem = SourceStem(f.name);
        rep.video_path = run.names->Reserve(run.save_dir, stem + ".mp4");
        rep.writer.open(rep.video_path, cv::CAP_FFMPEG, cv::VideoWriter::fourcc('m', 'p', '4', 'v'),
                        fps, f.image.size());
        if (!rep.writer.isOpened()) {
          rep.video_path = run.names->Reserve(run.save_dir, stem + ".avi");
          rep.writer.open(rep.video_path, cv::CAP_OPENCV_MJPEG,
                          cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps, f.image.size());
        }
        if (!rep.writer.isOpened())
          throw RuntimeError(rep.video_path + ": cannot open video writer");
      }
      cv::Mat annotated = f.image.clone();
      Annotate(annotated, item.result, run.style);
      rep.writer.write(annotated);
    }
    long dropped = 0;
    for (const auto& s : source->Stats()) dropped += s.dropped;
    if (dropped != dropped_shown) {
      progress.SetNote(std::to_string(dropped) + " dropped");
      dropped_shown = dropped;
    }
    progress.Step();
  });
  progress.Clear();
  progress.Finish();
  for (auto& rep : reports) rep.writer.release();
  // Joined first: a reader that was still reading when the run stopped (SIGINT) sets its
  // end reason ("interrupted") as it finishes, so the summary never says "running".
  source->Stop();
  const std::vector<pipeline::StreamStats> stats = source->Stats();
  source.reset();
  long processed = 0;
  for (size_t i = 0; i < stats.size(); ++i) {
    std::fprintf(human, "%s\n", SummaryLine(stats[i], reports[i]).c_str());
    processed += reports[i].processed;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (g_interrupted.load()) {
    std::fprintf(human, "interrupted: %s processed in %.1f s\n",
                 CountOf(processed, "frame").c_str(), secs);
  }
  if (!run.save_dir.empty())
    std::fprintf(human, "annotated results saved to %s\n", run.save_dir.c_str());
  std::fflush(human);
  return 0;
}

}  // namespace cvdeploy::cli
