// SPDX-License-Identifier: Apache-2.0
// cvdeploy predict --model MODEL --source SRC [SRC ...] [options]
#include <unistd.h>
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
#include "cli/exit_codes.h"
#include "cli/options.h"
#include "cli/output_names.h"
#include "cli/output_path.h"
#include "cli/plural.h"
#include "cli/predict_live.h"
#include "cli/progress.h"
#include "cvdeploy/annotate.h"
#include "cvdeploy/error.h"
#include "cvdeploy/export.h"
#include "cvdeploy/file.h"
#include "cvdeploy/image.h"
#include "cvdeploy/pipeline.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/serialize.h"
#include "cvdeploy/system.h"

namespace cvdeploy::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct PredictArgs {
  ModelArgs model;
  std::vector<std::string> sources;
  ThresholdArgs thresholds;
  EngineArgs engine;
  std::string save_dir;
  std::string json;
  PipelineArgs pipeline;
  int vid_stride = 1;
  bool all_contours = false;
  bool retina_masks = false;  // --retina-masks: masks cropped at full resolution
  uint64_t max_pixels = kDefaultMaxPixels;
  DecodeScaleArg decode_scale;
  LiveArgs live;
  bool save = false;   // --save: annotated output into --save-dir or runs/predict{,2,..}
  bool quiet = false;  // --quiet: no progress bar, no per-image lines
  // Ultralytics' outputs: labels/, crops/ and the drawing options.
  bool save_txt = false, save_conf = false, save_crop = false;
  AnnotateOptions style;
};

// --save-txt / --save-crop for one result: <save-dir>/labels/STEM.txt and
// <save-dir>/crops/<class>/STEM.jpg, STEM_N for the Nth processed video frame (Ultralytics).
// Called before the image is annotated in place.
void SaveExports(const PredictArgs& args, const pipeline::Item& item, int keypoint_dims) {
  if (!args.save_txt && !args.save_crop) return;
  const long number = item.frame.frame >= 0 ? item.frame.frame / args.vid_stride + 1 : 0;
  const std::string stem = OutputStem(item.frame.name, number);
  const fs::path dir(args.save_dir);
  if (args.save_txt) {
    SaveLabels((dir / "labels" / (stem + ".txt")).string(), item.result, args.save_conf,
               keypoint_dims);
  }
  if (args.save_crop) SaveCrops(item.frame.image, item.result, (dir / "crops").string(), stem);
}

// Where results go: JSON Lines (file or stdout) and/or a human-readable summary. A --json
// FILE is written to a temporary file and renamed into place by Finish(), so an interrupted
// or failed run leaves no partial file; every write is checked (exit 4 on failure).
class Sink {
 public:
  Sink(const std::string& json_path, bool quiet, Progress* progress) : progress_(progress) {
    if (!json_path.empty()) json_ = std::make_unique<OutputFile>(OutputPath("--json", json_path));
    human_ = json_path != "-";
    lines_ = human_ && !quiet;
  }
  void Emit(const std::string& source, const Result& r, int frame, bool all_polygons,
            bool print_human) {
    if (json_) {
      nlohmann::ordered_json line = {{"source", source}};
      if (frame >= 0) line["frame"] = frame;
      const nlohmann::ordered_json result = ResultToJson(r, all_polygons);
      for (auto it = result.begin(); it != result.end(); ++it) line[it.key()] = it.value();
      json_->Write(line.dump() + "\n");
      json_->Flush();  // a reader of stdout sees each result as it is produced
    }
    if (lines_ && print_human) {
      progress_->Clear();  // the bar and the line never share a line
      std::cout << Summary(source, r) << std::endl;
    }
  }
  bool human() const { return human_; }
  // Publishes the --json output (renames the temporary file into place).
  void Finish() {
    if (json_) json_->Commit();
  }

