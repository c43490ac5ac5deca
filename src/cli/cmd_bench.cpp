// SPDX-License-Identifier: Apache-2.0
// cvdeploy bench --model MODEL [--source IMG|DIR] [--warmup N] [--iters N] [--threads N]
//   [--batch N] [--imgsz N] [--workers N] [--sweep SPEC] [--json FILE] [--csv FILE] [--md]
//   [--profile FILE] [--compare-sequential] [--memory-iters N]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <sstream>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/output_path.h"
#include "cvdeploy/bench.h"
#include "cvdeploy/build_info.h"
#include "cvdeploy/error.h"
#include "cvdeploy/file.h"
#include "cvdeploy/image.h"
#include "cvdeploy/pipeline.h"
#include "cvdeploy/predictor.h"
#include "cvdeploy/system.h"

namespace cvdeploy::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct BenchArgs {
  ModelArgs model;
  ThresholdArgs thresholds;
  EngineArgs engine;
  std::string source;
  int warmup = 10, iters = 100, batch = 1, workers = 0, memory_iters = 0;
  std::string sweep, json, csv, profile;
  bool md = false, compare_sequential = false;
  DecodeScaleArg decode_scale;
};

// The size JPEGs are decoded for (--decode-scale): the model input, or empty (full size).
cv::Size DecodeTarget(const BenchArgs& args, const Predictor& predictor) {
  return args.decode_scale.Target({predictor.meta().imgsz_w, predictor.meta().imgsz_h});
}

struct Config {
  int threads = 0, batch = 1, imgsz = 0;
  Spin spin = Spin::kAuto;
  bool rect = true;
  GraphOptimization graph_opt = GraphOptimization::kAll;
};

// A sweep value: a number, on/off (and auto for spin) for the spin and rect axes, a level
// name for graph_opt.
int SweepValue(const std::string& key, const std::string& v) {
  if (key == "graph_opt") {
    const auto level = ParseGraphOptimization(v);
    return level ? static_cast<int>(*level) : -1;
  }
  if (key == "spin" || key == "rect") {
    if (v == "on") return static_cast<int>(Spin::kOn);
    if (v == "off") return static_cast<int>(Spin::kOff);
    if (v == "auto" && key == "spin") return static_cast<int>(Spin::kAuto);
    return -1;
  }
  try {
    size_t used = 0;
    const int n = std::stoi(v, &used);
    if (used == v.size() && n >= (key == "threads" ? 0 : 1)) return n;
  } catch (const std::exception&) {
  }
  return -1;
}

// "threads=1,2;batch=1,4;imgsz=320,640;spin=on,off;rect=on,off;graph_opt=all,basic" -> every
// combination, threads varying slowest.
std::vector<Config> ParseSweep(const BenchArgs& args) {
  std::map<std::string, std::vector<int>> axes = {
      {"threads", {args.model.threads}},
      {"batch", {args.batch}},
      {"imgsz", {args.model.imgsz}},
      {"spin", {static_cast<int>(args.engine.ParsedSpin())}},
      {"rect", {static_cast<int>(args.engine.Rect() ? Spin::kOn : Spin::kOff)}},
      {"graph_opt", {static_cast<int>(args.engine.ParsedGraphOptimization())}}};
  std::stringstream spec(args.sweep);
  std::string part;
  while (std::getline(spec, part, ';')) {
    if (part.empty()) continue;
    const auto eq = part.find('=');
    const std::string key = part.substr(0, eq);
    if (eq == std::string::npos || !axes.count(key)) {
      throw InvalidArgument("--sweep '" + args.sweep +
                            "': expected threads=..;batch=..;imgsz=..;spin=on,off;rect=on,off;"
                            "graph_opt=all,extended,basic,disable");
    }
    std::vector<int> values;
    std::stringstream list(part.substr(eq + 1));
    std::string v;
    while (std::getline(list, v, ',')) {
      const int n = SweepValue(key, v);
      if (n < 0) {
        throw InvalidArgument("--sweep '" + args.sweep + "': bad " + key + " value '" + v + "'");
      }
      values.push_back(n);
    }
    if (values.empty()) throw InvalidArgument("--sweep '" + args.sweep + "': no values for " + key);
    axes[key] = values;
  }
  std::vector<Config> configs;
  for (int t : axes["threads"])
    for (int i : axes["imgsz"])
      for (int b : axes["batch"])
        for (int sp : axes["spin"])
          for (int re : axes["rect"])
            for (int g : axes["graph_opt"]) {
              configs.push_back({t, b, i, static_cast<Spin>(sp), re == static_cast<int>(Spin::kOn),
                                 static_cast<GraphOptimization>(g)});
            }
  return configs;
}

