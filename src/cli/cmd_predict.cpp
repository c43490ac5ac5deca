// SPDX-License-Identifier: Apache-2.0
// cvdeploy predict --model MODEL --source SRC [SRC ...] [options]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "cvdeploy/annotate.h"
#include "cvdeploy/error.h"
#include "cvdeploy/image.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/serialize.h"

namespace cvdeploy::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct PredictArgs {
  ModelArgs model;
  std::vector<std::string> sources;
  ThresholdArgs thresholds;
  std::string save_dir;
  std::string json;
  int vid_stride = 1;
  bool all_contours = false;
};

// Where results go: JSON Lines (file or stdout) and/or a human-readable summary.
class Sink {
 public:
  explicit Sink(const std::string& json_path) {
    if (json_path == "-") {
      json_ = &std::cout;
    } else if (!json_path.empty()) {
      file_.open(json_path);
      if (!file_) throw BadInput(json_path + ": cannot open --json output for writing");
      json_ = &file_;
    }
    human_ = json_path != "-";
  }
  void Emit(const std::string& source, const Result& r, int frame, bool all_polygons,
            bool print_human) {
    if (json_) {
      nlohmann::ordered_json line = {{"source", source}};
      if (frame >= 0) line["frame"] = frame;
      const nlohmann::ordered_json result = ResultToJson(r, all_polygons);
      for (auto it = result.begin(); it != result.end(); ++it) line[it.key()] = it.value();
      *json_ << line.dump() << "\n";
      json_->flush();
    }
    if (human_ && print_human) std::cout << Summary(source, r) << std::endl;
  }
  bool human() const { return human_; }

  static std::string Summary(const std::string& source, const Result& r) {
    std::map<std::string, int> counts;
    for (const auto& d : r.detections) counts[d.class_name]++;
    std::string text =
        source + " " + std::to_string(r.width) + "x" + std::to_string(r.height) + ": ";
    if (r.task == Task::kClassify && !r.detections.empty()) {
      for (const auto& c : r.detections[0].top5) {
        char buf[128];
        std::snprintf(buf, sizeof(buf), "%s %.2f, ", c.class_name.c_str(), c.score);
        text += buf;
      }
    } else if (counts.empty()) {
      text += "(no detections), ";
    } else {
      for (const auto& [name, n] : counts) text += std::to_string(n) + " " + name + ", ";
    }
    char buf[160];
    std::snprintf(buf, sizeof(buf),
                  "decode %.1f ms, preprocess %.1f ms, inference %.1f ms, postprocess %.1f ms",
                  r.speed_ms.decode, r.speed_ms.preprocess, r.speed_ms.inference,
                  r.speed_ms.postprocess);
    return text + buf;
  }

 private:
  std::ofstream file_;
  std::ostream* json_ = nullptr;
  bool human_ = true;
};

void SaveImage(const std::string& save_dir, const std::string& source, cv::Mat& image,
               const Result& r) {
  Annotate(image, r);
  fs::path out = fs::path(save_dir) / fs::path(source).filename();
  if (!HasImageExtension(out.string())) out.replace_extension(".jpg");
  if (!cv::imwrite(out.string(), image))
    throw RuntimeError(out.string() + ": cannot write annotated image");
}