  static std::string Summary(const std::string& source, const Result& r) {
    // By class id, as Ultralytics prints them: "4 persons, 1 bus".
    std::map<int, std::pair<std::string, long>> counts;
    for (const auto& d : r.detections) {
      auto& [name, n] = counts[d.class_id];
      name = d.class_name;
      ++n;
    }
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
      for (const auto& [id, count] : counts) text += CountOf(count.second, count.first) + ", ";
    }
    char buf[160];
    std::snprintf(buf, sizeof(buf),
                  "decode %.1f ms, preprocess %.1f ms, inference %.1f ms, postprocess %.1f ms",
                  r.speed_ms.decode, r.speed_ms.preprocess, r.speed_ms.inference,
                  r.speed_ms.postprocess);
    return text + buf;
  }

 private:
  std::unique_ptr<OutputFile> json_;
  Progress* progress_;
  bool human_ = true, lines_ = true;
};

void SaveImage(const std::string& save_dir, const std::string& source, cv::Mat& image,
               const Result& r, OutputNames& names, const AnnotateOptions& style) {
  Annotate(image, r, style);
  fs::path name = fs::path(source).filename();
  if (!HasImageExtension(name.string())) name.replace_extension(".jpg");
  // Two sources with one file name (a/bus.jpg, b/bus.jpg) get bus.jpg and bus_2.jpg.
  const fs::path out = names.Reserve(save_dir, name.string());
  // Encoded in memory and written with checked, atomic writes: cv::imwrite reports success
  // even when the disk is full.
  std::vector<uint8_t> encoded;
  try {
    if (!cv::imencode(out.extension().string(), image, encoded)) {
      throw RuntimeError(out.string() + ": cannot encode annotated image");
    }
  } catch (const cv::Exception& e) {
    throw RuntimeError(out.string() + ": cannot encode annotated image: " + e.err);
  }
  WriteFileAtomically(out.string(), encoded);
}

// Writes the annotated frames of one video and prints its summary line when it ends.
class VideoOutput {
 public:
  VideoOutput(const PredictArgs& args, const Sink& sink, OutputNames& names, Progress& progress)
      : args_(args), sink_(sink), names_(names), progress_(progress) {}
  ~VideoOutput() {
    try {
      Finish();
    } catch (...) {
    }
  }

  void Add(const pipeline::Item& item) {
    if (item.frame.name != source_) {
      Finish();
      source_ = item.frame.name;
    }
    const Result& r = item.result;
    sum_.decode += r.speed_ms.decode;
    sum_.preprocess += r.speed_ms.preprocess;
    sum_.inference += r.speed_ms.inference;
    sum_.postprocess += r.speed_ms.postprocess;
    detections_ += r.detections.size();
    ++processed_;
    last_frame_ = item.frame.frame;
    if (args_.save_dir.empty()) return;
    const cv::Mat& frame = item.frame.image;
    if (!writer_.isOpened()) {
      cv::VideoCapture probe(source_, cv::CAP_FFMPEG);
      const double fps = probe.isOpened() ? probe.get(cv::CAP_PROP_FPS) : 0;
      const std::string stem = fs::path(source_).stem().string();
      const double out_fps = (fps > 0 ? fps : 25.0) / args_.vid_stride;
      out_path_ = names_.Reserve(args_.save_dir, stem + ".mp4");
      writer_.open(out_path_, cv::CAP_FFMPEG, cv::VideoWriter::fourcc('m', 'p', '4', 'v'), out_fps,
                   frame.size());
      if (!writer_.isOpened()) {
        out_path_ = names_.Reserve(args_.save_dir, stem + ".avi");
        writer_.open(out_path_, cv::CAP_OPENCV_MJPEG, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'),
                     out_fps, frame.size());
      }
      if (!writer_.isOpened()) throw RuntimeError(out_path_ + ": cannot open video writer");
    }
    cv::Mat annotated = frame.clone();
    Annotate(annotated, r, args_.style);
    writer_.write(annotated);
  }

  void Finish() {
    if (source_.empty()) return;
    writer_.release();
    if (sink_.human()) {
      progress_.Clear();
      const double n = std::max<size_t>(processed_, 1);
      std::printf(
          "%s: %ld frames read, %zu processed (stride %d), %zu detections; mean per frame: "
          "decode %.1f ms, preprocess %.1f ms, inference %.1f ms, postprocess %.1f ms%s%s\n",
          source_.c_str(), last_frame_ + 1, processed_, args_.vid_stride, detections_,
          sum_.decode / n, sum_.preprocess / n, sum_.inference / n, sum_.postprocess / n,
          out_path_.empty() ? "" : "; saved ", out_path_.c_str());
    }
    source_.clear();
    out_path_.clear();
    sum_ = {};
    detections_ = processed_ = 0;
  }