// The input of a single-image benchmark: file bytes, or a synthetic JPEG when none is given.
struct Input {
  std::string name;
  std::vector<uint8_t> bytes;
};

Input SyntheticInput() {
  cv::Mat image(720, 1280, CV_8UC3);
  cv::RNG rng(7);
  rng.fill(image, cv::RNG::UNIFORM, 0, 256);
  std::vector<uint8_t> bytes;
  cv::imencode(".jpg", image, bytes, {cv::IMWRITE_JPEG_QUALITY, 90});
  return {"synthetic 1280x720 JPEG", std::move(bytes)};
}

// The predict options of configuration `c` (thresholds, classes, rect).
PredictOptions OptionsFor(const BenchArgs& args, const Config& c, const Predictor& predictor) {
  PredictOptions options = args.thresholds.ToPredictOptions(predictor.meta().names);
  options.rect = c.rect;
  return options;
}

// `exclusive`: one engine call at a time owns every core (the single-image loop), which is
// what Spin::kAuto spins for (ResolveSpin); the bare engine runs on the same session, so it
// gets the same setting.
std::unique_ptr<Predictor> LoadFor(const BenchArgs& args, const Config& c, double* load_ms,
                                   bool exclusive) {
  SessionOptions session = args.model.ToSessionOptions();
  session.intra_op_threads = c.threads;
  session.spin = ResolveSpin(c.spin, exclusive);
  session.graph_optimization = c.graph_opt;
  if (c.imgsz > 0) session.imgsz = c.imgsz;
  auto t0 = Clock::now();
  auto predictor = LoadPredictor(args.model.path, session, args.model.protection.protection);
  if (load_ms) *load_ms = Ms(t0, Clock::now());
  if (c.batch > 1 && predictor->meta().batch > 0 && c.batch > predictor->meta().batch) {
    throw InvalidArgument("--batch " + std::to_string(c.batch) + ": " + args.model.path +
                          " has a fixed batch of " + std::to_string(predictor->meta().batch) +
                          " (make the batch axis dynamic with cvdeploy convert --dynamic-batch)");
  }
  // --classes (ids or this model's names): an unknown class fails before anything is measured.
  args.thresholds.ToPredictOptions(predictor->meta().names);
  return predictor;
}

struct Samples {
  std::vector<double> decode, preprocess, inference, postprocess, e2e, no_decode, bare;
};

void Fill(const Samples& s, bench::ConfigResult& r) {
  r.stages.decode = bench::Summarize(s.decode);
  r.stages.preprocess = bench::Summarize(s.preprocess);
  r.stages.inference = bench::Summarize(s.inference);
  r.stages.postprocess = bench::Summarize(s.postprocess);
  r.stages.end_to_end = bench::Summarize(s.e2e);
  r.bare_engine = bench::Summarize(s.bare);
  const double bare_per_image = r.bare_engine.p50 / r.batch;
  if (bare_per_image > 0) {
    r.ratio_e2e_to_bare = r.stages.end_to_end.p50 / bare_per_image;
    r.ratio_no_decode_to_bare = bench::Summarize(s.no_decode).p50 / bare_per_image;
  }
  r.extra["no_decode_ms"] = {{"p50", bench::RoundTo(bench::Summarize(s.no_decode).p50, 3)}};
}

