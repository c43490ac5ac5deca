// SPDX-License-Identifier: Apache-2.0
// Live sources for the many-inputs pipeline (cvdeploy/pipeline.h): webcams, RTSP, HTTP video
// and MJPEG streams, and `.streams` files listing several of them (as Ultralytics). One reader
// thread per stream keeps only the newest frame (or, with `buffer`, every frame, bounded, with
// back-pressure), so slow inference drops frames instead of adding memory or latency.
// Implemented in src/pipeline/live_source.cpp.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "cvdeploy/pipeline.h"

namespace cvdeploy::pipeline {

// A webcam index ("0"), a V4L2 device ("/dev/video0") or a stream URL (rtsp://, rtsps://,
// rtmp://, http://, https://).
bool IsLiveSource(const std::string& source);
// A file listing sources, one per line (name ends in ".streams").
bool IsStreamsFile(const std::string& source);
// The sources of a .streams file: one per line, surrounding blanks trimmed, empty lines and
// lines starting with '#' skipped. Throws Error(kBadInput) "PATH: reason" when the file cannot
// be read or lists nothing.
std::vector<std::string> ReadStreamsFile(const std::string& path);

struct LiveOptions {
  bool buffer = false;    // keep every frame (up to kBufferFrames, reader waits) vs the newest
  int reconnect = 3;      // attempts to reopen a stream that stopped (backoff 0.5 s, 1 s, 2 s..)
  double timeout_s = 10;  // bound on opening a stream and on waiting for its next frame
  int vid_stride = 1;     // keep every Nth frame read
  // Set by the caller (e.g. from a SIGINT handler) to end every stream; polled at least every
  // 100 ms by the readers and the waiting workers. May be null.
  const std::atomic<bool>* stop = nullptr;
};
inline constexpr size_t kBufferFrames = 30;  // --buffer's bound (Ultralytics' stream_buffer)

// What one stream did; a snapshot, safe to read while the readers run.
struct StreamStats {
  std::string source;
  long frames_read = 0;  // frames taken from the stream (after vid_stride)
  long dropped = 0;      // frames replaced by a newer one before a worker took them
  int reconnects = 0;    // successful reopenings after the stream stopped
  double fps = 0;        // the stream's nominal frame rate (0: unknown)
  int width = 0, height = 0;
  // "" while running; "ended" (the stream ended), "interrupted" (LiveOptions::stop),
  // "stopped" (Cancel: the run stopped) or "lost: REASON" (reconnect attempts failed)
  std::string end;
};

// A Source over live streams. Frames carry their stream's index (Frame::stream) and capture
// time (Frame::captured). Claim never blocks: the loader it returns waits (on a worker) for
// the next frame of any stream, or returns a Frame with `end` set when every stream ended.
class LiveSource : public Source {
 public:
  // Opens every source (in parallel, each within options.timeout_s) and starts the readers.
  // Throws Error(kBadInput) "SOURCE: cannot open stream: REASON" for a source that cannot be
  // opened (no answer within the timeout, refused, no such webcam).
  static std::unique_ptr<LiveSource> Open(const std::vector<std::string>& sources,
                                          const LiveOptions& options);
  // Stops and joins the readers.
  ~LiveSource() override = default;
  // Stops the readers and waits until each has finished (idempotent): Stats() afterwards is
  // final (every stream has its end reason). The destructor does the same.
  virtual void Stop() = 0;
  virtual std::vector<StreamStats> Stats() const = 0;
};

}  // namespace cvdeploy::pipeline