 private:
  const PredictArgs& args_;
  const Sink& sink_;
  OutputNames& names_;
  Progress& progress_;
  std::string source_, out_path_;
  cv::VideoWriter writer_;
  StageTimes sum_;
  size_t detections_ = 0, processed_ = 0;
  long last_frame_ = -1;
};

// Frames a video will yield at `stride` (0 when unknown): the progress bar's total.
long VideoFrames(const std::string& path, int stride) {
  cv::VideoCapture probe;
  try {
    if (!probe.open(path, cv::CAP_FFMPEG)) return 0;
  } catch (const cv::Exception&) {
    return 0;
  }
  const double n = probe.get(cv::CAP_PROP_FRAME_COUNT);
  return n > 0 ? static_cast<long>((n + stride - 1) / stride) : 0;
}

int Run(PredictArgs args) {
  SessionOptions session = args.model.ToSessionOptions();
  // --save-txt/--save-crop write inside the run directory, as Ultralytics' save_dir.
  if (args.save_dir.empty() && (args.save || args.save_txt || args.save_crop)) {
    args.save_dir = IncrementPath("runs/predict");
  }
  OutputNames names;
  const std::vector<std::string> live = LiveSources(args.sources);
  if (!live.empty()) {
    pipeline::Options popts;
    popts.batch = args.pipeline.batch;
    // Several streams share the workers: the split of many inputs.
    args.pipeline.Resolve(2, &session.intra_op_threads, &popts.workers);
    session.spin = ResolveSpin(args.engine.ParsedSpin(), false);
    session.graph_optimization = args.engine.ParsedGraphOptimization();
    auto predictor = LoadPredictor(args.model.path, session, args.model.protection.protection);
    OutputDirectory("--save-dir", args.save_dir);
    LiveRun run;
    run.predictor = predictor.get();
    run.options = args.thresholds.ToPredictOptions(predictor->meta().names, args.all_contours);
    run.options.retina_masks = args.retina_masks;
    run.options.rect = args.engine.Rect();
    run.pipeline = popts;
    run.json = args.json;
    run.save_dir = args.save_dir;
    run.style = args.style;
    run.vid_stride = args.vid_stride;
    run.quiet = args.quiet;
    run.all_contours = args.all_contours;
    run.names = &names;
    return RunLive(live, args.live, run);
  }
  const std::vector<std::string> files = ExpandSources(args.sources);
  size_t images = 0;
  long total = 0;  // progress: images plus the frames of the videos
  const bool tty = !args.quiet && isatty(STDERR_FILENO) == 1;
  for (const auto& f : files) {
    const bool video = HasVideoExtension(f);
    images += video ? 0 : 1;
    if (tty) total += video ? VideoFrames(f, args.vid_stride) : 1;
  }
  // A video counts as many inputs: its frames are pipelined too.
  const size_t inputs = images == files.size() ? images : files.size() + 1;
  pipeline::Options popts;
  popts.batch = args.pipeline.batch;
  args.pipeline.Resolve(inputs, &session.intra_op_threads, &popts.workers);
  // One image on one worker owns every core: the case that spinning helps (ResolveSpin).
  session.spin = ResolveSpin(args.engine.ParsedSpin(), inputs <= 1 && popts.workers == 1);
  session.graph_optimization = args.engine.ParsedGraphOptimization();
  auto predictor = LoadPredictor(args.model.path, session, args.model.protection.protection);
  PredictOptions options =
      args.thresholds.ToPredictOptions(predictor->meta().names, args.all_contours);
  options.retina_masks = args.retina_masks;
  options.rect = args.engine.Rect();
  OutputDirectory("--save-dir", args.save_dir);
  const bool any_video = images < files.size();
  Progress progress("predict", total, !args.quiet && (images > 1 || any_video));
  Sink sink(args.json, args.quiet, &progress);
  VideoOutput video(args, sink, names, progress);
  // Annotated output is drawn on the decoded image, so it needs the full resolution.
  const bool reduced = args.save_dir.empty() && args.decode_scale.value == "on";
  const cv::Size model_input(predictor->meta().imgsz_w, predictor->meta().imgsz_h);
  auto source =
      pipeline::MediaSource(files, model_input, reduced, args.vid_stride, args.max_pixels);
  int failures = 0;
  pipeline::Run(*predictor, *source, options, popts, [&](pipeline::Item& item) {
    if (item.error) {
      if (item.frame.frame < 0) video.Finish();
      progress.Clear();
      std::fprintf(stderr, "cvdeploy: error: %s\n", item.error->what());
      ++failures;
      progress.Step();
      return;
    }
    const bool is_video = item.frame.frame >= 0;
    SaveExports(args, item, predictor->meta().kpt_shape ? predictor->meta().kpt_shape->second : 3);
    sink.Emit(item.frame.name, item.result, is_video ? static_cast<int>(item.frame.frame) : -1,
              args.all_contours, !is_video);
    if (is_video) {
      video.Add(item);
      progress.Step();
      return;
    }
    video.Finish();
    if (!args.save_dir.empty())
      SaveImage(args.save_dir, item.frame.name, item.frame.image, item.result, names, args.style);
    progress.Step();
  });
  video.Finish();
  progress.Finish();
  sink.Finish();
  if (!args.save_dir.empty() && sink.human()) {
    std::printf("annotated results saved to %s\n", args.save_dir.c_str());
  }
  return failures ? ExitCodeOf(ErrorCode::kBadInput) : 0;
}

}  // namespace