// One image (batch copies of it) through decode + Predict in a loop, interleaved with bare
// engine runs on the same session so that both see the same machine conditions.
bench::ConfigResult BenchSingle(const BenchArgs& args, const Config& c, const Predictor& predictor,
                                const Input& input, bench::ColdStart* cold) {
  const cv::Size model_input = DecodeTarget(args, predictor);
  const PredictOptions options = OptionsFor(args, c, predictor);
  std::vector<cv::Mat> images(c.batch);
  std::vector<cv::Size> originals(c.batch);
  auto decode_all = [&] {
    for (int b = 0; b < c.batch; ++b) {
      images[b] = DecodeImageForModel(input.bytes, input.name, model_input, &originals[b]);
    }
  };
  decode_all();
  // The bare engine: Run on a batch prepared once (no decode, letterbox or decoding).
  Batch bare = predictor.Prepare(images, options);
  auto bare_run = [&] {
    predictor.Run(bare);
    return bare.run_ms();
  };
  Samples s;
  auto iteration = [&](bool record) {
    auto t0 = Clock::now();
    decode_all();
    auto t1 = Clock::now();
    std::vector<Result> results;
    if (c.batch == 1) {
      results.push_back(predictor.Predict(images[0], options));
    } else {
      results = predictor.PredictBatch(images, options);
    }
    for (int b = 0; b < c.batch; ++b) RescaleResult(results[b], originals[b]);
    auto t2 = Clock::now();
    if (cold && cold->first_inference_ms == 0) cold->first_inference_ms = Ms(t1, t2);
    if (!record) return;
    s.decode.push_back(Ms(t0, t1) / c.batch);
    s.e2e.push_back(Ms(t0, t2) / c.batch);
    s.no_decode.push_back(Ms(t1, t2) / c.batch);
    double pre = 0, inf = 0, post = 0;
    for (const Result& r : results) {
      pre += r.speed_ms.preprocess;
      inf += r.speed_ms.inference;
      post += r.speed_ms.postprocess;
    }
    s.preprocess.push_back(pre / c.batch);
    s.inference.push_back(inf / c.batch);
    s.postprocess.push_back(post / c.batch);
  };
  for (int i = 0; i < args.warmup; ++i) {
    iteration(false);
    bare_run();
  }
  double pipeline_ms = 0;
  for (int i = 0; i < args.iters; ++i) {
    // Alternate the order so neither side always runs right after the other.
    if (i % 2) s.bare.push_back(bare_run());
    auto t = Clock::now();
    iteration(true);
    pipeline_ms += Ms(t, Clock::now());
    if (i % 2 == 0) s.bare.push_back(bare_run());
  }
  bench::ConfigResult r;
  r.mode = "single";
  r.threads = predictor.threads();
  r.batch = c.batch;
  r.imgsz = predictor.meta().imgsz_w;
  r.iterations = static_cast<size_t>(args.iters);
  Fill(s, r);
  r.throughput_ips = pipeline_ms > 0 ? 1000.0 * args.iters * c.batch / pipeline_ms : 0;
  r.peak_rss_mb = bench::ReadMemoryUsage().peak_mb;
  if (args.memory_iters > 0) {
    const double before = bench::ReadMemoryUsage().rss_mb;
    for (int i = 0; i < args.memory_iters; ++i) iteration(false);
    const double after = bench::ReadMemoryUsage().rss_mb;
    r.extra["memory_iterations"] = args.memory_iters;
    r.extra["rss_before_mb"] = bench::RoundTo(before, 1);
    r.extra["rss_after_mb"] = bench::RoundTo(after, 1);
    r.extra["rss_growth_mb"] = bench::RoundTo(after - before, 1);
  }
  return r;
}

// Detections reduced to what "identical" compares: class, confidence and box per detection.
using Digest = std::vector<std::array<float, 6>>;
Digest DigestOf(const Result& r) {
  Digest d;
  for (const auto& det : r.detections) {
    d.push_back({static_cast<float>(det.class_id), det.confidence, det.box.x1, det.box.y1,
                 det.box.x2, det.box.y2});
  }
  return d;
}

// Largest difference between two runs' detections; infinity when counts or classes differ.
double MaxDifference(const std::vector<Digest>& a, const std::vector<Digest>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return INFINITY;
    for (size_t j = 0; j < a[i].size(); ++j) {
      if (a[i][j][0] != b[i][j][0]) return INFINITY;
      for (int k = 1; k < 6; ++k)
        worst = std::max(worst, double(std::fabs(a[i][j][k] - b[i][j][k])));
    }
  }
  return worst;
}