// Runs every --vid-stride'th frame; emits one JSON line per processed frame and, with
// --save-dir, writes the annotated video.
void RunVideo(const Predictor& predictor, const PredictArgs& args, const PredictOptions& options,
              const std::string& source, Sink& sink) {
  cv::VideoCapture cap;
  // FFmpeg first: with any backend, OpenCV falls through to GStreamer on failure, which
  // logs several lines even with logging silenced.
  for (int api : {cv::CAP_FFMPEG, cv::CAP_ANY}) {
    try {
      if (cap.open(source, api)) break;
    } catch (const cv::Exception&) {
    }
  }
  if (!cap.isOpened())
    throw BadInput(source + ": cannot open video (unreadable or unsupported format)");
  const double fps = cap.get(cv::CAP_PROP_FPS);
  const long total = static_cast<long>(cap.get(cv::CAP_PROP_FRAME_COUNT));
  Progress progress(fs::path(source).filename().string(), total > 0 ? total : 0);
  cv::VideoWriter writer;
  std::string out_path;
  cv::Mat frame;
  int index = 0, processed = 0;
  StageTimes sum;
  size_t detections = 0;
  while (true) {
    auto t0 = Clock::now();
    if (!cap.read(frame) || frame.empty()) break;
    const double decode = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (index % args.vid_stride == 0) {
      Result r = predictor.Predict(frame, options);
      r.speed_ms.decode = decode;
      sink.Emit(source, r, index, args.all_contours, false);
      sum.decode += r.speed_ms.decode;
      sum.preprocess += r.speed_ms.preprocess;
      sum.inference += r.speed_ms.inference;
      sum.postprocess += r.speed_ms.postprocess;
      detections += r.detections.size();
      ++processed;
      if (!args.save_dir.empty()) {
        if (!writer.isOpened()) {
          out_path = (fs::path(args.save_dir) / fs::path(source).stem()).string() + ".mp4";
          const double out_fps = (fps > 0 ? fps : 25.0) / args.vid_stride;
          writer.open(out_path, cv::VideoWriter::fourcc('m', 'p', '4', 'v'), out_fps, frame.size());
          if (!writer.isOpened()) {
            out_path = (fs::path(args.save_dir) / fs::path(source).stem()).string() + ".avi";
            writer.open(out_path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), out_fps,
                        frame.size());
          }
          if (!writer.isOpened()) throw RuntimeError(out_path + ": cannot open video writer");
        }
        Annotate(frame, r);
        writer.write(frame);
      }
    }
    ++index;
    progress.Step();
  }
  progress.Finish();
  if (index == 0) throw BadInput(source + ": video contains no readable frames");
  if (sink.human()) {
    const double n = processed;
    std::printf(
        "%s: %d frames (%d processed, stride %d), %zu detections; mean per frame: decode %.1f ms, "
        "preprocess %.1f ms, inference %.1f ms, postprocess %.1f ms%s%s\n",
        source.c_str(), index, processed, args.vid_stride, detections, sum.decode / n,
        sum.preprocess / n, sum.inference / n, sum.postprocess / n,
        out_path.empty() ? "" : "; saved ", out_path.c_str());
  }
}

int Run(const PredictArgs& args) {
  const SessionOptions session = args.model.ToSessionOptions();
  const PredictOptions options = args.thresholds.ToPredictOptions(args.all_contours);
  const std::vector<std::string> files = ExpandSources(args.sources);
  auto predictor = Predictor::Load(args.model.path, session);
  for (const auto& w : predictor->info().warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (!args.save_dir.empty()) {
    std::error_code ec;
    fs::create_directories(args.save_dir, ec);
    if (ec) throw BadInput(args.save_dir + ": cannot create --save-dir: " + ec.message());
  }
  Sink sink(args.json);
  size_t images = 0;
  for (const auto& f : files) images += HasVideoExtension(f) ? 0 : 1;
  Progress progress("predict", images > 1 ? static_cast<long>(images) : 0);
  int failures = 0;
  for (const std::string& source : files) {
    try {
      if (HasVideoExtension(source)) {
        RunVideo(*predictor, args, options, source, sink);
        continue;
      }
      auto t0 = Clock::now();
      cv::Mat image = ReadImage(source);
      const double decode = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      Result r = predictor->Predict(image, options);
      r.speed_ms.decode = decode;
      sink.Emit(source, r, -1, args.all_contours, true);
      if (!args.save_dir.empty()) SaveImage(args.save_dir, source, image, r);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kBadInput) throw;
      std::fprintf(stderr, "cvdeploy: error: %s\n", e.what());
      ++failures;
    }
    if (images > 1) progress.Step();
  }
  progress.Finish();
  if (!args.save_dir.empty() && sink.human()) {
    std::printf("annotated results saved to %s\n", args.save_dir.c_str());
  }
  return failures ? static_cast<int>(ErrorCode::kBadInput) : 0;
}

}  // namespace

void RegisterPredict(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("predict", "Run a model on images, directories, globs or videos");
  auto args = std::make_shared<PredictArgs>();
  args->model.Add(*cmd);
  cmd->add_option("--source", args->sources, "Image, directory, glob or video (repeatable)")
      ->required()
      ->expected(1, -1);
  args->thresholds.Add(*cmd, 0.25f);
  cmd->add_option("--save-dir", args->save_dir, "Write annotated images/videos here");
  cmd->add_option("--json", args->json, "Write JSON Lines to FILE, or '-' for stdout");
  cmd->add_option("--vid-stride", args->vid_stride, "Process every Nth video frame")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--all-contours", args->all_contours, "Segment: emit every mask contour");
  cmd->callback([args, exit_code] { *exit_code = Run(*args); });
}

}  // namespace cvdeploy::cli