void RegisterPredict(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "predict", "Run a model on images, directories, globs, videos or live streams");
  auto args = std::make_shared<PredictArgs>();
  args->model.Add(*cmd);
  cmd->add_option("--source", args->sources,
                  "Image, directory, glob, video, webcam (0, /dev/video0), rtsp:// or http(s):// "
                  "stream, or a .streams file listing streams (repeatable)")
      ->required()
      ->expected(1, -1);
  args->thresholds.Add(*cmd, 0.25f);
  args->pipeline.Add(*cmd);
  args->engine.Add(*cmd);
  cmd->add_option("--save-dir", args->save_dir, "Write annotated images/videos here");
  cmd->add_flag("--save", args->save,
                "Write annotated images/videos to --save-dir, or to a new runs/predict, "
                "runs/predict2, ... when --save-dir is not given");
  cmd->add_flag("--quiet,-q", args->quiet, "No progress bar and no per-image lines");
  args->live.Add(*cmd);
  cmd->add_option("--json", args->json, "Write JSON Lines to FILE, or '-' for stdout");
  cmd->add_option("--vid-stride", args->vid_stride, "Process every Nth video frame")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--all-contours", args->all_contours,
                "Segment: also emit each mask contour on its own (\"polygons\")");
  cmd->add_flag("--retina-masks", args->retina_masks,
                "Segment: crop masks at full image resolution (Ultralytics' retina_masks) "
                "instead of on the 160x160 prototype grid");
  AddMaxPixels(*cmd, &args->max_pixels);
  args->decode_scale.Add(*cmd);
  cmd->add_flag("--save-txt", args->save_txt,
                "Write Ultralytics label files to SAVE_DIR/labels/ (normalized, one per image)");
  cmd->add_flag("--save-conf", args->save_conf, "With --save-txt: append each confidence");
  cmd->add_flag("--save-crop", args->save_crop,
                "Write each detection's crop to SAVE_DIR/crops/<class>/");
  cmd->add_option("--line-width", args->style.line_width,
                  "Box line width in pixels (default: scaled with the image)")
      ->check(CLI::Range(1, 100));
  cmd->add_flag(
      "--hide-labels", [args](int64_t) { args->style.labels = false; },
      "Draw boxes without their class labels");
  cmd->add_flag(
      "--hide-conf", [args](int64_t) { args->style.conf = false; },
      "Draw class labels without confidences");
  cmd->callback([args, exit_code] { *exit_code = Run(*args); });
}

}  // namespace cvdeploy::cli