// The directory path: the pipeline over every image and, with --compare-sequential, a plain
// sequential loop over the same API with the same total number of threads, in the same run.
// Passes alternate A B B A A B ... so that a drift in machine speed (shared hosts) hits both
// sides alike; throughput is images over the summed wall time of each side's passes.
bench::ConfigResult BenchDirectory(const BenchArgs& args, const Config& c,
                                   const Predictor& predictor,
                                   const std::vector<std::string>& files, int workers) {
  const PredictOptions options = OptionsFor(args, c, predictor);
  const cv::Size model_input = DecodeTarget(args, predictor);
  pipeline::Options popts;
  popts.workers = workers;
  popts.batch = c.batch;
  const int passes = std::max(1, static_cast<int>(std::lround(double(args.iters) / files.size())));
  const size_t warm = std::min<size_t>(files.size(), args.warmup);

  std::unique_ptr<Predictor> sequential;
  if (args.compare_sequential) {
    Config seq = c;
    seq.threads = predictor.threads() * workers;
    seq.batch = 1;
    sequential = LoadFor(args, seq, nullptr, false);
  }
  // Warm-up: the first images once through each side.
  if (warm > 0) {
    std::vector<std::string> head(files.begin(), files.begin() + warm);
    auto source = pipeline::MediaSource(head, model_input, true);
    pipeline::Run(predictor, *source, options, popts, [](pipeline::Item&) {});
    for (size_t i = 0; sequential && i < warm; ++i) {
      cv::Size original;
      sequential->Predict(ReadImageForModel(files[i], model_input, &original), options);
    }
  }

  Samples s;
  std::vector<Digest> digests, seq_digests;
  double wall = 0, seq_wall = 0;
  size_t items = 0, seq_items = 0, max_in_flight = 0;
  auto pipelined_pass = [&](bool first) {
    auto source = pipeline::MediaSource(files, model_input, true);
    const pipeline::Stats stats =
        pipeline::Run(predictor, *source, options, popts, [&](pipeline::Item& item) {
          if (item.error) throw *item.error;
          const StageTimes& t = item.result.speed_ms;
          s.decode.push_back(t.decode);
          s.preprocess.push_back(t.preprocess);
          s.inference.push_back(t.inference);
          s.postprocess.push_back(t.postprocess);
          s.e2e.push_back(t.Total());
          s.no_decode.push_back(t.Total() - t.decode);
          if (first) digests.push_back(DigestOf(item.result));
        });
    wall += stats.wall_ms;
    items += stats.items;
    max_in_flight = std::max(max_in_flight, stats.max_in_flight);
  };
  auto sequential_pass = [&](bool first) {
    auto t0 = Clock::now();
    for (const std::string& f : files) {
      cv::Size original;
      Result res = sequential->Predict(ReadImageForModel(f, model_input, &original), options);
      RescaleResult(res, original);
      if (first) seq_digests.push_back(DigestOf(res));
      ++seq_items;
    }
    seq_wall += Ms(t0, Clock::now());
  };
  for (int p = 0; p < passes; ++p) {
    const bool pipeline_first = (p % 4 == 0 || p % 4 == 3);
    if (pipeline_first || !sequential) pipelined_pass(p == 0);
    if (sequential) sequential_pass(p == 0);
    if (!pipeline_first && sequential) pipelined_pass(p == 0);
  }
  const double peak = bench::ReadMemoryUsage().peak_mb;
  {
    cv::Size original;
    Batch bare = predictor.Prepare(
        std::vector<cv::Mat>(c.batch, ReadImageForModel(files[0], model_input, &original)),
        options);
    auto bare_run = [&] {
      predictor.Run(bare);
      return bare.run_ms();
    };
    for (int i = 0; i < std::min(args.iters, 30); ++i) s.bare.push_back(bare_run());
  }
  bench::ConfigResult r;
  r.mode = "pipeline";
  r.threads = predictor.threads();
  r.batch = c.batch;
  r.imgsz = predictor.meta().imgsz_w;
  r.workers = workers;
  r.iterations = items;
  Fill(s, r);
  r.throughput_ips = wall > 0 ? 1000.0 * items / wall : 0;
  r.peak_rss_mb = peak;
  r.extra["images"] = files.size();
  r.extra["passes"] = passes;
  r.extra["max_in_flight"] = max_in_flight;
  if (sequential) {
    const double seq_ips = 1000.0 * seq_items / seq_wall;
    const double diff = MaxDifference(digests, seq_digests);
    r.extra["sequential_threads"] = sequential->threads();
    r.extra["sequential_ips"] = bench::RoundTo(seq_ips, 3);
    r.extra["speedup_vs_sequential"] = bench::RoundTo(r.throughput_ips / seq_ips, 3);
    r.extra["detections_identical"] = diff <= 1e-3;
    r.extra["max_detection_difference"] = std::isfinite(diff) ? bench::RoundTo(diff, 6) : -1.0;
  }
  return r;
}

void PrintProfile(const BenchArgs& args, const Config& c, const Input& input,
                  nlohmann::ordered_json& out) {
  const fs::path target(args.profile);
  const std::string prefix = (target.parent_path() / ("cvdeploy_profile_tmp")).string();
  SessionOptions session = args.model.ToSessionOptions();
  session.intra_op_threads = c.threads;
  if (c.imgsz > 0) session.imgsz = c.imgsz;
  session.profile_prefix = prefix;
  session.spin = ResolveSpin(c.spin, true);  // Predict in a loop on one decoded image
  session.graph_optimization = c.graph_opt;
  auto predictor = LoadPredictor(args.model.path, session, args.model.protection.protection);
  const cv::Size model_input = DecodeTarget(args, *predictor);
  cv::Size original;
  const cv::Mat image = DecodeImageForModel(input.bytes, input.name, model_input, &original);
  const PredictOptions options = OptionsFor(args, c, *predictor);
  for (int i = 0; i < std::max(1, std::min(args.iters, 20)); ++i)
    predictor->Predict(image, options);
  const std::string written = predictor->EndProfiling();
  std::error_code ec;
  fs::rename(written, target, ec);
  if (ec) {
    fs::copy_file(written, target, fs::copy_options::overwrite_existing, ec);
    fs::remove(written);
    if (ec) throw RuntimeError(args.profile + ": cannot write the profile: " + ec.message());
  }
  const bench::ProfileSummary summary = bench::ParseOrtProfile(args.profile);
  std::printf("ONNX Runtime profile: %s (%zu runs, %.1f ms in operators)\n", args.profile.c_str(),
              summary.runs, summary.total_ms);
  std::printf("  %-48s %-22s %10s %7s\n", "node", "op type", "total ms", "share");
  nlohmann::ordered_json top = nlohmann::ordered_json::array();
  for (size_t i = 0; i < std::min<size_t>(10, summary.by_node.size()); ++i) {
    const auto& op = summary.by_node[i];
    std::printf("  %-48s %-22s %10.2f %6.1f%%\n", op.node.c_str(), op.op_type.c_str(), op.total_ms,
                100 * op.share);
    top.push_back({{"node", op.node},
                   {"op_type", op.op_type},
                   {"total_ms", bench::RoundTo(op.total_ms, 3)},
                   {"share", bench::RoundTo(op.share, 4)}});
  }
  out = {{"file", args.profile}, {"runs", summary.runs}, {"top_operators", top}};
}

// Checked and atomic (a temporary renamed into place); "-" is stdout. Failures: exit 4.
void WriteText(const std::string& flag, const std::string& path, const std::string& text) {
  std::cout.flush();  // keep stdout's order when text goes there too
  OutputFile out(OutputPath(flag, path));
  out.Write(text);
  out.Commit();
}

int Run(const BenchArgs& args) {
  if (args.iters < 1) throw InvalidArgument("--iters must be >= 1");
  const std::vector<Config> configs = ParseSweep(args);
  // Source: one image, a directory (the pipeline), or a synthetic JPEG.
  Input input;
  std::vector<std::string> files;
  std::error_code ec;
  if (args.source.empty()) {
    input = SyntheticInput();
  } else if (fs::is_directory(args.source, ec)) {
    for (const std::string& f : ExpandSources({args.source})) {
      if (!HasVideoExtension(f)) files.push_back(f);
    }
    if (files.empty()) throw BadInput(args.source + ": directory contains no images");
  } else {
    input = {args.source, ReadFileBytes(args.source)};
    DecodeImage(input.bytes, input.name);  // fail early, with the file's name, on a bad image
  }

  bench::Report report;
  report.machine = DetectMachine();
  report.cvdeploy_version = CVDEPLOY_VERSION;
  report.commit = CVDEPLOY_GIT_COMMIT;
  report.build_type = CVDEPLOY_BUILD_TYPE;
  report.model = args.model.path;
  report.source = files.empty() ? input.name : args.source;
  for (size_t i = 0; i < configs.size(); ++i) {
    Config c = configs[i];
    int workers = args.workers;
    if (!files.empty()) {
      // The directory path splits the cores as predict does (see PipelineArgs::Resolve).
      PipelineArgs split;
      split.workers = args.workers;
      split.Resolve(files.size(), &c.threads, &workers);
    }
    double load_ms = 0;
    auto predictor = LoadFor(args, c, &load_ms, files.empty());
    if (i == 0) {
      report.cold_start.load_ms = load_ms;
      report.ort_version = predictor->engine_version();
      report.provider = predictor->provider();
      const std::string warning =
          Int8IsaWarning(Int8Features(report.machine), !predictor->info().quantization.empty());
      if (!warning.empty()) {
        std::fprintf(stderr, "warning: %s\n", warning.c_str());
        report.warnings.push_back(warning);
      }
    }
    const Spin spin = ResolveSpin(c.spin, files.empty());
    const bool rect = c.rect && predictor->meta().dynamic;
    std::fprintf(stderr, "bench: threads=%d batch=%d imgsz=%d spin=%s rect=%s graph_opt=%s %s\n",
                 predictor->threads(), c.batch, predictor->meta().imgsz_w, SpinName(spin),
                 rect ? "on" : "off", GraphOptimizationName(c.graph_opt),
                 files.empty() ? "(single image)" : "(pipeline)");
    if (files.empty()) {
      report.results.push_back(
          BenchSingle(args, c, *predictor, input, i == 0 ? &report.cold_start : nullptr));
    } else {
      if (i == 0) {
        // Cold start on the directory: the first image through a fresh session.
        cv::Size original;
        const cv::Mat first =
            ReadImageForModel(files[0], DecodeTarget(args, *predictor), &original);
        auto t0 = Clock::now();
        predictor->Predict(first, OptionsFor(args, c, *predictor));
        report.cold_start.first_inference_ms = Ms(t0, Clock::now());
      }
      report.results.push_back(BenchDirectory(args, c, *predictor, files, workers));
    }
    report.results.back().extra["spin"] = SpinName(spin);
    report.results.back().extra["rect"] = rect;
    report.results.back().extra["graph_opt"] = GraphOptimizationName(c.graph_opt);
    report.results.back().extra["decode_scale"] = args.decode_scale.value;
  }
  nlohmann::ordered_json json = bench::ToJson(report);
  if (!args.profile.empty()) {
    nlohmann::ordered_json profile;
    Input profile_input = input;
    if (!files.empty()) profile_input = {files[0], ReadFileBytes(files[0])};
    PrintProfile(args, configs.front(), profile_input, profile);
    json["profile"] = profile;
  }
  std::cout << (args.md ? bench::ToMarkdown(report) : bench::ToText(report));
  std::cout.flush();
  if (!args.json.empty()) WriteText("--json", args.json, json.dump(2) + "\n");
  if (!args.csv.empty()) WriteText("--csv", args.csv, bench::ToCsv(report));
  return 0;
}

}  // namespace

void RegisterBench(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "bench", "Measure latency per stage, throughput and overhead over the bare engine");
  auto args = std::make_shared<BenchArgs>();
  args->model.Add(*cmd);
  args->thresholds.Add(*cmd, 0.25f);
  args->engine.Add(*cmd);
  cmd->add_option("--source", args->source,
                  "Image (single-image loop) or directory (pipelined path); default: a "
                  "synthetic 1280x720 JPEG");
  cmd->add_option("--warmup", args->warmup, "Warm-up iterations before measuring")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--iters", args->iters, "Measured iterations (images for a directory)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--batch", args->batch, "Images per engine call")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--workers", args->workers,
                  "Directory: concurrent engine calls (0: cores / threads)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--sweep", args->sweep,
                  "Combinations to measure, e.g. 'threads=1,2;batch=1,4;imgsz=320,640;"
                  "spin=on,off;rect=on,off;graph_opt=all,basic'");
  cmd->add_option("--json", args->json, "Write the report as JSON to FILE ('-': stdout)");
  cmd->add_option("--csv", args->csv, "Write one CSV row per configuration to FILE");
  cmd->add_flag("--md", args->md, "Print a Markdown table instead of text");
  cmd->add_option("--profile", args->profile,
                  "Write ONNX Runtime's per-operator profile to FILE and print the top ten");
  cmd->add_flag("--compare-sequential", args->compare_sequential,
                "Directory: also time a plain sequential loop with the same total threads");
  cmd->add_option("--memory-iters", args->memory_iters,
                  "Single image: after measuring, run N more predictions and report RSS growth")
      ->check(CLI::NonNegativeNumber);
  args->decode_scale.Add(*cmd);
  cmd->callback([args, exit_code] { *exit_code = Run(*args); });
}

}  // namespace cvdeploy::cli
